// `nydusify check`: options -> checkImage (src/convert/check.ts). A failed check prints every problem found.
import os from 'node:os';
import { CheckFailed, checkImage } from '../../convert/check.js';
import { openImage, type OpenedImage } from '../../convert/open-image.js';
import { platformOption } from './convert.js';
import { flag, makeLog, opt, parseCommand, required } from './main.js';

const SPECS = [
  { long: 'source', value: '<ref>' },
  { long: 'target', value: '<ref>' },
  { long: 'source-insecure' },
  { long: 'target-insecure' },
];

export async function runCheck(argv: string[]): Promise<number> {
  const p = parseCommand(argv, SPECS, 'check');
  const log = makeLog(p);
  const targetText = required(p, 'target', 'check');
  const sourceText = opt(p, 'source');
  const platform = platformOption(opt(p, 'platform'));
  const target = openImage(targetText, { insecure: flag(p, 'target-insecure'), log });
  let source: OpenedImage | undefined;
  try {
    source = sourceText ? openImage(sourceText, { insecure: flag(p, 'source-insecure'), log }) : undefined;
    const r = await checkImage(target.image, source?.image, { platform, workDir: opt(p, 'work-dir') ?? os.tmpdir(), log });
    process.stdout.write(`check passed: ${r.blobs} blobs verified${source ? `, ${r.paths} paths identical to the source` : ''}\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof CheckFailed)) throw e;
    process.stderr.write(`Error: ${e.message}\n`);
    return 1;
  } finally {
    await source?.close();
    await target.close();
  }
}
