// `nydus-image unpack`: image -> tar.
import { unpackToTar } from '../../unpack/unpack.js';
import { one, parseArgs, required, usage, UsageError, type OptSpec } from './args.js';
import { defaultBlobFile, loadImage } from './common.js';
import { checkInputDirectory } from '../../input-file.js';

export const unpackSpecs: OptSpec[] = [
  { long: 'bootstrap', short: 'B', value: true, help: 'Path to the RAFS metadata (bootstrap)' },
  { long: 'blob', short: 'b', value: true, help: 'Path to the data blob' },
  { long: 'blob-dir', short: 'D', value: true, help: 'Directory of data blobs named by id' },
  { long: 'output', short: 'o', value: true, help: 'Path of the tar file to write' },
];

export function unpackUsage(): string {
  return usage('unpack', '-B <BOOTSTRAP> (--blob <BLOB> | --blob-dir <DIR>) --output <TAR>', unpackSpecs);
}

export function runUnpack(argv: string[]): number {
  const p = parseArgs(argv, unpackSpecs, 'unpack');
  if (p.positionals.length > 0) throw new UsageError(`unpack: unexpected argument '${p.positionals[0]}'`);
  const bs = loadImage(required(p, 'bootstrap', 'unpack'));
  const output = required(p, 'output', 'unpack');
  const blobFile = defaultBlobFile(required(p, 'bootstrap', 'unpack'), one(p, 'blob'), one(p, 'blob-dir'));
  const blobDir = one(p, 'blob-dir');
  if (blobDir) checkInputDirectory(blobDir, 'blob directory');
  if (!blobFile && !blobDir && bs.blobs.length > 0) throw new UsageError("unpack: one of '--blob' or '--blob-dir' is required");
  unpackToTar(bs, { blobFile, blobDir }, output);
  return 0;
}
