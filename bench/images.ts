// Building the two images of one tree: ours with `nydus-image create` (v6, localfs-ready blob dir) and
// the peer's with mksquashfs. Both are timed as whole processes.
import fs from 'node:fs';
import path from 'node:path';
import { dirSize, fileSize, nydusImageJs, rmrf, timed } from './common.js';

export type Algo = 'zstd' | 'lz4';

export interface NydusImage {
  bootstrap: string;
  blobDir: string;
  seconds: number;
  cpuSeconds: number;
  maxRssMiB: number;
  /** bootstrap + blobs */
  bytes: number;
}

export interface SquashImage {
  file: string;
  seconds: number;
  cpuSeconds: number;
  maxRssMiB: number;
  bytes: number;
}

/** nydus-image compressor name of a peer-neutral algorithm name. */
export function nydusCompressor(a: Algo): string {
  return a === 'zstd' ? 'zstd' : 'lz4_block';
}

export function buildNydus(src: string, outDir: string, algo: Algo): NydusImage {
  rmrf(outDir);
  const blobDir = path.join(outDir, 'blobs');
  fs.mkdirSync(blobDir, { recursive: true });
  const bootstrap = path.join(outDir, 'bootstrap');
  const r = timed(process.execPath, [nydusImageJs, 'create', '--fs-version', '6', '--compressor', nydusCompressor(algo), '--bootstrap', bootstrap, '--blob-dir', blobDir, src]);
  return { bootstrap, blobDir, seconds: r.seconds, cpuSeconds: r.cpuSeconds, maxRssMiB: r.maxRssMiB, bytes: fileSize(bootstrap) + dirSize(blobDir) };
}

/**
 * mksquashfs with the same compressor on 2 processors. `zstdLevel` undefined keeps mksquashfs's default
 * (15); nydus-image compresses zstd at level 3, so the fair pairing passes 3.
 */
export function buildSquash(src: string, file: string, algo: Algo, zstdLevel?: number): SquashImage {
  rmrf(file);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const args = [src, file, '-comp', algo, '-processors', '2', '-noappend', '-no-progress', '-quiet'];
  if (algo === 'zstd' && zstdLevel !== undefined) args.push('-Xcompression-level', String(zstdLevel));
  const r = timed('mksquashfs', args, { stdoutToNull: true });
  return { file, seconds: r.seconds, cpuSeconds: r.cpuSeconds, maxRssMiB: r.maxRssMiB, bytes: fileSize(file) };
}

export interface ImagePair {
  nydus: NydusImage;
  squash: SquashImage;
}

/**
 * Both images of a tree, built once into `<work>/images/<name>-<algo>` and reused by later benchmarks
 * (the `.done` marker holds the build times). squashfs gets the zstd level nydus-image uses (3).
 */
export function cachedImages(work: string, name: string, src: string, algo: Algo): ImagePair {
  const dir = path.join(work, 'images', `${name}-${algo}`);
  const marker = `${dir}.done`;
  if (fs.existsSync(marker)) return JSON.parse(fs.readFileSync(marker, 'utf8')) as ImagePair;
  rmrf(dir);
  const nydus = buildNydus(src, path.join(dir, 'nydus'), algo);
  const squash = buildSquash(src, path.join(dir, 'image.squashfs'), algo, 3);
  const pair = { nydus, squash };
  fs.writeFileSync(marker, JSON.stringify(pair));
  return pair;
}
