// Bounds-checked little-endian reads. Buffer's own readers throw RangeError on overrun; corrupt images
// must instead yield a RafsError that names the field, so every read in the parsers goes through here.
import os from 'node:os';
import { RafsError } from './image-model.js';

const LITTLE_ENDIAN_HOST = os.endianness() === 'LE';

/**
 * `buf` (a multiple of 4 bytes long) as little-endian 32-bit words, for tables scanned whole (a 200,000-chunk layer's
 * CI table, issue 8): a view when the host is little-endian and `buf` 4-byte aligned (large Buffers
 * own their memory), else a copy.
 */
export function u32Words(buf: Buffer): Uint32Array {
  const n = buf.length >>> 2;
  if (LITTLE_ENDIAN_HOST && buf.byteOffset % 4 === 0) return new Uint32Array(buf.buffer, buf.byteOffset, n);
  const words = new Uint32Array(n);
  for (let k = 0; k < n; k++) words[k] = buf.readUInt32LE(k * 4);
  return words;
}

export function need(buf: Buffer, off: number, len: number, what: string): void {
  if (!Number.isSafeInteger(off) || !Number.isSafeInteger(len) || off < 0 || len < 0 || off + len > buf.length) {
    throw new RafsError(`${what}: range ${off}+${len} outside ${buf.length}-byte buffer`);
  }
}

export function u8(buf: Buffer, off: number, what: string): number {
  need(buf, off, 1, what);
  return buf[off];
}

export function u16(buf: Buffer, off: number, what: string): number {
  need(buf, off, 2, what);
  return buf.readUInt16LE(off);
}

export function u32(buf: Buffer, off: number, what: string): number {
  need(buf, off, 4, what);
  return buf.readUInt32LE(off);
}

/** u64 as a number; values beyond 2^53 cannot be offsets or sizes of anything real, so they are errors. */
export function u64(buf: Buffer, off: number, what: string): number {
  need(buf, off, 8, what);
  const lo = buf.readUInt32LE(off);
  const hi = buf.readUInt32LE(off + 4);
  if (hi > 0x1fffff) throw new RafsError(`${what}: value 0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')} too large`);
  return hi * 0x1_0000_0000 + lo;
}

export function u64big(buf: Buffer, off: number, what: string): bigint {
  need(buf, off, 8, what);
  return buf.readBigUInt64LE(off);
}

export function writeU64(buf: Buffer, off: number, v: number, what: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RafsError(`${what}: ${v} is not a valid u64`);
  buf.writeUInt32LE(v % 0x1_0000_0000, off);
  buf.writeUInt32LE(Math.floor(v / 0x1_0000_0000), off + 4);
}
