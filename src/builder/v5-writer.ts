// RAFS v5 bootstrap writer (rafs-format.md 3): superblock, inode table, prefetch table, blob table + extended
// blob table, then one record per tree entry in depth-first pre-order (inode, name, symlink target,
// xattrs, inline chunk records). Inode digests follow the merkle rule of rafs-format.md 1.6.
import { writeU64 } from '../le.js';
import type { BlobInfo } from '../image-model.js';
import { digest } from '../digest.js';
import type { BuildOrder, NodeEntry } from './build-order.js';
import { checkChunk } from './chunk-record.js';
import { CHUNK_RECORD_SIZE, encodeChunkRecord } from '../rafs/chunk-record.js';
import type { BuildContext } from './context.js';
import { compressorFlag, digesterFlag } from './superblock-flags.js';
import { SuperFlag } from '../image-model.js';
import { isDir, isReg } from './tree.js';
import { encodeXattrsV5 } from './xattr-encode.js';

const SB_SIZE = 8192;
const INODE_SIZE = 128;
const EXT_BLOB_ENTRY = 64;
const RAFS_V5_MAGIC = 0x52414653;
const RAFS_V5_VERSION = 0x500;
const MAX_BOOTSTRAP = 2 ** 31;
const FLAG_SYMLINK = 0x1;
const FLAG_HARDLINK = 0x2;
const FLAG_XATTR = 0x4;
const S_IFLNK = 0o120000;
const S_IFMT = 0o170000;

const align8 = (v: number): number => Math.ceil(v / 8) * 8;

/** pseudo directory size (rafs-format.md 3.9): stable across source filesystems */
function dirSize(e: NodeEntry): number {
  let d = 0;
  for (const c of e.node.children ?? []) d += c.name.length + 8;
  return d === 0 ? 4096 : Math.ceil(d / 4096) * 4096;
}

function encodeBlobTable(blobs: BlobInfo[]): Buffer {
  const parts: Buffer[] = [];
  blobs.forEach((b, i) => {
    const id = Buffer.from(b.blobId, 'utf8');
    if (id.length === 0 || id.includes(0)) throw new Error(`blob ${i}: invalid id "${b.blobId}"`);
    const head = Buffer.alloc(8);
    head.writeUInt32LE(b.readaheadOffset >>> 0, 0);
    head.writeUInt32LE(b.readaheadSize >>> 0, 4);
    if (i > 0) parts.push(Buffer.from([0]));
    parts.push(head, id);
  });
  const raw = Buffer.concat(parts);
  const out = Buffer.alloc(align8(raw.length));
  raw.copy(out);
  return out;
}

/** Merkle digests bottom-up: files over chunk digests, directories over their children. */
function computeDigests(ctx: BuildContext, order: BuildOrder): void {
  const d = ctx.opts.digester;
  for (let i = order.entries.length - 1; i >= 0; i--) {
    const e = order.entries[i];
    const inode = e.node.inode;
    if (isDir(e.node)) {
      inode.digest = digest(d, Buffer.concat((e.node.children ?? []).map((c) => c.inode.digest!)));
    } else if (isReg(e.node)) {
      inode.digest = digest(d, Buffer.concat((inode.chunks ?? []).map((c) => c.digest)));
    } else if ((inode.mode & S_IFMT) === S_IFLNK) {
      inode.digest = digest(d, inode.symlink ?? Buffer.alloc(0));
    } else {
      inode.digest = digest(d, Buffer.alloc(0));
    }
  }
}

export function writeV5(ctx: BuildContext, order: BuildOrder): Buffer {
  const o = ctx.opts;
  const entries = order.entries;
  computeDigests(ctx, order);

  const inodeTableSize = align8(4 * entries.length);
  const prefetch = o.prefetch ?? [];
  const prefetchSize = align8(4 * prefetch.length);
  const blobTable = encodeBlobTable(ctx.blobs);
  const prefetchOffset = SB_SIZE + inodeTableSize;
  const blobTableOffset = prefetchOffset + prefetchSize;
  const extOffset = blobTableOffset + blobTable.length;
  const recordsStart = extOffset + EXT_BLOB_ENTRY * ctx.blobs.length;

  // Records in depth-first pre-order.
  const preorder: NodeEntry[] = [];
  const visit = (e: NodeEntry): void => {
    preorder.push(e);
    for (const c of e.node.children ?? []) visit(order.byNode.get(c)!);
  };
  visit(entries[0]);

  let hasXattr = false;
  const records: Buffer[] = [];
  const offsets = new Map<NodeEntry, number>();
  let pos = recordsStart;
  for (const e of preorder) {
    const node = e.node;
    const inode = node.inode;
    const isLink = (inode.mode & S_IFMT) === S_IFLNK;
    const name = e.parent ? node.name : Buffer.from('/');
    if (name.length > 0xffff) throw new Error(`name of ${name.length} bytes is too long`);
    const symlink = isLink ? inode.symlink : undefined;
    if (isLink && !symlink) throw new Error(`symlink "${node.name.toString()}" has no target`);
    if (symlink && symlink.length > 0xffff) throw new Error(`symlink "${node.name.toString()}": target too long`);
    const xattrs = encodeXattrsV5(inode.xattrs);
    if (xattrs) hasXattr = true;
    const chunks = isReg(node) ? (inode.chunks ?? []) : [];
    if (isReg(node)) {
      const want = Math.ceil(inode.size / o.chunkSize);
      if (chunks.length !== want) throw new Error(`file "${node.name.toString()}": ${chunks.length} chunks for ${inode.size} bytes (expected ${want})`);
    }
    const size = isDir(node) ? dirSize(e) : isReg(node) ? inode.size : isLink ? symlink!.length : 0;
    const recSize = INODE_SIZE + align8(name.length) + align8(symlink?.length ?? 0) + (xattrs?.length ?? 0) + CHUNK_RECORD_SIZE * chunks.length;
    const rec = Buffer.alloc(recSize);
    inode.digest!.copy(rec, 0);
    writeU64(rec, 32, e.parent ? e.parent.ino : 0, 'i_parent');
    writeU64(rec, 40, e.ino, 'i_ino');
    rec.writeUInt32LE(inode.uid >>> 0, 48);
    rec.writeUInt32LE(inode.gid >>> 0, 52);
    rec.writeUInt32LE(inode.mode >>> 0, 60);
    writeU64(rec, 64, size, 'i_size');
    writeU64(rec, 72, Math.ceil((size + (xattrs ? xattrs.length - 8 : 0)) / 512), 'i_blocks');
    let flags = 0;
    if (isLink) flags |= FLAG_SYMLINK;
    if (isReg(node) && e.nlink > 1) flags |= FLAG_HARDLINK;
    if (xattrs) flags |= FLAG_XATTR;
    writeU64(rec, 80, flags, 'i_flags');
    rec.writeUInt32LE(e.nlink, 88);
    if (isDir(node)) {
      rec.writeUInt32LE(e.childIndex, 92);
      rec.writeUInt32LE(node.children?.length ?? 0, 96);
    } else if (isReg(node)) {
      rec.writeUInt32LE(chunks.length, 96);
    }
    rec.writeUInt16LE(name.length, 100);
    rec.writeUInt16LE(symlink?.length ?? 0, 102);
    if (!Number.isInteger(inode.rdev) || inode.rdev < 0 || inode.rdev > 0xffffffff) throw new Error(`"${node.name.toString()}": device number ${inode.rdev} does not fit 32 bits`);
    rec.writeUInt32LE(inode.rdev >>> 0, 104);
    rec.writeUInt32LE(inode.mtimeNsec >>> 0, 108);
    writeU64(rec, 112, Math.max(0, Math.trunc(inode.mtime)), 'i_mtime');
    let off = INODE_SIZE;
    name.copy(rec, off);
    off += align8(name.length);
    if (symlink) {
      symlink.copy(rec, off);
      off += align8(symlink.length);
    }
    if (xattrs) {
      xattrs.copy(rec, off);
      off += xattrs.length;
    }
    chunks.forEach((c, i) => {
      checkChunk(c, `file "${node.name.toString()}" chunk ${i}`);
      if (c.blobIndex >= ctx.blobs.length) throw new Error(`file "${node.name.toString()}": chunk refers to blob ${c.blobIndex}, the build has ${ctx.blobs.length}`);
      encodeChunkRecord(c, rec, off + i * CHUNK_RECORD_SIZE);
    });
    offsets.set(e, pos);
    records.push(rec);
    pos += recSize;
    if (pos > MAX_BOOTSTRAP) throw new Error('RAFS v5 bootstrap would exceed 2 GiB');
  }

  const head = Buffer.alloc(recordsStart);
  head.writeUInt32LE(RAFS_V5_MAGIC, 0);
  head.writeUInt32LE(RAFS_V5_VERSION, 4);
  head.writeUInt32LE(SB_SIZE, 8);
  head.writeUInt32LE(o.chunkSize, 12);
  let flags = compressorFlag(o.compressor) | digesterFlag(o.digester);
  if (o.explicitUidGid) flags |= SuperFlag.EXPLICIT_UID_GID;
  if (hasXattr) flags |= SuperFlag.HAS_XATTR;
  head.writeBigUInt64LE(flags, 16);
  writeU64(head, 24, order.inodeCount, 's_inodes_count');
  writeU64(head, 32, SB_SIZE, 's_inode_table_offset');
  writeU64(head, 40, prefetchOffset, 's_prefetch_table_offset');
  writeU64(head, 48, blobTableOffset, 's_blob_table_offset');
  head.writeUInt32LE(entries.length, 56);
  head.writeUInt32LE(prefetch.length, 60);
  head.writeUInt32LE(blobTable.length, 64);
  head.writeUInt32LE(ctx.blobs.length, 68);
  writeU64(head, 72, extOffset, 's_extended_blob_table_offset');

  for (const e of entries) head.writeUInt32LE(offsets.get(e)! / 8, SB_SIZE + 4 * (e.index - 1));
  prefetch.forEach((n, i) => {
    const pe = order.byNode.get(n);
    if (!pe) throw new Error(`prefetch node "${n.name.toString()}" is not in the tree`);
    head.writeUInt32LE(pe.ino, prefetchOffset + 4 * i);
  });
  blobTable.copy(head, blobTableOffset);
  ctx.blobs.forEach((b, i) => {
    const at = extOffset + EXT_BLOB_ENTRY * i;
    head.writeUInt32LE(b.chunkCount, at);
    head.writeUInt32LE(b.features >>> 0, at + 4);
    writeU64(head, at + 8, b.uncompressedSize, 'blob uncompressed size');
    writeU64(head, at + 16, b.compressedSize, 'blob compressed size');
  });
  return Buffer.concat([head, ...records]);
}
