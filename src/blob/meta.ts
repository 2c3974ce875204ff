// The blob-meta ("CI") header and chunk compression-information tables of a v6 data blob (rafs-format.md 4.2-4.4).
import { RafsError, Compressor } from '../image-model.js';
import { u32, u64, writeU64 } from '../le.js';
import { CiTable, CiFlag, CI_V1_SIZE, CI_V2_SIZE, MAX_CI_ENTRIES, type CiEntry } from './ci-table.js';

// the entry layout lives with the in-place reader; re-exported for the header's and the encoders' users
export { CiTable, CiFlag, CI_V1_SIZE, CI_V2_SIZE, MAX_CI_ENTRIES, type CiEntry } from './ci-table.js';

export const META_HEADER_SIZE = 4096;
export const META_MAGIC = 0xb10bb10b;
export interface BlobMetaHeader {
  features: number;
  ciCompressor: Compressor;
  ciEntries: number;
  ciOffset: number;
  ciCompressedSize: number;
  ciUncompressedSize: number;
  zranOffset: number;
  zranSize: number;
  zranCount: number;
}

// Feature bits nydusd accepts in the low half (rafs-format.md 1.3); bit 31 is internal only.
const KNOWN_LOW_FEATURES = 0x0fff;

export function checkFeatures(features: number, what: string): void {
  if ((features & 0xffff & ~KNOWN_LOW_FEATURES) !== 0 || (features & 0x8000_0000) !== 0) {
    throw new RafsError(`${what}: features 0x${(features >>> 0).toString(16)} has unknown bits`);
  }
}

export function checkCompressor(v: number, what: string): Compressor {
  if (v > Compressor.Zstd) throw new RafsError(`${what}: unknown compressor ${v}`);
  return v as Compressor;
}

export function encodeMetaHeader(h: BlobMetaHeader): Buffer {
  const b = Buffer.alloc(META_HEADER_SIZE);
  b.writeUInt32LE(META_MAGIC, 0);
  b.writeUInt32LE(h.features >>> 0, 4);
  b.writeUInt32LE(h.ciCompressor, 8);
  b.writeUInt32LE(h.ciEntries, 12);
  writeU64(b, 16, h.ciOffset, 'blob meta ci_offset');
  writeU64(b, 24, h.ciCompressedSize, 'blob meta ci_compressed_size');
  writeU64(b, 32, h.ciUncompressedSize, 'blob meta ci_uncompressed_size');
  writeU64(b, 40, h.zranOffset, 'blob meta zran_offset');
  writeU64(b, 48, h.zranSize, 'blob meta zran_size');
  b.writeUInt32LE(h.zranCount, 56);
  b.writeUInt32LE(META_MAGIC, 4092);
  return b;
}

export function parseMetaHeader(buf: Buffer): BlobMetaHeader {
  if (buf.length < META_HEADER_SIZE) throw new RafsError(`blob meta header: need ${META_HEADER_SIZE} bytes, have ${buf.length}`);
  if (buf.readUInt32LE(0) !== META_MAGIC) throw new RafsError(`blob meta header: bad magic 0x${buf.readUInt32LE(0).toString(16)}`);
  if (buf.readUInt32LE(4092) !== META_MAGIC) throw new RafsError(`blob meta header: bad magic2 0x${buf.readUInt32LE(4092).toString(16)}`);
  const h: BlobMetaHeader = {
    features: u32(buf, 4, 'blob meta features'),
    ciCompressor: checkCompressor(u32(buf, 8, 'blob meta ci_compressor'), 'blob meta ci_compressor'),
    ciEntries: u32(buf, 12, 'blob meta ci_entries'),
    ciOffset: u64(buf, 16, 'blob meta ci_offset'),
    ciCompressedSize: u64(buf, 24, 'blob meta ci_compressed_size'),
    ciUncompressedSize: u64(buf, 32, 'blob meta ci_uncompressed_size'),
    zranOffset: u64(buf, 40, 'blob meta zran_offset'),
    zranSize: u64(buf, 48, 'blob meta zran_size'),
    zranCount: u32(buf, 56, 'blob meta zran_count'),
  };
  checkFeatures(h.features, 'blob meta header');
  if (h.ciEntries > MAX_CI_ENTRIES) throw new RafsError(`blob meta header: ci_entries ${h.ciEntries} exceeds 2^24`);
  const entrySize = h.features & 0x4 ? CI_V2_SIZE : CI_V1_SIZE;
  if (h.ciUncompressedSize < h.ciEntries * entrySize) {
    throw new RafsError(`blob meta header: ci_uncompressed_size ${h.ciUncompressedSize} too small for ${h.ciEntries} entries`);
  }
  if (h.zranCount > 0 && h.zranOffset + h.zranSize > h.ciUncompressedSize) {
    throw new RafsError(`blob meta header: zran area ${h.zranOffset}+${h.zranSize} outside ci_uncompressed_size ${h.ciUncompressedSize}`);
  }
  return h;
}

function sizeField(size: number, max: number, what: string): number {
  if (!Number.isInteger(size) || size < 1 || size > max) throw new RafsError(`${what}: size ${size} out of range 1..${max}`);
  return size - 1;
}

const TWO32 = 0x1_0000_0000;

export function encodeCiV1(entries: CiEntry[]): Buffer {
  const b = Buffer.alloc(entries.length * CI_V1_SIZE);
  entries.forEach((e, i) => {
    const what = `ci v1 entry ${i}`;
    if (e.uncompressedOffset % 4096 !== 0 || e.uncompressedOffset >= 2 ** 44) throw new RafsError(`${what}: uncompressed offset ${e.uncompressedOffset} not 4K aligned below 2^44`);
    if (e.compressedOffset < 0 || e.compressedOffset >= 2 ** 40) throw new RafsError(`${what}: compressed offset ${e.compressedOffset} out of range`);
    if (e.compressed === (e.compressedSize === e.uncompressedSize)) throw new RafsError(`${what}: v1 marks compression by differing sizes`);
    const us = sizeField(e.uncompressedSize, 1 << 24, what);
    const cs = sizeField(e.compressedSize, 1 << 24, what);
    const off = i * CI_V1_SIZE;
    const uLo = (e.uncompressedOffset % TWO32) | (((us >>> 20) & 0xf) << 8);
    const uHi = Math.floor(e.uncompressedOffset / TWO32) | ((us & 0xfffff) << 12);
    b.writeUInt32LE(uLo >>> 0, off);
    b.writeUInt32LE(uHi >>> 0, off + 4);
    const cLo = e.compressedOffset % TWO32;
    const cHi = Math.floor(e.compressedOffset / TWO32) | (((cs >>> 20) & 0xf) << 8) | ((cs & 0xfffff) << 12);
    b.writeUInt32LE(cLo >>> 0, off + 8);
    b.writeUInt32LE(cHi >>> 0, off + 12);
  });
  return b;
}

export function encodeCiV2(entries: CiEntry[]): Buffer {
  const b = Buffer.alloc(entries.length * CI_V2_SIZE);
  entries.forEach((e, i) => {
    const what = `ci v2 entry ${i}`;
    if (e.uncompressedOffset % 4096 !== 0 || e.uncompressedOffset / 4096 >= TWO32) throw new RafsError(`${what}: uncompressed offset ${e.uncompressedOffset} not 4K aligned below 2^44`);
    if (e.compressedOffset < 0 || e.compressedOffset >= 2 ** 40) throw new RafsError(`${what}: compressed offset ${e.compressedOffset} out of range`);
    if (e.compressedSize < 0 || e.compressedSize >= 1 << 24) throw new RafsError(`${what}: compressed size ${e.compressedSize} out of range`);
    const us = sizeField(e.uncompressedSize, 1 << 24, what);
    const flags = (e.flags & ~CiFlag.COMPRESSED) | (e.compressed ? CiFlag.COMPRESSED : 0);
    if (flags > 0xff) throw new RafsError(`${what}: flags 0x${flags.toString(16)} do not fit a byte`);
    const off = i * CI_V2_SIZE;
    b.writeUInt32LE(e.uncompressedOffset / 4096, off);
    b.writeUInt32LE(((us & 0xffffff) | (flags << 24)) >>> 0, off + 4);
    b.writeUInt32LE(e.compressedOffset % TWO32, off + 8);
    b.writeUInt32LE((Math.floor(e.compressedOffset / TWO32) | (e.compressedSize << 8)) >>> 0, off + 12);
    b.writeBigUInt64LE(BigInt.asUintN(64, e.data), off + 16);
  });
  return b;
}

/** Decode `count` entries into objects; `buf` must hold them all (checked before anything is allocated). */
export function parseCiTable(buf: Buffer, count: number, v2: boolean): CiEntry[] {
  const table = new CiTable(buf, count, v2);
  const out: CiEntry[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = table.entry(i);
  return out;
}
