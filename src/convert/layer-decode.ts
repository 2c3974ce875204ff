// A source layer blob -> its uncompressed tar (the layer's diff), whatever the compression: gzip, zstd or none,
// told by the bytes' magic rather than trusted from the media type (images in the wild mislabel them). The
// tar's sha256 is the layer's diff_id, checked by the caller against the image config.
import { spawn } from 'node:child_process';
import { closeSync, createReadStream, createWriteStream, openSync, readSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { hasGzipMagic } from '../builder/source-tar.js';
import { HashingStream } from './blob-transfer.js';

export type LayerCompression = 'gzip' | 'zstd' | 'none';

export function detectCompression(file: string): LayerCompression {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(4);
    const n = readSync(fd, b, 0, 4, 0);
    if (hasGzipMagic(b.subarray(0, n))) return 'gzip';
    if (n === 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
    return 'none';
  } finally {
    closeSync(fd);
  }
}

/** Writes the uncompressed tar of the layer blob `blobFile` to `tarFile`; returns its digest (the diff_id). */
export async function decodeLayer(blobFile: string, tarFile: string): Promise<{ diffId: string; compression: LayerCompression }> {
  const compression = detectCompression(blobFile);
  const hashing = new HashingStream();
  if (compression === 'gzip') {
    await pipeline(createReadStream(blobFile), createGunzip(), hashing, createWriteStream(tarFile)).catch((e: Error) => {
      throw new Error(`layer ${blobFile} is not valid gzip: ${e.message}`);
    });
  } else if (compression === 'zstd') {
    await unzstd(blobFile, hashing, tarFile);
  } else {
    await pipeline(createReadStream(blobFile), hashing, createWriteStream(tarFile));
  }
  return { diffId: hashing.digest(), compression };
}

/**
 * zstd streams through Debian's `zstd` (installed by scripts/setup.sh): Node 20's zlib has no zstd, and the
 * addon's decoder needs the whole frame and its size up front, which a streamed layer does not promise.
 */
async function unzstd(blobFile: string, hashing: HashingStream, tarFile: string): Promise<void> {
  const child = spawn('zstd', ['-d', '-c', '-q', blobFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', (e: NodeJS.ErrnoException) =>
      reject(new Error(e.code === 'ENOENT' ? "zstd layers need the 'zstd' program, which is not installed" : `zstd: ${e.message}`)),
    );
    child.once('close', resolve);
  });
  const copied = pipeline(child.stdout, hashing, createWriteStream(tarFile));
  const [code] = await Promise.all([exited, copied]);
  if (code !== 0) throw new Error(`layer ${blobFile} is not valid zstd: ${stderr.trim() || `zstd exited ${code}`}`);
}
