// Pieces both bootstrap formats share: superblock flag decoding, file-type bits, blob id substitution.
import { RafsError, Compressor, Digester, SuperFlag, BlobFeature, type BlobInfo } from '../image-model.js';

export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;

const VALID_TYPES = new Set([S_IFSOCK, S_IFLNK, S_IFREG, S_IFBLK, S_IFDIR, S_IFCHR, S_IFIFO]);

export function checkMode(mode: number, what: string): number {
  if (!VALID_TYPES.has(mode & S_IFMT) || mode > 0xffff) throw new RafsError(`${what}: invalid i_mode 0o${mode.toString(8)}`);
  return mode;
}

export const isDir = (mode: number): boolean => (mode & S_IFMT) === S_IFDIR;
export const isReg = (mode: number): boolean => (mode & S_IFMT) === S_IFREG;
export const isLnk = (mode: number): boolean => (mode & S_IFMT) === S_IFLNK;

// Bits 0x1..0x200, ENCRYPTION_* and the PRESERVED_COMPAT bits 0x0400_0000..0x8000_0000 (rafs-format.md 1.2).
const KNOWN_SUPER_FLAGS = 0xff00_03ffn;

const COMPRESSOR_BITS: [bigint, Compressor][] = [
  [SuperFlag.COMPRESSION_NONE, Compressor.None],
  [SuperFlag.COMPRESSION_LZ4, Compressor.Lz4Block],
  [SuperFlag.COMPRESSION_GZIP, Compressor.Gzip],
  [SuperFlag.COMPRESSION_ZSTD, Compressor.Zstd],
];

export interface DecodedFlags {
  compressor: Compressor;
  digester: Digester;
}

/** `strict` (v6) demands exactly one compressor and one hash bit; v5 takes the first match, as nydusd does. */
export function decodeSuperFlags(flags: bigint, strict: boolean, what: string): DecodedFlags {
  const unknown = flags & ~KNOWN_SUPER_FLAGS;
  if (unknown !== 0n) throw new RafsError(`${what}: s_flags has unknown bits 0x${unknown.toString(16)}`);
  const comps = COMPRESSOR_BITS.filter(([bit]) => (flags & bit) !== 0n);
  const blake3 = (flags & SuperFlag.HASH_BLAKE3) !== 0n;
  const sha256 = (flags & SuperFlag.HASH_SHA256) !== 0n;
  if (strict) {
    if (comps.length !== 1) throw new RafsError(`${what}: s_flags 0x${flags.toString(16)} must have exactly one compressor bit`);
    if (blake3 === sha256) throw new RafsError(`${what}: s_flags 0x${flags.toString(16)} must have exactly one hash bit`);
  }
  return {
    compressor: comps.length > 0 ? comps[0][1] : Compressor.Lz4Block,
    digester: blake3 || !sha256 ? Digester.Blake3 : Digester.Sha256,
  };
}

export interface OpenOptions {
  /** the file the bootstrap was loaded from; its name stripped of all extensions replaces placeholder blob ids */
  fileName?: string;
  /** the bootstrap was extracted from a data blob (inlined meta): pre-2.2 blob ids are replaced too */
  extractedFromBlob?: boolean;
}

/** `dir/abc.boot.tar` → `abc` */
export function stripExtensions(fileName: string): string {
  const base = fileName.slice(fileName.lastIndexOf('/') + 1);
  const dot = base.indexOf('.', 1);
  return dot < 0 ? base : base.slice(0, dot);
}

/**
 * Builders cannot know the digest of a blob they inline the bootstrap into, so such blobs carry a placeholder
 * id; nydusd names them after the file it loaded the bootstrap from. Blobs without CAP_TAR_TOC (pre-2.2) get the
 * same treatment only when the bootstrap itself came out of a blob.
 */
export function substituteBlobIds(blobs: BlobInfo[], opts: OpenOptions | undefined): void {
  if (opts?.fileName === undefined) return;
  const id = stripExtensions(opts.fileName);
  if (id === '') return;
  for (const b of blobs) {
    const inlined = (b.features & BlobFeature.INLINED_FS_META) !== 0 && (b.features & (BlobFeature.SEPARATE | BlobFeature.EXTERNAL)) === 0;
    const legacy = opts.extractedFromBlob === true && (b.features & BlobFeature.CAP_TAR_TOC) === 0;
    if (inlined || legacy) b.blobId = id;
  }
}

/** raw byte order, as both formats sort names */
export const compareNames = (a: Buffer, b: Buffer): number => Buffer.compare(a, b);

/** A tiny bounded cache: cleared when full, which is cheap and keeps hot entries warm enough for walks. */
export class SmallCache<K, V> {
  private map = new Map<K, V>();
  constructor(private readonly limit: number) {}
  get(k: K): V | undefined {
    return this.map.get(k);
  }
  set(k: K, v: V): V {
    if (this.map.size >= this.limit) this.map.clear();
    this.map.set(k, v);
    return v;
  }
}
