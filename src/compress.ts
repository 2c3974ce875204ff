// Chunk compression for the four compressors RAFS knows. lz4 and zstd go through the native addon;
// gzip uses node:zlib.
import { gunzipSync, gzipSync } from 'node:zlib';

import { native } from './native/index.js';
import { Compressor } from './image-model.js';

/** Level used for new zstd chunks (nydus-image's default). */
export const ZSTD_LEVEL = 3;

const NAMES: Record<Compressor, string> = {
  [Compressor.None]: 'none',
  [Compressor.Lz4Block]: 'lz4_block',
  [Compressor.Gzip]: 'gzip',
  [Compressor.Zstd]: 'zstd',
};

export function compressorName(a: Compressor): string {
  const name = NAMES[a];
  if (name === undefined) throw new Error(`unknown compressor ${String(a)}`);
  return name;
}

export function parseCompressor(name: string): Compressor {
  for (const [value, n] of Object.entries(NAMES)) {
    if (n === name) return Number(value) as Compressor;
  }
  throw new Error(`unknown compressor '${name}' (expected none, lz4_block, zstd or gzip)`);
}

/** Raw compressed bytes (no framing added); the caller keeps the input instead when this is not smaller. */
export function compress(algo: Compressor, src: Buffer): Buffer {
  switch (algo) {
    case Compressor.None:
      return src;
    case Compressor.Lz4Block:
      return native.lz4Compress(src);
    case Compressor.Zstd:
      return native.zstdCompress(src, ZSTD_LEVEL);
    case Compressor.Gzip:
      return gzipSync(src);
    default:
      throw new Error(`unknown compressor ${String(algo)}`);
  }
}

/**
 * Decodes `src`, which must expand to exactly `uncompressedSize` bytes, into `dst` when given (it
 * must hold at least that many; the result is its prefix) or into a new Buffer.
 */
export function decompress(algo: Compressor, src: Buffer, uncompressedSize: number, dst?: Buffer): Buffer {
  checkSizes(algo, uncompressedSize, dst);
  if (algo === Compressor.None) {
    if (src.length !== uncompressedSize) {
      throw new Error(`none: chunk has ${src.length} bytes, expected ${uncompressedSize}`);
    }
    if (!dst) return src;
    src.copy(dst);
    return dst.subarray(0, uncompressedSize);
  }
  const out = dst ? dst.subarray(0, uncompressedSize) : Buffer.allocUnsafe(uncompressedSize);
  let written: number;
  switch (algo) {
    case Compressor.Lz4Block:
      written = lz4Into(src, out);
      break;
    case Compressor.Zstd:
      written = zstdInto(src, out);
      break;
    case Compressor.Gzip:
      written = gunzipInto(src, out);
      break;
    default:
      throw new Error(`unknown compressor ${String(algo)}`);
  }
  if (written !== uncompressedSize) {
    throw new Error(
      `${nameOf(algo)}: chunk decodes to ${written} bytes, expected ${uncompressedSize} (${src.length} bytes compressed)`,
    );
  }
  return out;
}

function checkSizes(algo: Compressor, uncompressedSize: number, dst: Buffer | undefined): void {
  if (!Number.isSafeInteger(uncompressedSize) || uncompressedSize < 0) {
    throw new Error(`${nameOf(algo)}: invalid uncompressed size ${uncompressedSize}`);
  }
  if (dst && dst.length < uncompressedSize) {
    throw new Error(`${nameOf(algo)}: destination of ${dst.length} bytes is smaller than the uncompressed size ${uncompressedSize}`);
  }
}

function nameOf(algo: Compressor): string {
  return NAMES[algo] ?? `compressor ${String(algo)}`;
}

/**
 * Native decoder errors, reworded: lz4 cannot tell corrupt input from output that does not fit, so the
 * message names both; zstd with an exact-size output reports "too small" for data longer than declared.
 */
function explain(algo: Compressor, e: unknown, src: Buffer, out: Buffer): unknown {
  if (!(e instanceof Error)) return e;
  if (algo === Compressor.Lz4Block && e.message.startsWith('lz4:')) {
    return new Error(`lz4_block: corrupt chunk, or it decodes to more than the expected ${out.length} bytes (${src.length} bytes compressed)`);
  }
  if (algo === Compressor.Zstd && e.message.includes('Destination buffer is too small')) {
    return new Error(`zstd: chunk decodes to more than the expected ${out.length} bytes (${src.length} bytes compressed)`);
  }
  return e;
}

function lz4Into(src: Buffer, out: Buffer): number {
  try {
    return native.lz4DecompressInto(src, out);
  } catch (e) {
    throw explain(Compressor.Lz4Block, e, src, out);
  }
}

function zstdInto(src: Buffer, out: Buffer): number {
  try {
    return native.zstdDecompressInto(src, out);
  } catch (e) {
    throw explain(Compressor.Zstd, e, src, out);
  }
}

/**
 * `decompress` off the JS thread for lz4 and zstd (the libuv pool decodes on another core), with the
 * same checks and messages; other compressors decode synchronously. Into `dst` when given (as `decompress`),
 * else into a new Buffer; `dst` must stay untouched until the promise settles.
 */
export async function decompressAsync(algo: Compressor, src: Buffer, uncompressedSize: number, dst?: Buffer): Promise<Buffer> {
  if (algo !== Compressor.Lz4Block && algo !== Compressor.Zstd) return decompress(algo, src, uncompressedSize, dst);
  checkSizes(algo, uncompressedSize, dst);
  const out = dst ? dst.subarray(0, uncompressedSize) : Buffer.allocUnsafe(uncompressedSize);
  let written: number;
  try {
    written = await native.decompressAsync(algo, src, out);
  } catch (e) {
    throw explain(algo, e, src, out);
  }
  if (written !== uncompressedSize) {
    throw new Error(`${nameOf(algo)}: chunk decodes to ${written} bytes, expected ${uncompressedSize} (${src.length} bytes compressed)`);
  }
  return out;
}

function gunzipInto(src: Buffer, out: Buffer): number {
  let plain: Buffer;
  try {
    // maxOutputLength bounds memory on a gzip bomb: one byte past the expected size is enough to know it is wrong.
    plain = gunzipSync(src, { maxOutputLength: Math.max(out.length + 1, 1) });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (e instanceof RangeError || (e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new Error(`gzip: chunk decodes to more than the expected ${out.length} bytes (${src.length} bytes compressed)`);
    }
    throw new Error(`gzip: corrupt input (${src.length} bytes): ${msg}`);
  }
  if (plain.length === out.length) plain.copy(out);
  return plain.length;
}
