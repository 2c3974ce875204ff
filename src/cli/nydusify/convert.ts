// `nydusify convert`: options -> convertImage (src/convert/convert.ts).
import os from 'node:os';
import { UsageError } from '../../argv.js';
import { parseCompressor } from '../../compress.js';
import { Compressor } from '../../image-model.js';
import { convertImage } from '../../convert/convert.js';
import { hostPlatform, parsePlatform } from '../../convert/image-json.js';
import { openImage } from '../../convert/open-image.js';
import { parseReference } from '../../convert/reference.js';
import { parseSize } from '../nydus-image/args.js';
import { flag, makeLog, opt, parseCommand, required } from './main.js';
import { DRAGONFLY_SPECS, preheatSettings } from './preheat-options.js';
import { preheatTarget } from './preheat.js';

const SPECS = [
  { long: 'source', value: '<ref>' },
  { long: 'target', value: '<ref>' },
  { long: 'source-insecure' },
  { long: 'target-insecure' },
  { long: 'fs-version', value: '<5|6>' },
  { long: 'compressor', value: '<name>' },
  { long: 'chunk-size', value: '<size>' },
  // after the push, preheat the target through Dragonfly (preheat.ts)
  { long: 'preheat' },
  ...DRAGONFLY_SPECS,
];

const COMPRESSORS = ['zstd', 'lz4_block', 'none'];

export async function runConvert(argv: string[]): Promise<number> {
  const p = parseCommand(argv, SPECS, 'convert');
  const log = makeLog(p);
  const sourceText = required(p, 'source', 'convert');
  const targetText = required(p, 'target', 'convert');
  const fsVersion = opt(p, 'fs-version') ?? '6';
  if (fsVersion !== '5' && fsVersion !== '6') throw new UsageError(`convert: invalid fs version '${fsVersion}' (expected 5 or 6)`);
  const compressorName = opt(p, 'compressor') ?? 'zstd';
  if (!COMPRESSORS.includes(compressorName)) throw new UsageError(`convert: invalid compressor '${compressorName}' (expected one of: ${COMPRESSORS.join(', ')})`);
  const compressor: Compressor = parseCompressor(compressorName);
  const chunkSize = parseSize(opt(p, 'chunk-size') ?? '0x100000', 'chunk size');
  if (chunkSize < 0x1000 || chunkSize > 0x1000000 || (chunkSize & (chunkSize - 1)) !== 0) {
    throw new UsageError(`convert: invalid chunk size '${opt(p, 'chunk-size')}': a power of two from 0x1000 to 0x1000000`);
  }
  const platform = platformOption(opt(p, 'platform'));
  const preheat = flag(p, 'preheat') ? preheatSettings(p, 'convert') : undefined;
  const stray = DRAGONFLY_SPECS.find((s) => p.options.has(s.long));
  if (!preheat && stray) throw new UsageError(`convert: --${stray.long} needs --preheat`);
  if (preheat && parseReference(targetText).kind !== 'registry') throw new UsageError('convert: --preheat needs a registry target (Dragonfly peers fetch from a registry)');
  const source = openImage(sourceText, { insecure: flag(p, 'source-insecure'), log });
  const target = openImage(targetText, { insecure: flag(p, 'target-insecure'), log });
  try {
    const r = await convertImage(source.image, target.image, {
      fsVersion: Number(fsVersion) as 5 | 6, compressor, chunkSize, platform, workDir: opt(p, 'work-dir') ?? os.tmpdir(), log,
    });
    process.stdout.write(`${r.manifestDigest}\n`);
    if (preheat) await preheatTarget(targetText, preheat, { insecure: flag(p, 'target-insecure'), platform, log });
    return 0;
  } finally {
    await source.close();
    await target.close();
  }
}

export function platformOption(text: string | undefined) {
  if (text === undefined) return hostPlatform();
  try {
    return parsePlatform(text);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}
