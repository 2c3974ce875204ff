// RAFS v6 reader (rafs-format.md 2): an EROFS image with a RAFS extension, device/blob tables and a chunk table.
import { RafsError, BlobFeature, SuperFlag, type Bootstrap, type BlobInfo, type ChunkInfo, type DirEntry, type DirVisitor, type Inode, type SuperblockInfo } from '../image-model.js';
import { u64, u64big, need } from '../le.js';
import { checkMode, decodeSuperFlags, isDir, isLnk, isReg, substituteBlobIds, SmallCache, S_IFMT, S_IFREG, S_IFDIR, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK, S_IFLNK, type OpenOptions } from './common.js';
import { checkFeatures, checkCompressor, MAX_CI_ENTRIES } from '../blob/meta.js';
import { checkChunkInBlob, parseChunkRecord, CHUNK_RECORD_SIZE } from './chunk-record.js';

export const EROFS_MAGIC = 0xe0f5e1e2;
const SB_OFF = 1024;
const EXT_SB_OFF = 1152;
const DEVT_SLOT_SIZE = 128;
const BLOB_ENTRY_SIZE = 256;
const FEATURE_COMPAT_RAFS_V6 = 0x4000_0000;
const FEATURE_INCOMPAT = 0xc;
const LAYOUT_FLAT_PLAIN = 0;
const LAYOUT_FLAT_INLINE = 2;
const LAYOUT_CHUNK_BASED = 4;
const DIRENT_SIZE = 12;

/** per blob, per chunk index: the chunk-table record number + 1 (0: no record) */
type ChunkIndex = Uint32Array[];
const MAX_SYMLINK = 4096;

const FILE_TYPES = [0, S_IFREG, S_IFDIR, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK, S_IFLNK];
const XATTR_PREFIXES: Record<number, string> = {
  1: 'user.', 2: 'system.posix_acl_access', 3: 'system.posix_acl_default', 4: 'trusted.', 6: 'security.',
};

const align8 = (n: number): number => Math.ceil(n / 8) * 8;

/** End of dirent `j`'s name, which runs to `next`; the last name of a block may be NUL-padded. */
function nameEnd(b: Buffer, j: number, count: number, nameOff: number, next: number): number {
  if (j + 1 < count) return next;
  for (let p = nameOff; p < next; p++) if (b[p] === 0) return p;
  return next;
}

/** 1 for '.', 2 for '..', 0 for any other name */
function dotsOf(b: Buffer, start: number, end: number): number {
  if (b[start] !== 0x2e) return 0;
  if (end - start === 1) return 1;
  return end - start === 2 && b[start + 1] === 0x2e ? 2 : 0;
}
const utf8 = new TextDecoder('utf-8', { fatal: true });

interface DirState {
  /** 1 for each dirent block already checked */
  checked: Uint8Array;
  /** children before each block, once the directory was listed */
  before: Uint32Array | undefined;
}

interface V6Rec {
  nid: number;
  off: number;
  layout: number;
  inodeSize: number;
  xattrSize: number;
  mode: number;
  size: number;
  iu: number;
  linkIno: number;
  uid: number;
  gid: number;
  mtime: number;
  mtimeNsec: number;
  nlink: number;
}

export class V6Bootstrap implements Bootstrap {
  readonly superblock: SuperblockInfo;
  readonly blobs: BlobInfo[];
  readonly size: number;
  readonly blkszbits: number;
  readonly metaBlkaddr: number;
  readonly chunkTableOffset: number;
  readonly chunkTableSize: number;
  private readonly blksz: number;
  private readonly metaBase: number;
  private chunkIdx: ChunkIndex | undefined;
  /** the first damaged chunk-table record's fault, named when a file needs a chunk the table lacks */
  private chunkTableDamage: string | undefined;
  /**
   * Per directory, a few bytes a dirent block: listings and lookups read names straight from the bootstrap instead
   * of decoding blocks into objects (issue 8 item 2: a 200,000-entry directory held as objects cost ~100 MiB of
   * heap, and every READDIR page rebuilt them once evicted).
   */
  private readonly dirStates = new SmallCache<number, DirState>(4096);

  constructor(private readonly buf: Buffer, opts?: OpenOptions) {
    this.size = buf.length;
    if (buf.length < 4096) throw new RafsError(`v6 bootstrap: ${buf.length} bytes is shorter than 4096`);
    const sb = SB_OFF;
    const magic = buf.readUInt32LE(sb);
    if (magic !== EROFS_MAGIC) throw new RafsError(`v6 superblock: bad s_magic 0x${magic.toString(16)}`);
    if (buf.readUInt32LE(sb + 4) !== 0) throw new RafsError('v6 superblock: s_checksum must be 0');
    const compat = buf.readUInt32LE(sb + 8);
    if ((compat & FEATURE_COMPAT_RAFS_V6) === 0) throw new RafsError(`v6 superblock: s_feature_compat 0x${compat.toString(16)} lacks the RAFS v6 bit`);
    this.blkszbits = buf[sb + 12];
    if (this.blkszbits !== 12 && this.blkszbits !== 9) throw new RafsError(`v6 superblock: s_blkszbits ${this.blkszbits} is neither 12 nor 9`);
    this.blksz = 1 << this.blkszbits;
    if (buf[sb + 13] !== 0) throw new RafsError('v6 superblock: s_extslots must be 0');
    const rootNid = buf.readUInt16LE(sb + 14);
    const inos = u64(buf, sb + 16, 'v6 superblock s_inos');
    if (inos === 0) throw new RafsError('v6 superblock: s_inos is 0');
    this.metaBlkaddr = buf.readUInt32LE(sb + 40);
    if (buf.readUInt32LE(sb + 44) !== 0) throw new RafsError('v6 superblock: s_xattr_blkaddr must be 0 (shared xattrs unsupported)');
    const incompat = buf.readUInt32LE(sb + 80);
    if (incompat !== FEATURE_INCOMPAT) throw new RafsError(`v6 superblock: s_feature_incompat 0x${incompat.toString(16)} is not 0xc`);
    if (buf.readUInt16LE(sb + 84) !== 0) throw new RafsError('v6 superblock: s_u must be 0');
    const devices = buf.readUInt16LE(sb + 86);
    const slotoff = buf.readUInt16LE(sb + 88);
    if (slotoff !== 11) throw new RafsError(`v6 superblock: s_devt_slotoff ${slotoff} is not 11`);
    if (buf.length % this.blksz !== 0) throw new RafsError(`v6 bootstrap: length ${buf.length} is not a multiple of the block size ${this.blksz}`);
    this.metaBase = this.metaBlkaddr * this.blksz;
    if (this.metaBase > buf.length) throw new RafsError(`v6 superblock: s_meta_blkaddr ${this.metaBlkaddr} beyond the file`);

    const ext = EXT_SB_OFF;
    const flags = u64big(buf, ext, 'v6 extended superblock s_flags');
    const { compressor, digester } = decodeSuperFlags(flags, true, 'v6 extended superblock');
    const tarfs = (flags & SuperFlag.TARFS_MODE) !== 0n;
    if (tarfs !== (this.blkszbits === 9)) throw new RafsError('v6 superblock: TARFS_MODE and 512-byte blocks must go together');
    const blobTableOff = u64(buf, ext + 8, 'v6 extended superblock s_blob_table_offset');
    const blobTableSize = buf.readUInt32LE(ext + 16);
    const chunkSize = buf.readUInt32LE(ext + 20);
    if (chunkSize < 0x1000 || chunkSize > 0x100_0000 || (chunkSize & (chunkSize - 1)) !== 0) {
      throw new RafsError(`v6 extended superblock: s_chunk_size ${chunkSize} is not a power of two in [4K, 16M]`);
    }
    this.chunkTableOffset = u64(buf, ext + 24, 'v6 extended superblock s_chunk_table_offset');
    this.chunkTableSize = u64(buf, ext + 32, 'v6 extended superblock s_chunk_table_size');
    const prefetchOff = u64(buf, ext + 40, 'v6 extended superblock s_prefetch_table_offset');
    const prefetchSize = buf.readUInt32LE(ext + 48);

    if (blobTableSize % BLOB_ENTRY_SIZE !== 0) throw new RafsError(`v6 extended superblock: s_blob_table_size ${blobTableSize} is not a multiple of 256`);
    const blobCount = blobTableSize / BLOB_ENTRY_SIZE;
    if (blobCount !== devices) throw new RafsError(`v6 superblock: s_extra_devices ${devices} does not match ${blobCount} blob table entries`);
    if (blobCount > 0 && blobTableOff < 1408 + DEVT_SLOT_SIZE * devices) throw new RafsError(`v6 extended superblock: s_blob_table_offset ${blobTableOff} overlaps the device table`);
    need(buf, 1408, devices * DEVT_SLOT_SIZE, 'v6 device table');
    need(buf, blobTableOff, blobTableSize, 'v6 blob table');
    if (this.chunkTableSize % CHUNK_RECORD_SIZE !== 0) throw new RafsError(`v6 extended superblock: s_chunk_table_size ${this.chunkTableSize} is not a multiple of 80`);
    // nydus-snapshotter used to cut bootstraps at the chunk table; a table wholly past EOF is treated as absent.
    if (this.chunkTableSize > 0 && this.chunkTableOffset < buf.length) need(buf, this.chunkTableOffset, this.chunkTableSize, 'v6 chunk table');
    if (prefetchSize % 4 !== 0) throw new RafsError(`v6 extended superblock: s_prefetch_table_size ${prefetchSize} is not a multiple of 4`);
    if (prefetchSize > 0) need(buf, prefetchOff, prefetchSize, 'v6 prefetch table');

    this.blobs = this.parseBlobs(blobTableOff, blobCount, chunkSize, tarfs);
    substituteBlobIds(this.blobs, opts);

    const prefetch: number[] = [];
    for (let i = 0; i < prefetchSize / 4; i++) {
      const nid = buf.readUInt32LE(prefetchOff + 4 * i);
      if (nid === 0) break;
      prefetch.push(nid);
    }
    this.superblock = {
      version: 6, flags, compressor, digester, chunkSize,
      explicitUidGid: (flags & SuperFlag.EXPLICIT_UID_GID) !== 0n,
      blockSize: this.blksz, rootIno: rootNid, inodeCount: inos, prefetch,
    };
    const root = this.inode(rootNid);
    if (!isDir(root.mode)) throw new RafsError(`v6 superblock: root nid ${rootNid} is not a directory`);
  }

  private parseBlobs(off: number, count: number, chunkSize: number, tarfs: boolean): BlobInfo[] {
    const buf = this.buf;
    const blobs: BlobInfo[] = [];
    const ids = new Set<string>();
    for (let i = 0; i < count; i++) {
      const e = off + i * BLOB_ENTRY_SIZE;
      const what = `v6 blob table entry ${i}`;
      const blobId = this.readId(e, `${what} blob_id`);
      if (buf.readUInt32LE(e + 64) !== i) throw new RafsError(`${what}: blob_index ${buf.readUInt32LE(e + 64)} is not ${i}`);
      if (buf.readUInt32LE(e + 68) !== chunkSize) throw new RafsError(`${what}: chunk_size ${buf.readUInt32LE(e + 68)} differs from s_chunk_size ${chunkSize}`);
      const dev = 1408 + i * DEVT_SLOT_SIZE;
      const devId = this.readId(dev, `v6 device slot ${i} blob_id`);
      if (ids.has(devId)) throw new RafsError(`v6 device slot ${i}: duplicate blob id ${devId}`);
      ids.add(devId);
      if (buf.readUInt32LE(dev + 64) === 0) throw new RafsError(`v6 device slot ${i}: blocks is 0`);
      const digestAlgo = buf.readUInt32LE(e + 80);
      if (digestAlgo > 1) throw new RafsError(`${what}: unknown digest_algo ${digestAlgo}`);
      const b: BlobInfo = {
        blobId, index: i, chunkSize,
        chunkCount: buf.readUInt32LE(e + 72),
        compressor: checkCompressor(buf.readUInt32LE(e + 76), `${what} compression_algo`),
        digester: digestAlgo,
        features: buf.readUInt32LE(e + 84),
        compressedSize: u64(buf, e + 88, `${what} compressed_size`),
        uncompressedSize: u64(buf, e + 96, `${what} uncompressed_size`),
        readaheadOffset: 0, readaheadSize: 0,
        tocSize: buf.readUInt32LE(e + 104),
        ciCompressor: checkCompressor(buf.readUInt32LE(e + 108), `${what} ci_compressor`),
        ciOffset: u64(buf, e + 112, `${what} ci_offset`),
        ciCompressedSize: u64(buf, e + 120, `${what} ci_compressed_size`),
        ciUncompressedSize: u64(buf, e + 128, `${what} ci_uncompressed_size`),
        tocDigest: buf.subarray(e + 136, e + 168),
        metaDigest: buf.subarray(e + 168, e + 200),
        metaSize: u64(buf, e + 200, `${what} blob_meta_size`),
        mappedBlkaddr: buf.readUInt32LE(dev + 68),
      };
      checkFeatures(b.features, what);
      if (b.chunkCount > MAX_CI_ENTRIES) throw new RafsError(`${what}: chunk_count ${b.chunkCount} exceeds 2^24`);
      if (b.compressedSize > 2 ** 40) throw new RafsError(`${what}: compressed_size ${b.compressedSize} exceeds 2^40`);
      if (b.uncompressedSize > 2 ** 44) throw new RafsError(`${what}: uncompressed_size ${b.uncompressedSize} exceeds 2^44`);
      const aligned = (b.features & BlobFeature.ALIGNED) !== 0;
      if (aligned === tarfs) throw new RafsError(`${what}: ALIGNED feature must be set exactly when not in tarfs mode`);
      if (b.ciCompressedSize > b.ciUncompressedSize) throw new RafsError(`${what}: ci_compressed_size exceeds ci_uncompressed_size`);
      const v2 = (b.features & BlobFeature.CHUNK_INFO_V2) !== 0;
      const extra = (b.features & (BlobFeature.BATCH | BlobFeature.ZRAN | BlobFeature.ENCRYPTED)) !== 0;
      if (extra && !v2) throw new RafsError(`${what}: BATCH/ZRAN/ENCRYPTED need CHUNK_INFO_V2`);
      if (!tarfs && !(b.features & BlobFeature.IS_CHUNKDICT_GENERATED) && b.chunkCount > 0) {
        const want = b.chunkCount * (v2 ? 24 : 16);
        if (extra ? b.ciUncompressedSize < want : b.ciUncompressedSize !== want) {
          throw new RafsError(`${what}: ci_uncompressed_size ${b.ciUncompressedSize} does not fit ${b.chunkCount} ${v2 ? 'v2' : 'v1'} entries`);
        }
      }
      blobs.push(b);
    }
    return blobs;
  }

  private readId(off: number, what: string): string {
    const raw = this.buf.subarray(off, off + 64);
    let s: string;
    try {
      s = utf8.decode(raw);
    } catch {
      throw new RafsError(`${what}: not valid UTF-8`);
    }
    s = s.replace(/\0+$/, '');
    if (s.length === 0 || s.includes('\0')) throw new RafsError(`${what}: empty or NUL inside`);
    return s;
  }

  /**
   * Decodes and checks an inode record. Not cached: decoding costs about what a Map lookup does, and a cache that a
   * 200,000-entry listing churns through only moved garbage into the old generation (issue 8 item 2).
   */
  private inode(nid: number): V6Rec {
    const what = `v6 inode nid ${nid}`;
    const buf = this.buf;
    if (!Number.isSafeInteger(nid) || nid < 0) throw new RafsError(`${what}: invalid nid`);
    const off = this.metaBase + 32 * nid;
    if (off < EXT_SB_OFF + 256) throw new RafsError(`${what}: inode would overlap the superblock`);
    need(buf, off, 32, what);
    const format = buf.readUInt16LE(off);
    if (format & ~0xf) throw new RafsError(`${what}: i_format has unknown bits 0x${(format & ~0xf).toString(16)}`);
    const extended = (format & 1) === 1;
    const layout = (format >> 1) & 7;
    if (layout !== LAYOUT_FLAT_PLAIN && layout !== LAYOUT_FLAT_INLINE && layout !== LAYOUT_CHUNK_BASED) {
      throw new RafsError(`${what}: unsupported data layout ${layout}`);
    }
    const inodeSize = extended ? 64 : 32;
    need(buf, off, inodeSize, what);
    const icount = buf.readUInt16LE(off + 2);
    const xattrSize = icount === 0 ? 0 : 12 + 4 * (icount - 1);
    need(buf, off + inodeSize, xattrSize, `${what} xattrs`);
    const mode = checkMode(buf.readUInt16LE(off + 4), what);
    const rec: V6Rec = extended
      ? {
        nid, off, layout, inodeSize, xattrSize, mode,
        size: u64(buf, off + 8, `${what} i_size`),
        iu: buf.readUInt32LE(off + 16),
        linkIno: buf.readUInt32LE(off + 20),
        uid: buf.readUInt32LE(off + 24),
        gid: buf.readUInt32LE(off + 28),
        mtime: u64(buf, off + 32, `${what} i_mtime`),
        mtimeNsec: buf.readUInt32LE(off + 40),
        nlink: buf.readUInt32LE(off + 44),
      }
      : {
        nid, off, layout, inodeSize, xattrSize, mode,
        nlink: buf.readUInt16LE(off + 6),
        size: buf.readUInt32LE(off + 8),
        iu: buf.readUInt32LE(off + 16),
        linkIno: buf.readUInt32LE(off + 20),
        uid: buf.readUInt16LE(off + 24),
        gid: buf.readUInt16LE(off + 26),
        mtime: 0, mtimeNsec: 0,
      };
    if (isReg(mode) !== (layout === LAYOUT_CHUNK_BASED)) throw new RafsError(`${what}: data layout ${layout} does not suit mode 0o${mode.toString(8)}`);
    if (isDir(mode) || isLnk(mode)) {
      if (isLnk(mode) && rec.size > MAX_SYMLINK) throw new RafsError(`${what}: symlink size ${rec.size} exceeds ${MAX_SYMLINK}`);
      if (isDir(mode) && rec.size === 0) throw new RafsError(`${what}: directory has size 0`);
      if (rec.size > buf.length) throw new RafsError(`${what}: i_size ${rec.size} exceeds the bootstrap`);
    } else if (isReg(mode)) {
      const n = Math.ceil(rec.size / this.superblockChunkSize());
      need(buf, this.chunkArrayOff(rec), n * 8, `${what} chunk indexes`);
    } else if (rec.size !== 0) {
      throw new RafsError(`${what}: special file has size ${rec.size}`);
    }
    return rec;
  }

  private superblockChunkSize(): number {
    return this.buf.readUInt32LE(EXT_SB_OFF + 20);
  }

  private chunkArrayOff(r: V6Rec): number {
    return r.off + align8(r.inodeSize + r.xattrSize);
  }

  /** bytes of a dir/symlink data block `k` */
  private dataBlock(r: V6Rec, k: number): Buffer {
    const n = Math.ceil(r.size / this.blksz);
    const len = k < n - 1 ? this.blksz : r.size - (n - 1) * this.blksz;
    let off: number;
    if (r.layout === LAYOUT_FLAT_INLINE && k === n - 1) off = r.off + r.inodeSize + r.xattrSize;
    else off = (r.iu + k) * this.blksz;
    need(this.buf, off, len, `v6 inode nid ${r.nid} data block ${k}`);
    return this.buf.subarray(off, off + len);
  }

  getInode(nid: number): Inode {
    const r = this.inode(nid);
    const special = (r.mode & S_IFMT) === S_IFCHR || (r.mode & S_IFMT) === S_IFBLK || (r.mode & S_IFMT) === S_IFIFO || (r.mode & S_IFMT) === S_IFSOCK;
    return {
      ino: nid, linkIno: r.linkIno, mode: r.mode, uid: r.uid, gid: r.gid, size: r.size, mtime: r.mtime,
      mtimeNsec: r.mtimeNsec, nlink: r.nlink, rdev: special ? r.iu : 0, hasXattr: r.xattrSize > 0,
    };
  }

  private dirInode(nid: number): V6Rec {
    const r = this.inode(nid);
    if (!isDir(r.mode)) throw new RafsError(`v6 inode nid ${nid}: not a directory`);
    return r;
  }

  /** What is known of directory `nid`: which of its dirent blocks were checked, and its child counts once listed. */
  private dirState(nid: number): { r: V6Rec; st: DirState } {
    const r = this.dirInode(nid);
    let st = this.dirStates.get(nid);
    if (st === undefined) st = this.dirStates.set(nid, { checked: new Uint8Array(this.blockCount(r)), before: undefined });
    return { r, st };
  }

  /**
   * Dirent block `k`, checked on first use (name ranges, no NUL or '/', names strictly sorted, known file types, '.'
   * pointing at the directory itself): a lookup checks only the blocks its binary search touches, so the first
   * `cat` of one file in a 200,000-entry directory does not pay for checking the whole directory.
   */
  private dirBlock(r: V6Rec, st: DirState, k: number): Buffer {
    const b = this.dataBlock(r, k);
    if (st.checked[k] === 1) return b;
    const what = `v6 inode nid ${r.nid} dirent block ${k}`;
    if (b.length < DIRENT_SIZE) throw new RafsError(`${what}: too short for a dirent`);
    const first = b.readUInt16LE(8);
    if (first % DIRENT_SIZE !== 0 || first === 0 || first >= b.length) throw new RafsError(`${what}: first e_nameoff ${first} invalid`);
    const count = first / DIRENT_SIZE;
    let prevOff = first;
    let prevEnd = 0;
    for (let j = 0; j < count; j++) {
      const d = j * DIRENT_SIZE;
      const nameOff = b.readUInt16LE(d + 8);
      const next = j + 1 < count ? b.readUInt16LE(d + DIRENT_SIZE + 8) : b.length;
      if (nameOff < prevOff || next <= nameOff || next > b.length) throw new RafsError(`${what}: dirent ${j} name range ${nameOff}..${next} invalid`);
      const end = nameEnd(b, j, count, nameOff, next);
      if (end === nameOff) throw new RafsError(`${what}: dirent ${j} has an empty name`);
      for (let p = nameOff; p < end; p++) {
        if (b[p] === 0 || b[p] === 0x2f) throw new RafsError(`${what}: dirent ${j} name contains NUL or '/'`);
      }
      if (j > 0 && b.compare(b, nameOff, end, prevOff, prevEnd) >= 0) throw new RafsError(`v6 inode nid ${r.nid}: dirents not sorted at block ${k} entry ${j}`);
      prevOff = nameOff;
      prevEnd = end;
      const child = u64(b, d, `${what} dirent ${j} e_nid`);
      if (b[d + 10] >= FILE_TYPES.length) throw new RafsError(`${what}: dirent ${j} has unknown file type ${b[d + 10]}`);
      if (dotsOf(b, nameOff, end) === 1 && child !== r.nid) throw new RafsError(`v6 inode nid ${r.nid}: '.' points at nid ${child}`);
    }
    st.checked[k] = 1;
    return b;
  }

  /**
   * Element k: the number of children ('.' and '..' excluded) in blocks before block k; the last element the total.
   * Built at the first listing, which also checks that names stay sorted from block to block, so a listing pages
   * straight to child k.
   */
  private childCounts(r: V6Rec, st: DirState): Uint32Array {
    if (st.before !== undefined) return st.before;
    const blocks = st.checked.length;
    const before = new Uint32Array(blocks + 1);
    let children = 0;
    let prev: Buffer | undefined;
    let prevStart = 0;
    let prevEnd = 0;
    for (let k = 0; k < blocks; k++) {
      before[k] = children;
      const b = this.dirBlock(r, st, k);
      const count = b.readUInt16LE(8) / DIRENT_SIZE;
      for (let j = 0; j < count; j++) {
        const d = j * DIRENT_SIZE;
        const nameOff = b.readUInt16LE(d + 8);
        const end = nameEnd(b, j, count, nameOff, j + 1 < count ? b.readUInt16LE(d + DIRENT_SIZE + 8) : b.length);
        if (j === 0 && prev !== undefined && prev.compare(b, nameOff, end, prevStart, prevEnd) >= 0) {
          throw new RafsError(`v6 inode nid ${r.nid}: dirents not sorted at block ${k} entry 0`);
        }
        if (j === count - 1) {
          prev = b;
          prevStart = nameOff;
          prevEnd = end;
        }
        if (dotsOf(b, nameOff, end) === 0) children++;
      }
    }
    before[blocks] = children;
    st.before = before;
    return before;
  }

  private blockCount(r: V6Rec): number {
    return Math.ceil(r.size / this.blksz);
  }

  list(nid: number, from: number, visit: DirVisitor): void {
    const { r, st } = this.dirState(nid);
    const before = this.childCounts(r, st);
    const blocks = before.length - 1;
    if (from >= before[blocks]!) return;
    // the block holding child `from`: the last block with before[k] <= from
    let lo = 0;
    let hi = blocks - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (before[mid]! <= from) lo = mid;
      else hi = mid - 1;
    }
    let skip = from - before[lo]!;
    for (let k = lo; k < blocks; k++) {
      const b = this.dataBlock(r, k);
      const count = b.readUInt16LE(8) / DIRENT_SIZE;
      for (let j = 0; j < count; j++) {
        const d = j * DIRENT_SIZE;
        const nameOff = b.readUInt16LE(d + 8);
        const end = nameEnd(b, j, count, nameOff, j + 1 < count ? b.readUInt16LE(d + DIRENT_SIZE + 8) : b.length);
        if (dotsOf(b, nameOff, end) !== 0) continue;
        if (skip > 0) {
          skip--;
          continue;
        }
        const child = b.readUInt32LE(d) + b.readUInt32LE(d + 4) * 2 ** 32; // checked safe by dirBlock
        const ft = FILE_TYPES[b[d + 10]!]!;
        if (!visit(b, nameOff, end, child, ft === 0 ? this.inode(child).mode & S_IFMT : ft)) return;
      }
    }
  }

  readdir(nid: number): DirEntry[] {
    const out: DirEntry[] = [];
    this.list(nid, 0, (src, start, end, ino, type) => out.push({ name: src.subarray(start, end), ino, type }) > 0);
    return out;
  }

  /** nid of `name` in a directory (including '.' and '..'), or -1: a binary search over the blocks, then inside one */
  private findNid(dirNid: number, name: Buffer): number {
    const { r, st } = this.dirState(dirNid);
    let lo = 0;
    let hi = st.checked.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const b = this.dirBlock(r, st, mid);
      const count = b.readUInt16LE(8) / DIRENT_SIZE;
      const firstOff = b.readUInt16LE(8);
      if (name.compare(b, firstOff, nameEnd(b, 0, count, firstOff, count > 1 ? b.readUInt16LE(DIRENT_SIZE + 8) : b.length)) < 0) {
        hi = mid - 1;
        continue;
      }
      const lastOff = b.readUInt16LE((count - 1) * DIRENT_SIZE + 8);
      if (name.compare(b, lastOff, nameEnd(b, count - 1, count, lastOff, b.length)) > 0) {
        lo = mid + 1;
        continue;
      }
      let l = 0;
      let h = count - 1;
      while (l <= h) {
        const m = (l + h) >>> 1;
        const d = m * DIRENT_SIZE;
        const off = b.readUInt16LE(d + 8);
        const c = name.compare(b, off, nameEnd(b, m, count, off, m + 1 < count ? b.readUInt16LE(d + DIRENT_SIZE + 8) : b.length));
        if (c === 0) return b.readUInt32LE(d) + b.readUInt32LE(d + 4) * 2 ** 32;
        if (c > 0) l = m + 1;
        else h = m - 1;
      }
      return -1;
    }
    return -1;
  }

  lookup(dirNid: number, name: Buffer): Inode | undefined {
    if (dotsOf(name, 0, name.length) !== 0) return undefined;
    const nid = this.findNid(dirNid, name);
    return nid < 0 ? undefined : this.getInode(nid);
  }

  parentOf(dirNid: number): number {
    if (dirNid === this.superblock.rootIno) return dirNid;
    const nid = this.findNid(dirNid, Buffer.from('..'));
    if (nid < 0) throw new RafsError(`v6 inode nid ${dirNid}: directory has no '..' entry`);
    if (!isDir(this.inode(nid).mode)) throw new RafsError(`v6 inode nid ${dirNid}: '..' is not a directory`);
    return nid;
  }

  readlink(nid: number): Buffer {
    const r = this.inode(nid);
    if (!isLnk(r.mode)) throw new RafsError(`v6 inode nid ${nid}: not a symlink`);
    if (r.size === 0) return Buffer.alloc(0);
    const parts: Buffer[] = [];
    for (let k = 0; k < this.blockCount(r); k++) parts.push(this.dataBlock(r, k));
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  xattrs(nid: number): Map<string, Buffer> {
    const r = this.inode(nid);
    const out = new Map<string, Buffer>();
    if (r.xattrSize === 0) return out;
    const what = `v6 inode nid ${nid} xattrs`;
    const x = this.buf.subarray(r.off + r.inodeSize, r.off + r.inodeSize + r.xattrSize);
    const shared = x[4];
    let p = 12 + 4 * shared;
    if (p > x.length) throw new RafsError(`${what}: ${shared} shared ids overrun the xattr area`);
    while (x.length - p >= 4) {
      const nameLen = x[p];
      const index = x[p + 1];
      const valueSize = x.readUInt16LE(p + 2);
      if (nameLen === 0 && index === 0 && valueSize === 0) break;
      const prefix = XATTR_PREFIXES[index];
      if (prefix === undefined) throw new RafsError(`${what}: unknown name index ${index}`);
      const end = p + 4 + nameLen + valueSize;
      if (end > x.length) throw new RafsError(`${what}: entry at ${p} overruns the xattr area`);
      const suffix = x.subarray(p + 4, p + 4 + nameLen);
      out.set(prefix + suffix.toString('utf8'), x.subarray(p + 4 + nameLen, end));
      p = Math.ceil(end / 4) * 4;
    }
    return out;
  }

  /**
   * Where each chunk's record sits in the chunk table, built on first use from the records' two key fields
   * alone: parsing every 80-byte record into an object up front cost a 200,000-file layer 0.5 s and 100 MiB
   * at its first read (issue 8 item 2). A record is parsed, and checked, when a file needs it.
   */
  private chunkIndex(): ChunkIndex | undefined {
    if (this.chunkIdx !== undefined) return this.chunkIdx;
    if (!this.hasChunkTable()) return undefined;
    const n = this.chunkTableSize / CHUNK_RECORD_SIZE;
    const blobOf = new Uint32Array(n);
    const indexOf = new Uint32Array(n);
    const valid = new Uint8Array(n);
    const slots = new Array<number>(this.blobs.length).fill(0);
    let damaged = 0;
    for (let i = 0; i < n; i++) {
      const off = this.chunkTableOffset + i * CHUNK_RECORD_SIZE;
      const blobIndex = this.buf.readUInt32LE(off + 32);
      const index = this.buf.readUInt32LE(off + 72);
      let fault: string | undefined;
      if (blobIndex >= this.blobs.length) fault = `blob_index ${blobIndex} beyond ${this.blobs.length} blobs`;
      else if (index >= MAX_CI_ENTRIES) fault = `index ${index} exceeds 2^24`;
      if (fault !== undefined) {
        // one bad record must not cost every file its data: the files that need it fail with its cause
        if (damaged++ === 0) this.chunkTableDamage = `v6 chunk table record ${i}: ${fault}`;
        continue;
      }
      blobOf[i] = blobIndex;
      indexOf[i] = index;
      valid[i] = 1;
      slots[blobIndex] = Math.max(slots[blobIndex]!, index + 1);
    }
    if (damaged > 1) this.chunkTableDamage += ` (and ${damaged - 1} more damaged records)`;
    // chunk indexes are dense (0 .. chunk_count - 1 per blob): one slot per index, holding record number + 1.
    // Builders order the table by digest, so this also saves a sort. A sparse (hostile) table stays bounded
    // in memory: no more slots than four per record.
    if (slots.reduce((a, b) => a + b, 0) > 4 * n + 1024) throw new RafsError(`v6 chunk table: chunk indexes of its ${n} records are too sparse`);
    const bySlot = slots.map((k) => new Uint32Array(k));
    for (let i = 0; i < n; i++) {
      if (valid[i] === 0) continue;
      const slot = bySlot[blobOf[i]!]!;
      // of records with the same key the first one counts
      if (slot[indexOf[i]!] === 0) slot[indexOf[i]!] = i + 1;
    }
    this.chunkIdx = bySlot;
    return bySlot;
  }

  /** The chunk table's record of a chunk, parsed (a damaged record throws naming its fault), or undefined. */
  private chunkRecord(idx: ChunkIndex, blobIndex: number, index: number): ChunkInfo | undefined {
    const r = idx[blobIndex]?.[index];
    if (!r) return undefined;
    return parseChunkRecord(this.buf, this.chunkTableOffset + (r - 1) * CHUNK_RECORD_SIZE, `v6 chunk table record ${r - 1}`);
  }

  /** true when the bootstrap carries its chunk table (optional at runtime) */
  prepare(): void {
    this.chunkIndex();
  }

  hasChunkTable(): boolean {
    return this.chunkTableSize > 0 && this.chunkTableOffset < this.buf.length;
  }

  chunks(nid: number): ChunkInfo[] {
    const r = this.inode(nid);
    if (!isReg(r.mode)) throw new RafsError(`v6 inode nid ${nid}: not a regular file`);
    const chunkSize = this.superblock.chunkSize;
    const n = Math.ceil(r.size / chunkSize);
    const base = this.chunkArrayOff(r);
    const table = this.chunkIndex();
    const tarfs = this.blkszbits === 9;
    const out: ChunkInfo[] = [];
    for (let i = 0; i < n; i++) {
      const what = `v6 inode nid ${nid} chunk ${i}`;
      const p = base + 8 * i;
      const lo = this.buf.readUInt16LE(p);
      const hi = this.buf.readUInt16LE(p + 2);
      const blkaddr = this.buf.readUInt32LE(p + 4);
      const blobIndex = (hi & 0xff) - 1;
      const index = ((hi >>> 8) << 16) | lo;
      if (blobIndex < 0 || blobIndex >= this.blobs.length) throw new RafsError(`${what}: device ${hi & 0xff} names no blob (${this.blobs.length} blobs)`);
      const fileOffset = i * chunkSize;
      const size = Math.min(chunkSize, r.size - fileOffset);
      const uncompressedOffset = blkaddr * this.blksz;
      if (table !== undefined && !tarfs) {
        const c = this.chunkRecord(table, blobIndex, index);
        if (c === undefined) {
          const cause = this.chunkTableDamage ? `; the chunk table is damaged: ${this.chunkTableDamage}` : '';
          throw new RafsError(`${what}: blob ${blobIndex} chunk ${index} missing from the chunk table${cause}`);
        }
        if (c.uncompressedOffset !== uncompressedOffset) throw new RafsError(`${what}: c_blk_addr ${blkaddr} disagrees with the chunk table offset ${c.uncompressedOffset}`);
        if (c.uncompressedSize !== size) throw new RafsError(`${what}: chunk size ${c.uncompressedSize} does not cover file bytes ${fileOffset}+${size}`);
        checkChunkInBlob(c, this.blobs[blobIndex]!, what);
        out.push({ ...c, fileOffset });
      } else {
        let c: ChunkInfo | undefined;
        try {
          c = table && this.chunkRecord(table, blobIndex, index);
        } catch {
          // only the digest is taken from the table here: a damaged record leaves it out
        }
        out.push({
          digest: c?.digest ?? Buffer.alloc(0), blobIndex, index, flags: 0,
          compressedOffset: tarfs ? uncompressedOffset : 0, compressedSize: tarfs ? size : 0,
          uncompressedOffset, uncompressedSize: size, fileOffset, crc32: 0,
        });
      }
    }
    return out;
  }
}
