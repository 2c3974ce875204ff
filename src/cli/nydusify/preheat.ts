// `nydusify preheat` (and `convert --preheat`): options -> preheatImage (src/convert/preheat.ts) with a Dragonfly
// manager client (src/convert/dragonfly-preheat.ts). Each job's final state is one stdout line
// (`<blob|bootstrap|image> <what>: job <id> <STATE>`); a failed or unfinished job is the `Error:` line and exit 1.
import type { OptionSpec } from '../../argv.js';
import type { Log } from '../../log.js';
import { DragonflyManager } from '../../convert/dragonfly-preheat.js';
import { openImage } from '../../convert/open-image.js';
import { preheatImage } from '../../convert/preheat.js';
import { PreheatFailed, type PreheatResult } from '../../convert/preheat-jobs.js';
import type { Platform } from '../../convert/image-json.js';
import { platformOption } from './convert.js';
import { flag, makeLog, opt, parseCommand, required } from './main.js';
import { DRAGONFLY_SPECS, preheatSettings, type PreheatSettings } from './preheat-options.js';

/** between polls of the manager */
const POLL_INTERVAL_MS = 500;

const SPECS: OptionSpec[] = [
  { long: 'target', value: '<ref>' },
  { long: 'target-insecure' },
  // `nydusify preheat` has nothing else to time or to choose an API for: the short names say the same
  ...DRAGONFLY_SPECS.map((s) => (s.long === 'dragonfly-api' ? { ...s, aliases: ['api'] } : s.long === 'preheat-timeout' ? { ...s, aliases: ['timeout'] } : s)),
];

/** Preheats the registry image `targetText`; prints each job's end; throws on failure or timeout. */
export async function preheatTarget(targetText: string, s: PreheatSettings, o: { insecure: boolean; platform: Platform; log: Log }): Promise<PreheatResult[]> {
  const manager = new DragonflyManager({ url: s.managerUrl, api: s.api, token: s.token });
  const target = openImage(targetText, { insecure: o.insecure, log: o.log });
  const print = (results: PreheatResult[]) => {
    for (const r of results) process.stdout.write(`${r.label}: job ${r.status.id} ${r.status.raw}\n`);
  };
  try {
    const results = await preheatImage(target, manager, {
      type: s.type, scope: s.scope, clusterIds: s.clusterIds, platform: o.platform, insecure: o.insecure,
      timeoutMs: s.timeoutMs, intervalMs: POLL_INTERVAL_MS,
      onState: (item, st) => o.log('info', `preheat job ${st.id} (${item.label}): ${st.raw}`),
    });
    print(results);
    return results;
  } catch (e) {
    if (e instanceof PreheatFailed) print(e.results);
    throw e;
  } finally {
    await target.close();
    await manager.close();
  }
}

export async function runPreheat(argv: string[]): Promise<number> {
  const p = parseCommand(argv, SPECS, 'preheat');
  const log = makeLog(p);
  const targetText = required(p, 'target', 'preheat');
  const settings = preheatSettings(p, 'preheat');
  await preheatTarget(targetText, settings, { insecure: flag(p, 'target-insecure'), platform: platformOption(opt(p, 'platform')), log });
  return 0;
}
