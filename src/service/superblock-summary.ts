// The superblock summary of GET /api/v1/daemon/backend (spec nydusd-runtime.md 3.5.4), keys in the reference's
// order. It is diagnostic (no client reads it): the values come from the bootstrap's own superblock (v5) or its
// EROFS superblock and RAFS extended superblock (v6, spec rafs-format.md); a field the format does not have is 0.
// The bootstrap was validated when it was loaded; only its header is read again here.
import { closeSync, openSync, readSync } from 'node:fs';

/** The entry and attribute timeouts the filesystem gives the kernel (src/rafs/fs.ts), in seconds. */
const FUSE_TIMEOUT_SECS = 2 ** 32;

export interface SuperblockSummary {
  magic: number;
  version: number;
  sb_size: number;
  root_inode: number;
  chunk_size: number;
  batch_size: number;
  inodes_count: number;
  flags: { bits: number };
  inode_table_entries: number;
  inode_table_offset: number;
  blob_table_size: number;
  blob_table_offset: number;
  extended_blob_table_offset: number;
  extended_blob_table_entries: number;
  blob_device_table_count: number;
  blob_device_table_offset: number;
  prefetch_table_offset: number;
  prefetch_table_entries: number;
  attr_timeout: { secs: number; nanos: number };
  entry_timeout: { secs: number; nanos: number };
  is_chunk_dict: boolean;
  meta_blkaddr: number;
  root_nid: number;
  chunk_table_offset: number;
  chunk_table_size: number;
}

const V5_MAGIC = 0x52414653;

function header(file: string): Buffer {
  const buf = Buffer.alloc(8192);
  const fd = openSync(file, 'r');
  try {
    const n = readSync(fd, buf, 0, buf.length, 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

const u64 = (b: Buffer, off: number) => Number(b.readBigUInt64LE(off));

export function superblockSummary(bootstrapPath: string, rootIno: number): SuperblockSummary {
  const b = header(bootstrapPath);
  const timeout = { secs: FUSE_TIMEOUT_SECS, nanos: 0 };
  if (b.length >= 80 && b.readUInt32LE(0) === V5_MAGIC) {
    return {
      magic: V5_MAGIC,
      version: b.readUInt32LE(4),
      sb_size: b.readUInt32LE(8),
      root_inode: rootIno,
      chunk_size: b.readUInt32LE(12),
      batch_size: 0,
      inodes_count: u64(b, 24),
      flags: { bits: u64(b, 16) },
      inode_table_entries: b.readUInt32LE(56),
      inode_table_offset: u64(b, 32),
      blob_table_size: b.readUInt32LE(64),
      blob_table_offset: u64(b, 48),
      extended_blob_table_offset: u64(b, 72),
      extended_blob_table_entries: b.readUInt32LE(68),
      blob_device_table_count: 0,
      blob_device_table_offset: 0,
      prefetch_table_offset: u64(b, 40),
      prefetch_table_entries: b.readUInt32LE(60),
      attr_timeout: timeout,
      entry_timeout: { ...timeout },
      is_chunk_dict: false,
      meta_blkaddr: 0,
      root_nid: 0,
      chunk_table_offset: 0,
      chunk_table_size: 0,
    };
  }
  // v6: EROFS superblock at 1024, RAFS extended superblock at 1152, device slots from 1408
  const sb = 1024;
  const ext = 1152;
  if (b.length < ext + 52) throw new Error(`${bootstrapPath}: too short for a RAFS superblock`);
  const devices = b.readUInt16LE(sb + 86);
  return {
    magic: b.readUInt32LE(sb),
    version: 6,
    sb_size: 128,
    root_inode: rootIno,
    chunk_size: b.readUInt32LE(ext + 20),
    batch_size: 0,
    inodes_count: u64(b, sb + 16),
    flags: { bits: u64(b, ext) },
    inode_table_entries: 0,
    inode_table_offset: 0,
    blob_table_size: b.readUInt32LE(ext + 16),
    blob_table_offset: u64(b, ext + 8),
    extended_blob_table_offset: 0,
    extended_blob_table_entries: 0,
    blob_device_table_count: devices,
    blob_device_table_offset: devices > 0 ? 1408 : 0,
    prefetch_table_offset: u64(b, ext + 40),
    prefetch_table_entries: b.readUInt32LE(ext + 48) / 4,
    attr_timeout: timeout,
    entry_timeout: { ...timeout },
    is_chunk_dict: false,
    meta_blkaddr: b.readUInt32LE(sb + 40),
    root_nid: b.readUInt16LE(sb + 14),
    chunk_table_offset: u64(b, ext + 24),
    chunk_table_size: u64(b, ext + 32),
  };
}
