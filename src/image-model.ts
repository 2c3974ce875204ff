// The in-memory model shared by the bootstrap reader, the builder and the filesystem.
// A reader turns either format (v5 or v6) into these shapes, so nothing above it needs to know
// which format an image uses.

/** Compressor numbers as stored in v6 blob entries and blob-meta headers (rafs-format.md 1.1). */
export enum Compressor {
  None = 0,
  Lz4Block = 1,
  Gzip = 2,
  Zstd = 3,
}

/** Digester numbers as stored in v6 blob entries (rafs-format.md 1.1). */
export enum Digester {
  Blake3 = 0,
  Sha256 = 1,
}

/** Superblock flags (rafs-format.md 1.2). */
export const SuperFlag = {
  COMPRESSION_NONE: 0x1n,
  COMPRESSION_LZ4: 0x2n,
  HASH_BLAKE3: 0x4n,
  HASH_SHA256: 0x8n,
  EXPLICIT_UID_GID: 0x10n,
  HAS_XATTR: 0x20n,
  COMPRESSION_GZIP: 0x40n,
  COMPRESSION_ZSTD: 0x80n,
  INLINED_CHUNK_DIGEST: 0x100n,
  TARFS_MODE: 0x200n,
  ENCRYPTION_NONE: 0x0100_0000n,
  ENCRYPTION_AES_128_XTS: 0x0200_0000n,
} as const;

/** Blob feature bits (rafs-format.md 1.3). */
export const BlobFeature = {
  ALIGNED: 0x1,
  INLINED_FS_META: 0x2,
  CHUNK_INFO_V2: 0x4,
  ZRAN: 0x8,
  SEPARATE: 0x10,
  INLINED_CHUNK_DIGEST: 0x20,
  TARFS: 0x40,
  BATCH: 0x80,
  ENCRYPTED: 0x100,
  IS_CHUNKDICT_GENERATED: 0x200,
  IS_SEPARATED_WITH_PREFETCH_FILES: 0x400,
  EXTERNAL: 0x800,
  HAS_TAR_HEADER: 0x1000_0000,
  HAS_TOC: 0x2000_0000,
  CAP_TAR_TOC: 0x4000_0000,
} as const;

/** Chunk flags of the 80-byte chunk record (rafs-format.md 1.4). */
export const ChunkFlag = {
  COMPRESSED: 0x1,
  ENCRYPTED: 0x4,
  BATCH: 0x8,
  HAS_CRC32: 0x10,
} as const;

/** One chunk of file content as stored in a data blob. Offsets are plain numbers (< 2^53). */
export interface ChunkInfo {
  /** digest of the uncompressed bytes (32 bytes) */
  digest: Buffer;
  blobIndex: number;
  /** chunk index inside its blob (= CI index) */
  index: number;
  flags: number;
  compressedOffset: number;
  compressedSize: number;
  uncompressedOffset: number;
  uncompressedSize: number;
  /** offset of this chunk in the file it belongs to */
  fileOffset: number;
  /** CRC-32C of the uncompressed bytes when flags has HAS_CRC32 */
  crc32: number;
}

/** One data blob referenced by a bootstrap (v5 blob table + extended table, or v6 blob table). */
export interface BlobInfo {
  /** 64-char lowercase hex id (trailing NULs stripped) */
  blobId: string;
  index: number;
  chunkSize: number;
  chunkCount: number;
  compressor: Compressor;
  digester: Digester;
  features: number;
  compressedSize: number;
  uncompressedSize: number;
  /** v5 only: readahead range */
  readaheadOffset: number;
  readaheadSize: number;
  /** v6 only (0 for v5): CI table location inside the blob */
  ciCompressor: Compressor;
  ciOffset: number;
  ciCompressedSize: number;
  ciUncompressedSize: number;
  tocSize: number;
  tocDigest: Buffer;
  metaDigest: Buffer;
  metaSize: number;
  /** v6 device slot: mapped block address (block-device export only) */
  mappedBlkaddr: number;
}

/** Attributes of one inode, independent of the format. */
export interface Inode {
  /** the inode number a filesystem reports: v6 nid, v5 inode number (1 = root) */
  ino: number;
  /** the on-disk inode number; equal for every link of a hardlinked file */
  linkIno: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  mtimeNsec: number;
  nlink: number;
  rdev: number;
  /** v5 only: the merkle digest of rafs-format.md 1.6 (undefined for v6) */
  digest?: Buffer;
  /** true when the inode carries extended attributes */
  hasXattr: boolean;
  /** v5 only: the 512-byte block count the builder recorded (i_blocks), which nydusd reports as st_blocks */
  blocks?: number;
}

/** One directory entry as returned by readdir ('.' and '..' excluded). */
export interface DirEntry {
  name: Buffer;
  ino: number;
  /** S_IFMT bits of the child */
  type: number;
}

/** A listing callback: one child's name as `src[start, end)`, inode number and S_IFMT bits; false stops the listing. */
export type DirVisitor = (src: Buffer, start: number, end: number, ino: number, type: number) => boolean;

export interface SuperblockInfo {
  version: 5 | 6;
  flags: bigint;
  compressor: Compressor;
  digester: Digester;
  chunkSize: number;
  explicitUidGid: boolean;
  /** v6: 4096 (or 512 in tarfs mode); v5: chunk size is the block size, reported as 4096 */
  blockSize: number;
  rootIno: number;
  /** number of tree entries the image declares */
  inodeCount: number;
  /** inode numbers (v5) or nids (v6) from the prefetch table */
  prefetch: number[];
}

/**
 * A parsed bootstrap, either version. Every method validates what it reads and throws
 * RafsError naming the field when the image is corrupt; none of them returns data it did not check.
 */
export interface Bootstrap {
  readonly superblock: SuperblockInfo;
  readonly blobs: BlobInfo[];
  /** bytes of the bootstrap file */
  readonly size: number;
  getInode(ino: number): Inode;
  /** child of a directory by raw name, or undefined (binary search, as the format allows) */
  lookup(dirIno: number, name: Buffer): Inode | undefined;
  /** entries of a directory sorted by raw name bytes, '.' and '..' excluded */
  readdir(dirIno: number): DirEntry[];
  /**
   * The same entries from position `from` on (0 = the first child), handed to `visit` one by one, each name as
   * `src[start, end)`, until it returns false. Nothing is allocated per entry, and paging through a huge
   * directory costs each page only the entries it visits (issue 8 item 2).
   */
  list(dirIno: number, from: number, visit: DirVisitor): void;
  /** the parent directory's inode number (root's parent is root) */
  parentOf(dirIno: number): number;
  readlink(ino: number): Buffer;
  /** full xattr names (with prefix) and values */
  xattrs(ino: number): Map<string, Buffer>;
  /**
   * The chunks of a regular file in file order, each with fileOffset set. v6 resolves them through the
   * bootstrap's chunk table; when that table is absent (it is optional at runtime) the records carry
   * only blobIndex, index and uncompressedOffset, with `digest` empty and compressedSize 0: the storage
   * layer completes them from the blob's CI table.
   */
  chunks(ino: number): ChunkInfo[];
  /** Builds what the first read would otherwise build (v6: the chunk-table index); the daemon calls it after mounting. */
  prepare?(): void;
}

/** Error for any malformed image, naming the field that failed validation. */
export class RafsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RafsError';
  }
}
