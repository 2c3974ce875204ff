// `nydusify preheat` (and `convert --preheat`): options -> preheatImage (src/convert/preheat.ts) with a Dragonfly
// manager client (src/convert/dragonfly-preheat.ts). Each job's final state is one stdout line
// (`<blob|bootstrap|image> <what>: job <id> <STATE>`); a failed or unfinished job is the `Error:` line and exit 1.
import { UsageError, type OptionSpec, type ParsedArgv } from '../../argv.js';
import type { Log } from '../../log.js';
import { DragonflyManager, managerUrl, PREHEAT_APIS, PREHEAT_SCOPES, type PreheatApi, type PreheatScope } from '../../convert/dragonfly-preheat.js';
import { openImage } from '../../convert/open-image.js';
import { preheatImage } from '../../convert/preheat.js';
import { PreheatFailed, type PreheatResult } from '../../convert/preheat-jobs.js';
import type { Platform } from '../../convert/image-json.js';
import { platformOption } from './convert.js';
import { flag, makeLog, opt, parseCommand, required } from './main.js';

/** The Dragonfly options, shared by `preheat` and `convert --preheat`. */
export const DRAGONFLY_SPECS: OptionSpec[] = [
  { long: 'dragonfly-manager', value: '<url>' },
  { long: 'dragonfly-token', value: '<token>' },
  { long: 'dragonfly-scope', value: '<scope>' },
  { long: 'dragonfly-cluster-id', value: '<id>', repeatable: true },
  { long: 'dragonfly-api', value: '<oapi|legacy>' },
  { long: 'preheat-type', value: '<file|image>' },
  { long: 'preheat-timeout', value: '<duration>' },
];

const SPECS: OptionSpec[] = [
  { long: 'target', value: '<ref>' },
  { long: 'target-insecure' },
  // `nydusify preheat` has nothing else to time or to choose an API for: the short names say the same
  ...DRAGONFLY_SPECS.map((s) => (s.long === 'dragonfly-api' ? { ...s, aliases: ['api'] } : s.long === 'preheat-timeout' ? { ...s, aliases: ['timeout'] } : s)),
];

/** the default bound of a whole preheat */
const DEFAULT_TIMEOUT_MS = 600_000;
/** between polls of the manager */
const POLL_INTERVAL_MS = 500;

export interface PreheatSettings {
  managerUrl: string;
  token?: string;
  api: PreheatApi;
  scope?: PreheatScope;
  clusterIds: number[];
  type: 'file' | 'image';
  timeoutMs: number;
}

/** `30`, `30s`, `500ms`, `5m`, `1h` (a bare number is seconds) -> ms. */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  const ms = m ? Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'] : NaN;
  if (!Number.isFinite(ms) || ms <= 0 || ms > 2 ** 31 - 1) throw new UsageError(`${what} '${text}' is invalid (expected e.g. 90, 90s, 500ms, 10m or 1h)`);
  return ms;
}

/** The Dragonfly options checked; `command` names the command in messages. */
export function preheatSettings(p: ParsedArgv, command: string): PreheatSettings {
  const url = required(p, 'dragonfly-manager', command);
  try {
    managerUrl(url);
  } catch (e) {
    throw new UsageError(`${command}: ${(e as Error).message}`);
  }
  const api = (opt(p, 'dragonfly-api') ?? 'oapi') as PreheatApi;
  if (!PREHEAT_APIS.includes(api)) throw new UsageError(`${command}: invalid Dragonfly API '${api}' (expected ${PREHEAT_APIS.join(' or ')})`);
  const scope = opt(p, 'dragonfly-scope') as PreheatScope | undefined;
  if (scope !== undefined && !PREHEAT_SCOPES.includes(scope)) {
    throw new UsageError(`${command}: invalid Dragonfly scope '${scope}' (expected one of: ${PREHEAT_SCOPES.join(', ')})`);
  }
  const clusterIds = (p.options.get('dragonfly-cluster-id') ?? []).map((v) => {
    if (!/^[1-9]\d{0,9}$/.test(v)) throw new UsageError(`${command}: invalid scheduler cluster id '${v}' (expected a positive integer)`);
    return Number(v);
  });
  const type = opt(p, 'preheat-type') ?? 'file';
  if (type !== 'file' && type !== 'image') throw new UsageError(`${command}: invalid preheat type '${type}' (expected file or image)`);
  if (api === 'legacy' && (scope !== undefined || clusterIds.length > 0)) {
    throw new UsageError(`${command}: --dragonfly-scope and --dragonfly-cluster-id need the Open API (--dragonfly-api oapi); the legacy preheat API has neither`);
  }
  const timeoutText = opt(p, 'preheat-timeout');
  const token = opt(p, 'dragonfly-token');
  return {
    managerUrl: url,
    ...(token ? { token } : {}),
    api,
    ...(scope ? { scope } : {}),
    clusterIds,
    type,
    timeoutMs: timeoutText === undefined ? DEFAULT_TIMEOUT_MS : parseDuration(timeoutText, `${command}: preheat timeout`),
  };
}

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
