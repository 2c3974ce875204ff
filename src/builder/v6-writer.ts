// RAFS v6 bootstrap writer: lays out inodes, tail-packed directory/symlink data and chunk index arrays
// with the allocator of the real builder (rafs-format.md 2.15, incl. reuse of partially used blocks), then
// writes the EROFS superblock, the RAFS extension, device and blob tables, prefetch table and the
// sorted chunk table (rafs-format.md 2.1–2.13).
import { writeU64 } from '../le.js';
import { BlobFeature, SuperFlag, type BlobInfo, type ChunkInfo } from '../image-model.js';
import type { BuildOrder, NodeEntry } from './build-order.js';
import { checkChunk } from './chunk-record.js';
import { CHUNK_RECORD_SIZE, encodeChunkRecord } from '../rafs/chunk-record.js';
import type { BuildContext } from './context.js';
import { compressorFlag, digesterFlag } from './superblock-flags.js';
import { isDir, isReg } from './tree.js';
import { encodeXattrsV6, xattrIcount } from './xattr-encode.js';
import { Layout, MetaAllocator } from './v6-allocator.js';

const BLOCK = 4096;
const SLOT = 32;
const EXT_INODE = 64;
const DIRENT = 12;
const SB_OFFSET = 1024;
const EXT_SB_OFFSET = 1152;
const DEVTABLE_OFFSET = 1408;
const DEVSLOT = 128;
const BLOB_ENTRY = 256;
const MAPPED_ALIGN = 0x8_0000;
const EROFS_MAGIC = 0xe0f5e1e2;
const FEATURE_COMPAT_RAFS_V6 = 0x4000_0000;
const FEATURE_INCOMPAT_CHUNKED_DEVTABLE = 0xc;
const CHUNK_FORMAT_INDEXES = 0x20;


const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;
const S_IFSOCK = 0o140000;

const alignUp = (v: number, a: number): number => Math.ceil(v / a) * a;

function fileType(mode: number): number {
  switch (mode & S_IFMT) {
    case 0o100000:
      return 1;
    case 0o040000:
      return 2;
    case S_IFCHR:
      return 3;
    case S_IFBLK:
      return 4;
    case S_IFIFO:
      return 5;
    case S_IFSOCK:
      return 6;
    case S_IFLNK:
      return 7;
    default:
      throw new Error(`unsupported file type in mode 0o${mode.toString(8)}`);
  }
}

/** Where one inode and its data live (offsets before the final shift by meta_addr). */
interface Placement {
  offset: number;
  layout: Layout;
  /** directories and symlinks: where the full blocks (FLAT_INLINE) or all data (FLAT_PLAIN) start */
  dataOffset: number;
  /** directory: dirent-area length; symlink: target length */
  dataSize: number;
  xattrs?: Buffer;
  inodeSize: number;
}

/** Directory entries in on-disk order: '.', '..' and the children, sorted bytewise. */
function direntNames(e: NodeEntry, order: BuildOrder): Array<{ name: Buffer; target: NodeEntry }> {
  const list: Array<{ name: Buffer; target: NodeEntry }> = [
    { name: Buffer.from('.'), target: e },
    { name: Buffer.from('..'), target: e.parent ?? e },
  ];
  for (const c of e.node.children ?? []) list.push({ name: c.name, target: order.byNode.get(c)! });
  return list.sort((a, b) => Buffer.compare(a.name, b.name));
}

function direntSize(names: Buffer[]): number {
  let size = 0;
  for (const n of names) {
    const len = n.length + DIRENT;
    if ((size % BLOCK) + len > BLOCK) size = alignUp(size, BLOCK);
    size += len;
  }
  return size;
}

function chunkList(e: NodeEntry, chunkSize: number): ChunkInfo[] {
  const inode = e.node.inode;
  const chunks = inode.chunks ?? [];
  const want = Math.ceil(inode.size / chunkSize);
  if (chunks.length !== want) {
    throw new Error(`file "${e.node.name.toString()}": ${chunks.length} chunks for ${inode.size} bytes (expected ${want}); was the blob dumped?`);
  }
  return chunks;
}

export interface V6Result {
  bootstrap: Buffer;
  /** nid of every tree entry */
  nids: Map<NodeEntry, number>;
}

export function writeV6(ctx: BuildContext, order: BuildOrder): V6Result {
  const o = ctx.opts;
  const blobs = ctx.blobs;
  if (blobs.length > 254) throw new Error(`${blobs.length} blobs: RAFS v6 holds at most 254`);
  const places = new Map<NodeEntry, Placement>();
  const alloc = new MetaAllocator();
  let hasXattr = false;

  const baseSize = (e: NodeEntry): { xattrs?: Buffer; inodeSize: number } => {
    const xattrs = encodeXattrsV6(e.node.inode.xattrs);
    if (xattrs) hasXattr = true;
    return { xattrs, inodeSize: EXT_INODE + (xattrs?.length ?? 0) };
  };

  const placeDir = (e: NodeEntry): void => {
    const { xattrs, inodeSize } = baseSize(e);
    const dataSize = direntSize(direntNames(e, order).map((d) => d.name));
    const p = alloc.withTail(inodeSize, dataSize);
    alloc.align(SLOT);
    places.set(e, { ...p, dataSize, xattrs, inodeSize });
  };

  const placeOther = (e: NodeEntry): void => {
    const { xattrs, inodeSize } = baseSize(e);
    const inode = e.node.inode;
    const mode = inode.mode & S_IFMT;
    if (isReg(e.node)) {
      let offset: number;
      if (e.firstLink) {
        offset = places.get(e.firstLink)!.offset;
      } else {
        const total = alignUp(inodeSize, 8) + 8 * chunkList(e, o.chunkSize).length;
        offset = alloc.fromFree(total);
        if (offset === 0) {
          offset = alloc.offset;
          alloc.offset += total;
        }
      }
      places.set(e, { offset, layout: Layout.ChunkBased, dataOffset: 0, dataSize: 0, xattrs, inodeSize });
    } else if (mode === S_IFLNK) {
      const target = inode.symlink;
      if (!target) throw new Error(`symlink "${e.node.name.toString()}" has no target`);
      if (target.length > BLOCK) throw new Error(`symlink "${e.node.name.toString()}": target of ${target.length} bytes exceeds 4096`);
      const p = alloc.withTail(inodeSize, target.length);
      places.set(e, { ...p, dataSize: target.length, xattrs, inodeSize });
    } else {
      fileType(inode.mode);
      const offset = alloc.offset;
      alloc.offset += inodeSize;
      places.set(e, { offset, layout: Layout.FlatPlain, dataOffset: 0, dataSize: 0, xattrs, inodeSize });
    }
    alloc.align(SLOT);
  };

  // Same traversal as the build order: a directory, then its non-directory children, then recurse.
  const layoutDir = (e: NodeEntry): void => {
    placeDir(e);
    const dirs: NodeEntry[] = [];
    for (const c of e.node.children ?? []) {
      const ce = order.byNode.get(c)!;
      if (isDir(c)) dirs.push(ce);
      else placeOther(ce);
    }
    for (const d of dirs) layoutDir(d);
  };
  const rootEntry = order.entries[0];
  layoutDir(rootEntry);

  // Table area in front of the inodes.
  const blobTableOffset = alignUp(DEVTABLE_OFFSET + DEVSLOT * blobs.length, BLOCK);
  const blobTableSize = BLOB_ENTRY * blobs.length;
  const prefetchNodes = o.prefetch ?? [];
  const prefetchSize = prefetchNodes.length > 0 && blobTableSize > 0 ? 4 * prefetchNodes.length : 0;
  const prefetchOffset = prefetchSize > 0 ? blobTableOffset + blobTableSize : 0;
  const rootOffset = places.get(rootEntry)!.offset;
  const origMetaAddr = rootOffset - BLOCK;
  const metaAddr = blobTableSize > 0 ? alignUp(blobTableOffset + blobTableSize + prefetchSize, BLOCK) : origMetaAddr;
  const shift = metaAddr - origMetaAddr;
  const nidOf = (e: NodeEntry): number => (places.get(e)!.offset + shift - metaAddr) / SLOT;
  const nids = new Map<NodeEntry, number>();
  for (const e of order.entries) nids.set(e, nidOf(e));
  const rootNid = nidOf(rootEntry);
  if (rootNid > 0xffff) throw new Error(`root nid ${rootNid} does not fit the superblock`);

  const buf = Buffer.alloc(alloc.offset + shift + BLOCK);
  let end = 0;
  const put = (data: Buffer, at: number): void => {
    data.copy(buf, at);
    end = Math.max(end, at + data.length);
  };

  const chunkTable = new Map<string, ChunkInfo>();
  for (const e of order.entries) {
    const p = places.get(e)!;
    const inode = e.node.inode;
    const node = e.node;
    const at = p.offset + shift;
    const ino = Buffer.alloc(EXT_INODE);
    let size = 0;
    let iu = 0;
    if (isDir(node)) {
      size = p.dataSize;
      iu = Math.floor((p.dataOffset + shift) / BLOCK);
    } else if (isReg(node)) {
      size = inode.size;
      const chunks = chunkList(e, o.chunkSize);
      const idx = Buffer.alloc(8 * chunks.length);
      let contiguous = true;
      chunks.forEach((c, i) => {
        checkChunk(c, `file "${node.name.toString()}" chunk ${i}`);
        const blob = blobs[c.blobIndex];
        if (!blob) throw new Error(`file "${node.name.toString()}": chunk refers to blob ${c.blobIndex}, the build has ${blobs.length}`);
        if (c.uncompressedOffset % BLOCK !== 0) throw new Error(`file "${node.name.toString()}": chunk uncompressed offset ${c.uncompressedOffset} is not 4K aligned`);
        idx.writeUInt16LE(c.index & 0xffff, 8 * i);
        idx.writeUInt16LE((c.blobIndex + 1) | ((c.index >>> 16) << 8), 8 * i + 2);
        idx.writeUInt32LE(c.uncompressedOffset / BLOCK, 8 * i + 4);
        if (i > 0) {
          const prev = chunks[i - 1];
          if (prev.uncompressedOffset + o.chunkSize !== c.uncompressedOffset || prev.blobIndex !== c.blobIndex) contiguous = false;
        }
        chunkTable.set(`${c.digest.toString('hex')}:${c.blobIndex.toString(16).padStart(2, '0')}`, c);
      });
      // One big "chunk" lets the kernel share page cache for contiguous files (rafs-format.md 2.11).
      const fmtSize = contiguous && size > o.chunkSize ? 2 ** Math.ceil(Math.log2(size)) : o.chunkSize;
      iu = CHUNK_FORMAT_INDEXES | (Math.log2(fmtSize) - 12);
      put(idx, at + alignUp(p.inodeSize, 8));
    } else if ((inode.mode & S_IFMT) === S_IFLNK) {
      size = p.dataSize;
      iu = Math.floor((p.dataOffset + shift) / BLOCK);
      put(inode.symlink!, p.layout === Layout.FlatInline ? at + p.inodeSize : p.dataOffset + shift);
    } else {
      if (!Number.isInteger(inode.rdev) || inode.rdev < 0 || inode.rdev > 0xffffffff) {
        throw new Error(`"${node.name.toString()}": device number ${inode.rdev} does not fit 32 bits`);
      }
      iu = inode.rdev;
    }
    ino.writeUInt16LE(1 | (p.layout << 1), 0);
    ino.writeUInt16LE(xattrIcount(p.xattrs?.length ?? 0), 2);
    ino.writeUInt16LE(inode.mode & 0xffff, 4);
    writeU64(ino, 8, size, 'inode size');
    ino.writeUInt32LE(iu >>> 0, 16);
    ino.writeUInt32LE(e.ino >>> 0, 20);
    ino.writeUInt32LE(inode.uid >>> 0, 24);
    ino.writeUInt32LE(inode.gid >>> 0, 28);
    writeU64(ino, 32, Math.max(0, Math.trunc(inode.mtime)), 'inode mtime');
    ino.writeUInt32LE(inode.mtimeNsec >>> 0, 40);
    ino.writeUInt32LE(e.nlink >>> 0, 44);
    put(ino, at);
    if (p.xattrs) put(p.xattrs, at + EXT_INODE);
    if (isDir(node)) writeDirents(e, p, at, shift);
  }

  function writeDirents(e: NodeEntry, p: Placement, inodeAt: number, sh: number): void {
    const list = direntNames(e, order).map((d) => ({ name: d.name, nid: nids.get(d.target)!, type: fileType(d.target.node.inode.mode) }));
    let blockAt = p.dataOffset + sh;
    let pending: typeof list = [];
    let used = 0;
    const flush = (at: number): void => {
      const block = Buffer.alloc(used);
      let nameOff = DIRENT * pending.length;
      pending.forEach((d, i) => {
        writeU64(block, DIRENT * i, d.nid, 'dirent nid');
        block.writeUInt16LE(nameOff, DIRENT * i + 8);
        block[DIRENT * i + 10] = d.type;
        d.name.copy(block, nameOff);
        nameOff += d.name.length;
      });
      put(block, at);
    };
    for (const d of list) {
      const len = DIRENT + d.name.length;
      if (used + len > BLOCK) {
        flush(blockAt);
        blockAt += BLOCK;
        pending = [];
        used = 0;
      }
      pending.push(d);
      used += len;
    }
    if (used > 0) flush(p.layout === Layout.FlatInline ? inodeAt + p.inodeSize : blockAt);
  }

  // Prefetch table: nids of the pattern nodes.
  if (prefetchSize > 0) {
    const pt = Buffer.alloc(prefetchSize);
    prefetchNodes.forEach((n, i) => {
      const pe = order.byNode.get(n);
      if (!pe) throw new Error(`prefetch node "${n.name.toString()}" is not in the tree`);
      pt.writeUInt32LE(nids.get(pe)!, 4 * i);
    });
    put(pt, prefetchOffset);
  }

  const chunkTableOffset = alignUp(end, BLOCK);
  const sorted = [...chunkTable.values()].sort((a, b) => Buffer.compare(a.digest, b.digest) || a.blobIndex - b.blobIndex);
  const chunkTableSize = sorted.length * CHUNK_RECORD_SIZE;
  const fileSize = alignUp(chunkTableOffset + chunkTableSize, BLOCK);
  const out = Buffer.alloc(fileSize);
  buf.copy(out, 0, 0, Math.min(end, fileSize));
  sorted.forEach((c, i) => encodeChunkRecord(c, out, chunkTableOffset + i * CHUNK_RECORD_SIZE));

  // Device slots: each blob mapped after the image, 512 KiB aligned (block-device export).
  let pos = fileSize;
  let blocks = 0;
  let allDigests = true;
  const seen = new Set<string>();
  blobs.forEach((b, i) => {
    const id = Buffer.from(b.blobId, 'utf8');
    if (id.length === 0 || id.length > 64) throw new Error(`blob ${i}: id "${b.blobId}" must be 1..64 bytes`);
    if (seen.has(b.blobId) && b.blobId !== 'x'.repeat(64)) throw new Error(`blob id ${b.blobId} appears twice in the blob table`);
    seen.add(b.blobId);
    if (b.uncompressedSize % BLOCK !== 0 && !(b.features & BlobFeature.TARFS)) throw new Error(`blob ${b.blobId}: uncompressed size ${b.uncompressedSize} is not 4K aligned`);
    if ((b.features & BlobFeature.INLINED_CHUNK_DIGEST) === 0) allDigests = false;
    const cnt = Math.floor(b.uncompressedSize / BLOCK);
    const mapped = alignUp(pos, MAPPED_ALIGN) / BLOCK;
    pos = (mapped + cnt) * BLOCK;
    blocks += cnt;
    if (blocks > 0xffffffff || mapped > 0xffffffff) throw new Error('too many data blocks in the RAFS filesystem');
    const slot = DEVTABLE_OFFSET + DEVSLOT * i;
    id.copy(out, slot);
    out.writeUInt32LE(cnt, slot + 64);
    out.writeUInt32LE(mapped, slot + 68);
    writeBlobEntry(out, blobTableOffset + BLOB_ENTRY * i, b, i, o.chunkSize);
  });

  // EROFS superblock.
  out.writeUInt32LE(EROFS_MAGIC, SB_OFFSET);
  out.writeUInt32LE(FEATURE_COMPAT_RAFS_V6, SB_OFFSET + 8);
  out[SB_OFFSET + 12] = 12;
  out.writeUInt16LE(rootNid, SB_OFFSET + 14);
  writeU64(out, SB_OFFSET + 16, order.entries.length, 's_inos');
  out.writeUInt32LE(blocks, SB_OFFSET + 36);
  out.writeUInt32LE(metaAddr / BLOCK, SB_OFFSET + 40);
  out.writeUInt32LE(FEATURE_INCOMPAT_CHUNKED_DEVTABLE, SB_OFFSET + 80);
  out.writeUInt16LE(blobs.length, SB_OFFSET + 86);
  out.writeUInt16LE(DEVTABLE_OFFSET / DEVSLOT, SB_OFFSET + 88);

  // RAFS extension.
  let flags = compressorFlag(o.compressor) | digesterFlag(o.digester) | SuperFlag.ENCRYPTION_NONE;
  if (o.explicitUidGid) flags |= SuperFlag.EXPLICIT_UID_GID;
  if (hasXattr) flags |= SuperFlag.HAS_XATTR;
  if (allDigests) flags |= SuperFlag.INLINED_CHUNK_DIGEST;
  out.writeBigUInt64LE(flags, EXT_SB_OFFSET);
  writeU64(out, EXT_SB_OFFSET + 8, blobTableOffset, 'blob table offset');
  out.writeUInt32LE(blobTableSize, EXT_SB_OFFSET + 16);
  out.writeUInt32LE(o.chunkSize, EXT_SB_OFFSET + 20);
  writeU64(out, EXT_SB_OFFSET + 24, chunkTableOffset, 'chunk table offset');
  writeU64(out, EXT_SB_OFFSET + 32, chunkTableSize, 'chunk table size');
  writeU64(out, EXT_SB_OFFSET + 40, prefetchOffset, 'prefetch table offset');
  out.writeUInt32LE(prefetchSize, EXT_SB_OFFSET + 48);
  return { bootstrap: out, nids };
}

function writeBlobEntry(out: Buffer, at: number, b: BlobInfo, index: number, chunkSize: number): void {
  if (b.chunkSize !== chunkSize) throw new Error(`blob ${b.blobId}: chunk size 0x${b.chunkSize.toString(16)} differs from the image's 0x${chunkSize.toString(16)}`);
  Buffer.from(b.blobId, 'utf8').copy(out, at);
  out.writeUInt32LE(index, at + 64);
  out.writeUInt32LE(b.chunkSize, at + 68);
  out.writeUInt32LE(b.chunkCount, at + 72);
  out.writeUInt32LE(b.compressor, at + 76);
  out.writeUInt32LE(b.digester, at + 80);
  out.writeUInt32LE(b.features >>> 0, at + 84);
  writeU64(out, at + 88, b.compressedSize, 'blob compressed size');
  writeU64(out, at + 96, b.uncompressedSize, 'blob uncompressed size');
  out.writeUInt32LE(b.tocSize, at + 104);
  out.writeUInt32LE(b.ciCompressor, at + 108);
  writeU64(out, at + 112, b.ciOffset, 'blob ci offset');
  writeU64(out, at + 120, b.ciCompressedSize, 'blob ci compressed size');
  writeU64(out, at + 128, b.ciUncompressedSize, 'blob ci uncompressed size');
  b.tocDigest.copy(out, at + 136, 0, 32);
  b.metaDigest.copy(out, at + 168, 0, 32);
  writeU64(out, at + 200, b.metaSize, 'blob meta size');
}
