// A RAFS image served as a read-only FUSE filesystem: metadata from the bootstrap, file data through the
// blob device (chunk map -> cache -> backend). Behaviour follows nydusd (spec nydusd-runtime §9): huge
// entry/attr timeouts (the image is immutable), negative lookups cached, keep_cache on open.
import type { Attr, Entry, FileSystem, LeasedData, StatFs } from '../fuse/filesystem.js';
import type { DirentWriter } from '../fuse/protocol.js';
import { FuseError } from '../fuse/filesystem.js';
import type { BlobDevice } from '../storage/device.js';
import type { ChunkSlice } from '../storage/cache/blob-cache.js';
import { S_IFDIR, S_IFMT, S_IFREG, isDir, isLnk, isReg } from './common.js';
import { SuperFlag, type Bootstrap, type ChunkInfo, type Inode } from '../image-model.js';

/** The image format's default timeout: the kernel practically never revalidates. */
const TIMEOUT = 2 ** 32;
const FUSE_ROOT = 1n;
const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');
const FILE_CHUNK_CACHE = 256;
/**
 * How far ahead of a sequential reader chunks are fetched. The kernel sends one 1 MiB READ at a time per
 * file, so without this each READ waits for its own fetch and decompression; with it the next chunks are
 * already being fetched and decompressed while the current one is replied. Asked for half a window at a time
 * (readAhead), so each request carries several chunks: 16 MiB took a cold read from docker-registry from 739 GETs to
 * 429 and a restart on a filled cache from 354 to ~1,500 MiB/s (BENCHMARKS.md run Z).
 */
const READAHEAD = 16 * 1024 * 1024;
const SEQUENTIAL_TRACKED = 1024;

/** Attr with every field present and numeric, as RAFS reports them */
type AttrFields = { [K in keyof Attr]-?: number };

export interface RafsFsOptions {
  /** rafs.batch_size (amplify_io): how much of a file's following chunks a read may pull along */
  amplifyIo: number;
  /** the daemon's start time, reported for inodes without an mtime */
  startTime?: number;
}

export class RafsFs implements FileSystem {
  private readonly root: number;
  private readonly uid = process.geteuid?.() ?? 0;
  private readonly gid = process.getegid?.() ?? 0;
  private readonly explicitIds: boolean;
  private readonly xattrOn: boolean;
  private readonly startTime: number;
  private readonly chunkCache = new Map<number, ChunkInfo[]>();
  /** end offset of the last read of each recently read file, to spot sequential readers */
  private readonly lastEnd = new Map<number, number>();
  /** per file read sequentially: the file offset up to which readahead has been asked for */
  private readonly aheadTo = new Map<number, number>();
  /** the attributes of the entry being listed: one object for all of them */
  private readonly scratch: AttrFields = { ino: 0, size: 0, blocks: 0, atime: 0, mtime: 0, ctime: 0, atimeNsec: 0, mtimeNsec: 0, ctimeNsec: 0, mode: 0, nlink: 0, uid: 0, gid: 0, rdev: 0, blksize: 0 };

  constructor(
    readonly bootstrap: Bootstrap,
    readonly device: BlobDevice,
    private readonly opts: RafsFsOptions,
  ) {
    const sb = bootstrap.superblock;
    this.root = sb.rootIno;
    this.explicitIds = sb.explicitUidGid;
    // Only the image's HAS_XATTR flag decides, whatever rafs.enable_xattr says. The kernel keeps one xattr
    // answer for good: ENOSYS, after which it asks this mount nothing more (spec nydusd-runtime §9.2 getxattr).
    // ENODATA it forgets, and `ls -l` asks security.selinux and system.posix_acl_access of every entry: a
    // 200,000-entry directory cost 400,000 round trips (issue 8 item 2). The reference answers ENODATA
    // there (it serves xattrs when enable_xattr OR HAS_XATTR); we answer ENOSYS, which callers see as
    // EOPNOTSUPP ("not supported") instead of ENODATA ("no such attribute"): the same for ls, cp and tar.
    // A clear flag is trustworthy: our builder and the reference's (create and merge, v5 and v6) set it
    // whenever any inode carries xattrs; the reference's v6 merge even sets it when none does.
    this.xattrOn = (sb.flags & SuperFlag.HAS_XATTR) !== 0n;
    this.startTime = opts.startTime ?? Date.now() / 1000;
  }

  /** Image inode -> FUSE node id: the root is FUSE's 1; RAFS numbers never use 1 otherwise (v5 root is 1, v6 nids start at 128). */
  private nodeOf(ino: number): bigint {
    return ino === this.root ? FUSE_ROOT : BigInt(ino);
  }

  private nodeNum(ino: number): number {
    return ino === this.root ? 1 : ino;
  }

  private inoOf(node: bigint): number {
    if (node === FUSE_ROOT) return this.root;
    if (node > BigInt(Number.MAX_SAFE_INTEGER)) throw new FuseError('ENOENT');
    return Number(node);
  }

  /** Hardlinks must be one kernel inode: v5 keeps a record per link, all naming the first link's number. */
  private canonical(inode: Inode): Inode {
    if (this.bootstrap.superblock.version === 5 && inode.linkIno !== inode.ino && isReg(inode.mode) && inode.nlink > 1) {
      return this.inode(inode.linkIno);
    }
    return inode;
  }

  private inode(ino: number): Inode {
    try {
      return this.bootstrap.getInode(ino);
    } catch (err) {
      throw new FuseError('EIO', (err as Error).message);
    }
  }

  private attr(inode: Inode): Attr {
    const a: Attr = this.fillAttr(inode, {} as AttrFields);
    a.ino = this.nodeOf(inode.ino); // entries and GETATTR answer node ids as bigint, like nodeId
    return a;
  }

  /** Writes `inode`'s attributes into `a` (listings reuse one object for every entry) and returns it. */
  private fillAttr(inode: Inode, a: AttrFields): AttrFields {
    // seconds and nanoseconds stay apart: as one float they would lose the image's exact nanoseconds
    const zero = inode.mtime === 0 && inode.mtimeNsec === 0;
    const mtime = zero ? Math.floor(this.startTime) : inode.mtime;
    const nsec = zero ? Math.round((this.startTime - mtime) * 1e9) : inode.mtimeNsec;
    let mode = inode.mode;
    if (inode.ino === this.root) mode = (mode & S_IFMT) | 0o755;
    a.ino = this.nodeNum(inode.ino);
    a.size = inode.size;
    // v5 records the count (xattr bytes included, rafs-format.md 3.6) and the reference reports it as is; v6 has none
    a.blocks = inode.blocks ?? Math.ceil(inode.size / 512);
    a.atime = a.mtime = a.ctime = mtime;
    a.atimeNsec = a.mtimeNsec = a.ctimeNsec = Math.min(nsec, 999_999_999);
    a.mode = mode;
    a.nlink = inode.nlink;
    a.uid = this.explicitIds ? inode.uid : this.uid;
    a.gid = this.explicitIds ? inode.gid : this.gid;
    a.rdev = inode.rdev;
    a.blksize = 4096;
    return a;
  }

  private entry(inode: Inode): Entry {
    const c = this.canonical(inode);
    return { nodeId: this.nodeOf(c.ino), entryTimeout: TIMEOUT, attrTimeout: TIMEOUT, attr: this.attr(c) };
  }

  async lookup(parent: bigint, name: Buffer): Promise<Entry> {
    const dir = this.inode(this.inoOf(parent));
    if (!isDir(dir.mode)) throw new FuseError('ENOTDIR');
    if (name.length === 1 && name[0] === 0x2e) return this.entry(dir);
    if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) return this.entry(this.inode(this.bootstrap.parentOf(dir.ino)));
    let child: Inode | undefined;
    try {
      child = this.bootstrap.lookup(dir.ino, name);
    } catch (err) {
      throw new FuseError('EIO', (err as Error).message);
    }
    if (!child) return { nodeId: 0n, entryTimeout: TIMEOUT, attrTimeout: TIMEOUT, attr: { ino: 0, size: 0, mode: 0 } };
    return this.entry(child);
  }

  async getattr(node: bigint): Promise<{ attr: Attr; timeout: number }> {
    return { attr: this.attr(this.inode(this.inoOf(node))), timeout: TIMEOUT };
  }

  async readlink(node: bigint): Promise<Buffer> {
    const inode = this.inode(this.inoOf(node));
    if (!isLnk(inode.mode)) throw new FuseError('EINVAL');
    return this.bootstrap.readlink(inode.ino);
  }

  // No open/opendir: the session then answers ENOSYS once and the kernel stops sending them (zero-message
  // opens, FUSE_NO_OPEN(DIR)_SUPPORT), keeping page cache and directory cache across opens, which is what
  // an immutable image wants; it saves two requests per directory in a tree walk.

  private chunksOf(inode: Inode): ChunkInfo[] {
    let list = this.chunkCache.get(inode.ino);
    if (!list) {
      try {
        list = this.bootstrap.chunks(inode.ino);
      } catch (err) {
        throw new FuseError('EIO', (err as Error).message);
      }
      if (this.chunkCache.size >= FILE_CHUNK_CACHE) this.chunkCache.clear();
      this.chunkCache.set(inode.ino, list);
    }
    return list;
  }

  async read(node: bigint, _fh: bigint, offset: bigint, size: number): Promise<LeasedData | Buffer[]> {
    const inode = this.inode(this.inoOf(node));
    if (!isReg(inode.mode)) throw new FuseError(isDir(inode.mode) ? 'EISDIR' : 'EINVAL');
    if (offset < 0n || offset + BigInt(size) > BigInt(Number.MAX_SAFE_INTEGER)) throw new FuseError('EINVAL');
    const start = Number(offset);
    const end = Math.min(start + size, inode.size);
    if (start >= end) return [];
    const chunks = this.chunksOf(inode);
    const slices: ChunkSlice[] = [];
    // chunks are in file order; find the first one that ends after `start`
    let lo = 0;
    let hi = chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = chunks[mid]!;
      if (c.fileOffset + c.uncompressedSize <= start) lo = mid + 1;
      else hi = mid;
    }
    let pos = start;
    let i = lo;
    for (; i < chunks.length && pos < end; i++) {
      const c = chunks[i]!;
      if (c.fileOffset > pos) break; // a hole: the image is inconsistent
      const s = pos - c.fileOffset;
      const e = Math.min(c.uncompressedSize, end - c.fileOffset);
      slices.push({ chunk: c, start: s, end: e });
      pos = c.fileOffset + e;
    }
    if (pos < end) throw new FuseError('EIO', `inode ${inode.ino}: no chunk covers file offset ${pos}`);
    // A reader that continues where it left off pulls the file's following chunks along in the same backend round trip,
    // up to amplify_io. Others get what they asked for: the kernel's own readahead already asks for small files whole,
    // and a program whose pages the loader faults in reads its binary and libraries here and there (issue 11: starting
    // python3 fetched 14 MB of an 80 MB image when every read pulled 1 MiB along, against eStargz's 5.6 MB).
    const sequential = this.lastEnd.get(inode.ino) === start;
    const along: ChunkInfo[] = [];
    let budget = sequential ? this.opts.amplifyIo : 0;
    for (; i < chunks.length && budget > 0; i++) {
      along.push(chunks[i]!);
      budget -= chunks[i]!.compressedSize || chunks[i]!.uncompressedSize;
    }
    this.readAhead(inode.ino, sequential, end, chunks, i);
    // the reply is written straight from the chunk memory, which is kept from reuse until then
    const lease = this.device.lease();
    try {
      return { data: await this.device.read(slices, along, lease), release: () => lease.release() };
    } catch (err) {
      lease.release();
      throw new FuseError('EIO', (err as Error).message);
    }
  }

  /** For a read that continues where the last one of this file ended, starts fetching the next chunks. */
  private readAhead(ino: number, sequential: boolean, end: number, chunks: ChunkInfo[], next: number): void {
    if (this.lastEnd.size >= SEQUENTIAL_TRACKED) {
      this.lastEnd.clear();
      this.aheadTo.clear();
    }
    this.lastEnd.set(ino, end);
    if (!sequential) {
      this.aheadTo.delete(ino);
      return;
    }
    // The next window is asked for once the reader has used half of the last one, all at once: asked for on every READ,
    // the window gained one chunk at a time and each became a backend request of its own (a registry spends ~4 ms of CPU
    // per GET: reading 1.1 GiB cold from docker-registry took 740 GETs of ~440 KiB; BENCHMARKS.md run Y).
    const issued = this.aheadTo.get(ino) ?? end;
    if (issued - end > READAHEAD / 2) return;
    const to = end + READAHEAD;
    this.aheadTo.set(ino, to);
    const ahead: ChunkInfo[] = [];
    for (let k = next; k < chunks.length && chunks[k]!.fileOffset < to; k++) ahead.push(chunks[k]!);
    if (ahead.length > 0) this.device.prefetch(ahead);
  }

  async readdirInto(node: bigint, _fh: bigint, offset: bigint, out: DirentWriter): Promise<void> {
    const dir = this.inode(this.inoOf(node));
    if (!isDir(dir.mode)) throw new FuseError('ENOTDIR');
    // cookies are ordinal positions: '.' is 1, '..' is 2, child k is k + 3; the bootstrap pages to child k directly
    const from = offset > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(offset);
    const dirType = S_IFDIR >>> 12;
    try {
      if (from < 1 && !out.add(DOT, this.nodeNum(dir.ino), 1, dirType)) return;
      if (from < 2 && !out.add(DOTDOT, this.nodeNum(this.bootstrap.parentOf(dir.ino)), 2, dirType)) return;
      let cookie = Math.max(2, from);
      const v5 = this.bootstrap.superblock.version === 5;
      const a = this.scratch;
      this.bootstrap.list(dir.ino, cookie - 2, (src, start, end, ino, type) => {
        cookie++;
        if (out.plus) {
          if (!out.fits(end - start)) return false;
          this.fillAttr(this.canonical(this.inode(ino)), a);
          return out.addPlus(src, start, end, a.ino, cookie, type >>> 12, a.ino, TIMEOUT, a);
        }
        // v5 hardlinks are one kernel inode: report the first link's number
        const n = v5 && type === S_IFREG ? this.nodeNum(this.canonical(this.inode(ino)).ino) : this.nodeNum(ino);
        return out.addName(src, start, end, n, cookie, type >>> 12);
      });
    } catch (err) {
      if (err instanceof FuseError) throw err;
      throw new FuseError('EIO', (err as Error).message);
    }
  }

  async statfs(): Promise<StatFs> {
    return { bsize: 512, frsize: 512, namelen: 255, files: this.bootstrap.superblock.inodeCount };
  }

  async getxattr(node: bigint, name: Buffer): Promise<Buffer> {
    if (!this.xattrOn) throw new FuseError('ENOSYS');
    const v = this.xattrsOf(node).get(name.toString('latin1'));
    if (!v) throw new FuseError('ENODATA');
    return v;
  }

  async listxattr(node: bigint): Promise<Buffer[]> {
    if (!this.xattrOn) throw new FuseError('ENOSYS');
    return [...this.xattrsOf(node).keys()].map((k) => Buffer.from(k, 'latin1'));
  }

  private xattrsOf(node: bigint): Map<string, Buffer> {
    const inode = this.inode(this.inoOf(node));
    if (!inode.hasXattr) return new Map();
    try {
      // names are compared as raw bytes: keep them as latin1 strings so no byte is reinterpreted
      const m = this.bootstrap.xattrs(inode.ino);
      const out = new Map<string, Buffer>();
      for (const [k, v] of m) out.set(Buffer.from(k, 'utf8').toString('latin1'), v);
      return out;
    } catch (err) {
      throw new FuseError('EIO', (err as Error).message);
    }
  }

  /**
   * Node ids are derived from the image (v6 nids, v5 inode numbers, root = 1), so a successor that opens
   * the same bootstrap reproduces every id the kernel knows: the state needs no inode table.
   */
  saveState(): unknown {
    return { kind: 'rafs', root: this.root };
  }
}
