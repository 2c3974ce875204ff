// `nydus-image check`: walks the whole image (every inode, xattr, link and chunk record) and, when blobs
// are given, reads every chunk and verifies its digest. The first problem found is the error.
import { BlobReader } from '../../unpack/blob-reader.js';
import type { ChunkInfo } from '../../image-model.js';
import { one, parseArgs, required, usage, UsageError, type OptSpec } from './args.js';
import { defaultBlobFile, loadImage, writeJson } from './common.js';
import { io } from './io.js';
import { checkInputDirectory, checkOutputFile } from '../../input-file.js';
import { walk } from '../../rafs/walk.js';

export const checkSpecs: OptSpec[] = [
  { long: 'bootstrap', short: 'B', value: true, help: 'Path to the RAFS metadata (bootstrap)' },
  { long: 'blob', short: 'b', value: true, help: 'Path to the data blob (verify every chunk)' },
  { long: 'blob-dir', short: 'D', value: true, help: 'Directory of data blobs named by id (verify every chunk)' },
  { long: 'verbose', short: 'v', help: 'Print every entry checked' },
  { long: 'output-json', short: 'J', value: true, help: 'File path to save the check summary as JSON' },
];

export function checkUsage(): string {
  return usage('check', '[OPTIONS] -B <BOOTSTRAP>', checkSpecs);
}

export function runCheck(argv: string[]): number {
  const p = parseArgs(argv, checkSpecs, 'check');
  if (p.positionals.length > 0) throw new UsageError(`check: unexpected argument '${p.positionals[0]}'`);
  const file = required(p, 'bootstrap', 'check');
  const bs = loadImage(file);
  const blobFile = defaultBlobFile(one(p, 'bootstrap')!, one(p, 'blob'), one(p, 'blob-dir'));
  const blobDir = one(p, 'blob-dir');
  if (blobDir) checkInputDirectory(blobDir, 'blob directory');
  if (one(p, 'output-json')) checkOutputFile(one(p, 'output-json')!, 'JSON output');
  const reader = blobFile || blobDir ? new BlobReader(bs, { blobFile, blobDir }) : undefined;
  let entries = 0;
  let files = 0;
  let chunks = 0;
  let bytes = 0;
  const verbose = p.flags.has('verbose');
  try {
    walk(bs, (path, inode) => {
      entries++;
      if (verbose) io.stdout(`${path.toString()}\n`);
      const fmt = inode.mode & 0o170000;
      if (inode.hasXattr) bs.xattrs(inode.ino);
      if (fmt === 0o120000) bs.readlink(inode.ino);
      if (fmt === 0o040000) {
        for (const e of bs.readdir(inode.ino)) {
          if ((e.type & 0o170000) === 0o040000 && bs.parentOf(e.ino) !== inode.ino) {
            throw new Error(`${path.toString()}/${e.name.toString()}: '..' points to inode ${bs.parentOf(e.ino)}, not ${inode.ino}`);
          }
        }
      }
      if (fmt !== 0o100000) return;
      files++;
      const list = bs.chunks(inode.ino);
      let covered = 0;
      for (const c of list) {
        if (c.fileOffset !== covered) {
          throw new Error(`${path.toString()}: chunk at file offset ${c.fileOffset}, expected ${covered}`);
        }
        if (c.blobIndex >= bs.blobs.length) throw new Error(`${path.toString()}: chunk refers to missing blob ${c.blobIndex}`);
        if (reader) {
          let data: Buffer;
          try {
            if (bs.blobs[c.blobIndex].ciCompressedSize > 0 && c.compressedSize > 0) checkAgainstCi(reader, c);
            data = reader.readChunk(c, true);
          } catch (e) {
            throw new Error(`${path.toString()}: ${(e as Error).message}`);
          }
          covered += data.length;
          bytes += data.length;
        } else {
          covered += c.uncompressedSize;
        }
        chunks++;
      }
      if (covered !== inode.size) throw new Error(`${path.toString()}: chunks cover ${covered} bytes of a ${inode.size}-byte file`);
    });
  } finally {
    reader?.close();
  }
  const summary = { version: bs.superblock.version, entries, files, chunks, verified_bytes: bytes, blobs: bs.blobs.map((b) => b.blobId) };
  writeJson(one(p, 'output-json'), summary);
  io.stdout(
    `RAFS v${summary.version} image OK: ${entries} entries, ${files} regular files, ${chunks} chunks` +
      (reader ? `, ${bytes} bytes read and verified\n` : ' (blobs not checked: pass --blob or --blob-dir)\n'),
  );
  return 0;
}

/** The bootstrap's chunk record and the blob's own CI entry must describe the same bytes. */
function checkAgainstCi(reader: BlobReader, c: ChunkInfo): void {
  const ci = reader.ciEntry(c.blobIndex, c.index);
  if (!ci) throw new Error(`chunk index ${c.index} is beyond the CI table of blob ${c.blobIndex}`);
  if (
    ci.compressedOffset !== c.compressedOffset ||
    ci.compressedSize !== c.compressedSize ||
    ci.uncompressedOffset !== c.uncompressedOffset ||
    ci.uncompressedSize !== c.uncompressedSize
  ) {
    throw new Error(
      `chunk ${c.index} of blob ${c.blobIndex}: bootstrap says c[${c.compressedOffset}+${c.compressedSize}] u[${c.uncompressedOffset}+${c.uncompressedSize}], ` +
        `CI table says c[${ci.compressedOffset}+${ci.compressedSize}] u[${ci.uncompressedOffset}+${ci.uncompressedSize}]`,
    );
  }
}
