// A chunk compression-information (CI) table read in place (rafs-format.md 4.3-4.4): the entries stay in the buffer
// they came in and each field is decoded when asked for. A layer of 200,000 tiny files has 200,000 entries, and
// decoding them all into objects at a blob's first read cost ~0.2 s and ~50 MiB, most of it garbage collection
// (issue 8, BENCHMARKS.md run M), for the handful of chunks a read touches.
import { RafsError } from '../image-model.js';
import { need, u32Words } from '../le.js';

export const CI_V1_SIZE = 16;
export const CI_V2_SIZE = 24;
/** chunk indexes are 24-bit in v6 chunk addresses */
export const MAX_CI_ENTRIES = 1 << 24;

/** CI v2 entry flags (the top byte of the U word) */
export const CiFlag = {
  COMPRESSED: 0x01,
  ZRAN: 0x02,
  BATCH: 0x04,
  ENCRYPTED: 0x08,
  HAS_CRC32: 0x10,
} as const;

/** One entry decoded into an object (the builder's input, inspection, tests). */
export interface CiEntry {
  compressedOffset: number;
  compressedSize: number;
  uncompressedOffset: number;
  uncompressedSize: number;
  compressed: boolean;
  /** CiFlag bits (v1 entries get COMPRESSED when compressed) */
  flags: number;
  /** v2 D word: zran/batch context and offset, or CRC-32C */
  data: bigint;
}

const TWO32 = 0x1_0000_0000;

/**
 * `count` entries at the start of `buf` (v1: 16 bytes each, v2: 24). The constructor checks only that they fit; an
 * index outside 0..count-1 is the caller's to refuse (`count`). Fields of v1 entries (rafs-format.md 4.3):
 * U = uncompressed offset bits 12..43 in lo[12..31] + hi[0..11], size-1 in lo[8..11] + hi[12..31]; C = compressed
 * offset in lo + hi[0..7], size-1 in hi[8..11] + hi[12..31]. v2 (4.4): U lo = offset / 4096, U hi = size-1 (24 bits)
 * and flags (8 bits); C lo + hi[0..7] = offset, hi[8..31] = compressed size; D = context or CRC-32C.
 */
export class CiTable {
  readonly entrySize: number;
  /** the entries as little-endian 32-bit words: a view of `buf` when it is 4-byte aligned, else a copy */
  private readonly words: Uint32Array;

  constructor(
    readonly buf: Buffer,
    readonly count: number,
    readonly v2: boolean,
  ) {
    this.entrySize = v2 ? CI_V2_SIZE : CI_V1_SIZE;
    if (!Number.isSafeInteger(count) || count < 0 || count > MAX_CI_ENTRIES) throw new RafsError(`ci table: invalid entry count ${count}`);
    need(buf, 0, count * this.entrySize, `ci table of ${count} ${v2 ? 'v2' : 'v1'} entries`);
    this.words = u32Words(buf.subarray(0, count * this.entrySize));
  }

  private word(i: number, w: number): number {
    return this.words[i * (this.entrySize >>> 2) + w]!;
  }

  uncompressedOffset(i: number): number {
    if (this.v2) return this.word(i, 0) * 4096;
    return (this.word(i, 1) & 0xfff) * TWO32 + ((this.word(i, 0) & 0xfffff000) >>> 0);
  }

  uncompressedSize(i: number): number {
    const hi = this.word(i, 1);
    if (this.v2) return (hi & 0xffffff) + 1;
    return ((((this.word(i, 0) >>> 8) & 0xf) << 20) | (hi >>> 12)) + 1;
  }

  compressedOffset(i: number): number {
    return (this.word(i, 3) & 0xff) * TWO32 + this.word(i, 2);
  }

  compressedSize(i: number): number {
    const cHi = this.word(i, 3);
    if (this.v2) return cHi >>> 8;
    return ((((cHi >>> 8) & 0xf) << 20) | (cHi >>> 12)) + 1;
  }

  /** CiFlag bits; a v1 entry is compressed when its two sizes differ. */
  flags(i: number): number {
    if (this.v2) return this.word(i, 1) >>> 24;
    return this.compressedSize(i) !== this.uncompressedSize(i) ? CiFlag.COMPRESSED : 0;
  }

  /** v2: the D word's high half (zran or batch context index); 0 for v1. */
  dataHigh(i: number): number {
    return this.v2 ? this.word(i, 5) : 0;
  }

  /** v2: the D word's low half (offset in the context's output, or the CRC-32C); 0 for v1. */
  dataLow(i: number): number {
    return this.v2 ? this.word(i, 4) : 0;
  }

  /**
   * The first entry that starts before the previous one ends, or -1 when the entries are in order (nydusd
   * binary-searches them). One tight pass over the words: it runs once per blob, over up to 2^24 entries. (Both
   * layouts store offsets in 4 KiB units, so an entry cannot be off a 4K boundary.)
   */
  firstOverlap(): number {
    const w = this.words;
    const n = this.count;
    let end = 0;
    if (this.v2) {
      for (let i = 0, b = 0; i < n; i++, b += 6) {
        const offset = w[b]! * 4096;
        if (offset < end) return i;
        end = offset + (w[b + 1]! & 0xffffff) + 1;
      }
      return -1;
    }
    for (let i = 0, b = 0; i < n; i++, b += 4) {
      const lo = w[b]!;
      const hi = w[b + 1]!;
      const offset = (hi & 0xfff) * TWO32 + ((lo & 0xfffff000) >>> 0);
      if (offset < end) return i;
      end = offset + ((((lo >>> 8) & 0xf) << 20) | (hi >>> 12)) + 1;
    }
    return -1;
  }

  /** End of the blob's uncompressed address space (the 4K-aligned end of its last chunk). */
  uncompressedEnd(): number {
    if (this.count === 0) return 0;
    const last = this.count - 1;
    return Math.ceil((this.uncompressedOffset(last) + this.uncompressedSize(last)) / 4096) * 4096;
  }

  entry(i: number): CiEntry {
    const flags = this.flags(i);
    return {
      compressedOffset: this.compressedOffset(i),
      compressedSize: this.compressedSize(i),
      uncompressedOffset: this.uncompressedOffset(i),
      uncompressedSize: this.uncompressedSize(i),
      compressed: (flags & CiFlag.COMPRESSED) !== 0,
      flags,
      data: this.v2 ? (BigInt(this.dataHigh(i)) << 32n) | BigInt(this.dataLow(i)) : 0n,
    };
  }
}
