// RAFS v5 reader (rafs-format.md 3): 8 KiB superblock, inode table, blob tables, 128-byte inode records.
import { RafsError, type Bootstrap, type BlobInfo, type ChunkInfo, type DirEntry, type DirVisitor, type Inode, type SuperblockInfo } from '../image-model.js';
import { u64, u64big, need } from '../le.js';
import { checkMode, decodeSuperFlags, isDir, isLnk, isReg, substituteBlobIds, SmallCache, S_IFMT, type OpenOptions } from './common.js';
import { checkFeatures } from '../blob/meta.js';
import { checkChunkInBlob, parseChunkRecord, CHUNK_RECORD_SIZE } from './chunk-record.js';

export const V5_MAGIC = 0x52414653;
export const V5_VERSION = 0x500;
const SB_SIZE = 8192;
const INODE_SIZE = 128;
const EXT_BLOB_ENTRY_SIZE = 64;
const INODE_FLAG_XATTR = 0x4;
const INODE_FLAG_HAS_HOLE = 0x8;
const KNOWN_INODE_FLAGS = 0xf;

const align8 = (n: number): number => Math.ceil(n / 8) * 8;

interface V5Record {
  ino: number;
  off: number;
  digest: Buffer;
  parent: number;
  linkIno: number;
  uid: number;
  gid: number;
  mode: number;
  size: number;
  blocks: number;
  flags: number;
  nlink: number;
  childIndex: number;
  childCount: number;
  rdev: number;
  mtime: number;
  mtimeNsec: number;
  name: Buffer;
  symlink: Buffer;
  /** the xattr pair area, or undefined */
  xattrs?: Buffer;
  chunksOff: number;
}

export class V5Bootstrap implements Bootstrap {
  readonly superblock: SuperblockInfo;
  readonly blobs: BlobInfo[];
  readonly size: number;
  private readonly entries: number;
  private readonly tableOff: number;
  private readonly records = new SmallCache<number, V5Record>(8192);
  /**
   * Listed directories: the kernel lists a directory a few dozen entries per READDIR(PLUS), and each asks
   * for the whole list again; rebuilding it every time made listing a 200,000-entry directory quadratic.
   */
  private readonly dirCache = new SmallCache<number, DirEntry[]>(256);

  constructor(private readonly buf: Buffer, opts?: OpenOptions) {
    this.size = buf.length;
    if (buf.length < SB_SIZE) throw new RafsError(`v5 bootstrap: ${buf.length} bytes is shorter than the superblock`);
    if (buf.readUInt32LE(0) !== V5_MAGIC) throw new RafsError('v5 superblock: bad s_magic');
    const version = buf.readUInt32LE(4);
    if (version !== V5_VERSION) throw new RafsError(`v5 superblock: unsupported s_fs_version 0x${version.toString(16)}`);
    const sbSize = buf.readUInt32LE(8);
    if (sbSize !== SB_SIZE) throw new RafsError(`v5 superblock: s_sb_size ${sbSize} is not ${SB_SIZE}`);
    const chunkSize = buf.readUInt32LE(12);
    if (chunkSize < 0x1000 || chunkSize > 0x100_0000 || (chunkSize & (chunkSize - 1)) !== 0) {
      throw new RafsError(`v5 superblock: s_block_size ${chunkSize} is not a power of two in [4K, 16M]`);
    }
    const flags = u64big(buf, 16, 'v5 superblock s_flags');
    const { compressor, digester } = decodeSuperFlags(flags, false, 'v5 superblock');
    const inodeCount = u64(buf, 24, 'v5 superblock s_inodes_count');
    this.tableOff = u64(buf, 32, 'v5 superblock s_inode_table_offset');
    const prefetchOff = u64(buf, 40, 'v5 superblock s_prefetch_table_offset');
    const blobTableOff = u64(buf, 48, 'v5 superblock s_blob_table_offset');
    this.entries = buf.readUInt32LE(56);
    const prefetchEntries = buf.readUInt32LE(60);
    const blobTableSize = buf.readUInt32LE(64);
    const extEntries = buf.readUInt32LE(68);
    const extOff = u64(buf, 72, 'v5 superblock s_extended_blob_table_offset');

    if (this.tableOff < SB_SIZE || this.tableOff % 8 !== 0) throw new RafsError(`v5 superblock: s_inode_table_offset ${this.tableOff} invalid`);
    if (this.entries === 0) throw new RafsError('v5 superblock: s_inode_table_entries is 0');
    need(buf, this.tableOff, this.entries * 4, 'v5 inode table');
    need(buf, prefetchOff, prefetchEntries * 4, 'v5 prefetch table');
    need(buf, blobTableOff, blobTableSize, 'v5 blob table');
    need(buf, extOff, extEntries * EXT_BLOB_ENTRY_SIZE, 'v5 extended blob table');

    this.blobs = this.parseBlobs(blobTableOff, blobTableSize, extOff, extEntries, chunkSize, compressor, digester);
    substituteBlobIds(this.blobs, opts);

    const prefetch: number[] = [];
    for (let i = 0; i < prefetchEntries; i++) {
      const ino = buf.readUInt32LE(prefetchOff + 4 * i);
      if (ino === 0) break;
      if (ino > this.entries) throw new RafsError(`v5 prefetch table: entry ${i} names inode ${ino} beyond ${this.entries}`);
      prefetch.push(ino);
    }
    this.superblock = {
      version: 5,
      flags,
      compressor,
      digester,
      chunkSize,
      explicitUidGid: (flags & 0x10n) !== 0n,
      blockSize: 4096,
      rootIno: 1,
      inodeCount: Math.max(inodeCount, 0),
      prefetch,
    };
  }

  private parseBlobs(off: number, size: number, extOff: number, extEntries: number, chunkSize: number,
    compressor: BlobInfo['compressor'], digester: BlobInfo['digester']): BlobInfo[] {
    const buf = this.buf;
    const blobs: BlobInfo[] = [];
    let p = off;
    const end = off + size;
    // Entries are NUL-separated; the table is zero-padded to 8 bytes, so ≤ 8 remaining bytes are padding.
    while (end - p > 8) {
      const i = blobs.length;
      const readaheadOffset = buf.readUInt32LE(p);
      const readaheadSize = buf.readUInt32LE(p + 4);
      const idStart = p + 8;
      let idEnd = buf.indexOf(0, idStart);
      if (idEnd < 0 || idEnd > end) idEnd = end;
      const idBytes = buf.subarray(idStart, idEnd);
      if (idBytes.length === 0 || idBytes.length > 255 || !/^[\x21-\x7e]+$/.test(idBytes.toString('latin1'))) {
        throw new RafsError(`v5 blob table: entry ${i} has an invalid blob id`);
      }
      const blob: BlobInfo = {
        blobId: idBytes.toString('latin1'), index: i, chunkSize, chunkCount: 0, compressor, digester, features: 0,
        compressedSize: 0, uncompressedSize: 0, readaheadOffset, readaheadSize, ciCompressor: 0, ciOffset: 0,
        ciCompressedSize: 0, ciUncompressedSize: 0, tocSize: 0, tocDigest: Buffer.alloc(32), metaDigest: Buffer.alloc(32),
        metaSize: 0, mappedBlkaddr: 0,
      };
      if (i < extEntries) {
        const e = extOff + i * EXT_BLOB_ENTRY_SIZE;
        blob.chunkCount = buf.readUInt32LE(e);
        blob.features = buf.readUInt32LE(e + 4);
        checkFeatures(blob.features, `v5 extended blob table entry ${i}`);
        blob.uncompressedSize = u64(buf, e + 8, `v5 extended blob table entry ${i} uncompressed_size`);
        blob.compressedSize = u64(buf, e + 16, `v5 extended blob table entry ${i} compressed_size`);
      }
      blobs.push(blob);
      p = idEnd + 1;
    }
    if (extEntries > blobs.length) throw new RafsError(`v5 extended blob table: ${extEntries} entries for ${blobs.length} blobs`);
    return blobs;
  }

  private record(ino: number): V5Record {
    const cached = this.records.get(ino);
    if (cached !== undefined) return cached;
    const what = `v5 inode ${ino}`;
    if (!Number.isInteger(ino) || ino < 1 || ino > this.entries) throw new RafsError(`${what}: no such inode (table has ${this.entries})`);
    const buf = this.buf;
    const off = buf.readUInt32LE(this.tableOff + 4 * (ino - 1)) * 8;
    if (off < SB_SIZE) throw new RafsError(`${what}: inode table offset ${off} points into the superblock`);
    need(buf, off, INODE_SIZE, what);
    const mode = checkMode(buf.readUInt32LE(off + 60), what);
    const flags = u64(buf, off + 80, `${what} i_flags`);
    if (flags & ~KNOWN_INODE_FLAGS) throw new RafsError(`${what}: i_flags has unknown bits 0x${(flags & ~KNOWN_INODE_FLAGS).toString(16)}`);
    const nameSize = buf.readUInt16LE(off + 100);
    const symlinkSize = buf.readUInt16LE(off + 102);
    let p = off + INODE_SIZE;
    need(buf, p, nameSize, `${what} name`);
    const name = buf.subarray(p, p + nameSize);
    p += align8(nameSize);
    if (ino === 1) {
      if (!isDir(mode)) throw new RafsError(`${what}: root is not a directory`);
    } else if (nameSize === 0 || name.includes(0x2f) || name.includes(0) || (name.length <= 2 && /^\.\.?$/.test(name.toString('latin1')))) {
      throw new RafsError(`${what}: invalid name`);
    }
    need(buf, p, symlinkSize, `${what} symlink target`);
    const symlink = buf.subarray(p, p + symlinkSize);
    if (symlinkSize > 0) p += align8(symlinkSize);
    let xattrs: Buffer | undefined;
    if (flags & INODE_FLAG_XATTR) {
      const xsize = u64(buf, p, `${what} xattr size`);
      need(buf, p + 8, xsize, `${what} xattrs`);
      xattrs = buf.subarray(p + 8, p + 8 + xsize);
      p += 8 + align8(xsize);
    }
    const rec: V5Record = {
      ino, off, mode, flags, name, symlink, xattrs, chunksOff: p,
      digest: buf.subarray(off, off + 32),
      parent: u64(buf, off + 32, `${what} i_parent`),
      linkIno: u64(buf, off + 40, `${what} i_ino`),
      uid: buf.readUInt32LE(off + 48),
      gid: buf.readUInt32LE(off + 52),
      size: u64(buf, off + 64, `${what} i_size`),
      blocks: u64(buf, off + 72, `${what} i_blocks`),
      nlink: buf.readUInt32LE(off + 88),
      childIndex: buf.readUInt32LE(off + 92),
      childCount: buf.readUInt32LE(off + 96),
      rdev: buf.readUInt32LE(off + 104),
      mtimeNsec: buf.readUInt32LE(off + 108),
      mtime: u64(buf, off + 112, `${what} i_mtime`),
    };
    if (ino !== 1 && (rec.parent < 1 || rec.parent >= ino)) throw new RafsError(`${what}: i_parent ${rec.parent} is not an earlier inode`);
    if (isDir(mode)) {
      // Children always get numbers above their parent, which makes every walk down the tree finite.
      if (rec.childCount > 0 && (rec.childIndex <= ino || rec.childIndex + rec.childCount - 1 > this.entries)) {
        throw new RafsError(`${what}: child range ${rec.childIndex}+${rec.childCount} invalid (table has ${this.entries})`);
      }
    } else if (isReg(mode)) {
      need(buf, p, rec.childCount * CHUNK_RECORD_SIZE, `${what} chunk records`);
      if (!(flags & INODE_FLAG_HAS_HOLE) && rec.childCount !== Math.ceil(rec.size / this.superblock.chunkSize)) {
        throw new RafsError(`${what}: ${rec.childCount} chunks for size ${rec.size}`);
      }
    }
    return this.records.set(ino, rec);
  }

  /** just the name of a record, for binary searches that would otherwise parse every probed inode */
  private nameAt(ino: number): Buffer {
    const cached = this.records.get(ino);
    if (cached !== undefined) return cached.name;
    if (!Number.isInteger(ino) || ino < 1 || ino > this.entries) throw new RafsError(`v5 inode ${ino}: no such inode (table has ${this.entries})`);
    const off = this.buf.readUInt32LE(this.tableOff + 4 * (ino - 1)) * 8;
    need(this.buf, off, INODE_SIZE, `v5 inode ${ino}`);
    const nameSize = this.buf.readUInt16LE(off + 100);
    need(this.buf, off + INODE_SIZE, nameSize, `v5 inode ${ino} name`);
    return this.buf.subarray(off + INODE_SIZE, off + INODE_SIZE + nameSize);
  }

  getInode(ino: number): Inode {
    const r = this.record(ino);
    return {
      ino, linkIno: r.linkIno, mode: r.mode, uid: r.uid, gid: r.gid, size: r.size, mtime: r.mtime, mtimeNsec: r.mtimeNsec,
      nlink: r.nlink, rdev: r.rdev, digest: r.digest, hasXattr: r.xattrs !== undefined && r.xattrs.length > 0, blocks: r.blocks,
    };
  }

  private dirRecord(ino: number): V5Record {
    const r = this.record(ino);
    if (!isDir(r.mode)) throw new RafsError(`v5 inode ${ino}: not a directory`);
    return r;
  }

  /** name of an inode as stored in its record (the root's is "/") */
  nameOf(ino: number): Buffer {
    return this.record(ino).name;
  }

  lookup(dirIno: number, name: Buffer): Inode | undefined {
    const d = this.dirRecord(dirIno);
    let lo = d.childIndex;
    let hi = d.childIndex + d.childCount - 1;
    if (d.childCount === 0) return undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = Buffer.compare(this.nameAt(mid), name);
      if (c === 0) return this.getInode(mid);
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  readdir(dirIno: number): DirEntry[] {
    const cached = this.dirCache.get(dirIno);
    if (cached !== undefined) return cached;
    const d = this.dirRecord(dirIno);
    const out: DirEntry[] = [];
    let prev: Buffer | undefined;
    for (let k = d.childIndex; k < d.childIndex + d.childCount; k++) {
      const r = this.record(k);
      if (prev !== undefined && Buffer.compare(prev, r.name) >= 0) throw new RafsError(`v5 inode ${dirIno}: children not sorted by name at inode ${k}`);
      prev = r.name;
      out.push({ name: r.name, ino: k, type: r.mode & S_IFMT });
    }
    return this.dirCache.set(dirIno, out);
  }

  list(dirIno: number, from: number, visit: DirVisitor): void {
    const all = this.readdir(dirIno);
    for (let k = from; k < all.length; k++) {
      const e = all[k]!;
      if (!visit(e.name, 0, e.name.length, e.ino, e.type)) return;
    }
  }

  parentOf(dirIno: number): number {
    const r = this.record(dirIno);
    if (dirIno === 1) return 1;
    if (!isDir(this.record(r.parent).mode)) throw new RafsError(`v5 inode ${dirIno}: i_parent ${r.parent} is not a directory`);
    return r.parent;
  }

  readlink(ino: number): Buffer {
    const r = this.record(ino);
    if (!isLnk(r.mode)) throw new RafsError(`v5 inode ${ino}: not a symlink`);
    return r.symlink;
  }

  xattrs(ino: number): Map<string, Buffer> {
    const r = this.record(ino);
    const out = new Map<string, Buffer>();
    const x = r.xattrs;
    if (x === undefined) return out;
    let p = 0;
    while (p < x.length) {
      // the area is padded to 8 bytes after the last pair
      if (x.length - p < 4 || (x.length - p < 8 && x.subarray(p).every((b) => b === 0))) break;
      const len = x.readUInt32LE(p);
      if (len === 0 && x.subarray(p).every((b) => b === 0)) break;
      if (len > x.length - p - 4) throw new RafsError(`v5 inode ${ino}: xattr pair length ${len} overruns the xattr area`);
      const pair = x.subarray(p + 4, p + 4 + len);
      const z = pair.indexOf(0);
      if (z <= 0) throw new RafsError(`v5 inode ${ino}: xattr pair without a name`);
      out.set(pair.subarray(0, z).toString('utf8'), pair.subarray(z + 1));
      p += 4 + len;
    }
    return out;
  }

  chunks(ino: number): ChunkInfo[] {
    const r = this.record(ino);
    if (!isReg(r.mode)) throw new RafsError(`v5 inode ${ino}: not a regular file`);
    const hole = (r.flags & INODE_FLAG_HAS_HOLE) !== 0;
    const out: ChunkInfo[] = [];
    for (let i = 0; i < r.childCount; i++) {
      const what = `v5 inode ${ino} chunk ${i}`;
      const c = parseChunkRecord(this.buf, r.chunksOff + i * CHUNK_RECORD_SIZE, what);
      if (c.blobIndex >= this.blobs.length) throw new RafsError(`${what}: blob_index ${c.blobIndex} beyond ${this.blobs.length} blobs`);
      checkChunkInBlob(c, this.blobs[c.blobIndex]!, what);
      if (c.uncompressedSize > this.superblock.chunkSize) throw new RafsError(`${what}: uncompressed_size ${c.uncompressedSize} exceeds the chunk size`);
      if (!hole) c.fileOffset = i * this.superblock.chunkSize;
      if (c.fileOffset + c.uncompressedSize > r.size) throw new RafsError(`${what}: file range ${c.fileOffset}+${c.uncompressedSize} beyond i_size ${r.size}`);
      out.push(c);
    }
    return out;
  }
}
