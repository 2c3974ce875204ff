// Kernel FUSE wire protocol (linux/fuse.h): opcodes, flag bits, struct layouts and the encoders/decoders a read-only
// filesystem needs. Pure functions over Buffers, no I/O, so the session layer and the tests share one definition.
// All integers are little-endian (x86_64 / aarch64 only, like the reference daemon).

export const FUSE_KERNEL_VERSION = 7;
/** The newest minor whose struct layouts this file knows (the machine's header says 7.38). */
export const FUSE_MAX_MINOR = 38;
/** Below this the kernel uses compat struct sizes (entry_out 120, attr_out 96, init_out 24) we do not emit. */
export const FUSE_MIN_MINOR = 23;
export const FUSE_ROOT_ID = 1n;

export const Op = {
  LOOKUP: 1, FORGET: 2, GETATTR: 3, SETATTR: 4, READLINK: 5, SYMLINK: 6, MKNOD: 8, MKDIR: 9, UNLINK: 10, RMDIR: 11,
  RENAME: 12, LINK: 13, OPEN: 14, READ: 15, WRITE: 16, STATFS: 17, RELEASE: 18, FSYNC: 20, SETXATTR: 21, GETXATTR: 22,
  LISTXATTR: 23, REMOVEXATTR: 24, FLUSH: 25, INIT: 26, OPENDIR: 27, READDIR: 28, RELEASEDIR: 29, FSYNCDIR: 30,
  GETLK: 31, SETLK: 32, SETLKW: 33, ACCESS: 34, CREATE: 35, INTERRUPT: 36, BMAP: 37, DESTROY: 38, IOCTL: 39, POLL: 40,
  NOTIFY_REPLY: 41, BATCH_FORGET: 42, FALLOCATE: 43, READDIRPLUS: 44, RENAME2: 45, LSEEK: 46, COPY_FILE_RANGE: 47,
  SETUPMAPPING: 48, REMOVEMAPPING: 49, SYNCFS: 50, TMPFILE: 51,
} as const;

const opNames = new Map<number, string>(Object.entries(Op).map(([k, v]) => [v, k]));
export function opName(op: number): string {
  return opNames.get(op) ?? `OP_${op}`;
}

/** Opcodes that modify the filesystem: a read-only mount answers EROFS (the kernel usually refuses them first). */
export const MUTATING_OPS: ReadonlySet<number> = new Set([
  Op.SETATTR, Op.SYMLINK, Op.MKNOD, Op.MKDIR, Op.UNLINK, Op.RMDIR, Op.RENAME, Op.LINK, Op.WRITE, Op.SETXATTR,
  Op.REMOVEXATTR, Op.CREATE, Op.FALLOCATE, Op.RENAME2, Op.COPY_FILE_RANGE, Op.TMPFILE,
]);

/** Requests the kernel expects no reply to. */
export const NO_REPLY_OPS: ReadonlySet<number> = new Set([Op.FORGET, Op.BATCH_FORGET, Op.INTERRUPT]);

/** INIT capability bits (fuse_init_in/out.flags; bits 32.. travel in flags2 and are not used here). */
export const InitFlag = {
  ASYNC_READ: 1 << 0, POSIX_LOCKS: 1 << 1, FILE_OPS: 1 << 2, ATOMIC_O_TRUNC: 1 << 3, EXPORT_SUPPORT: 1 << 4,
  BIG_WRITES: 1 << 5, DONT_MASK: 1 << 6, SPLICE_WRITE: 1 << 7, SPLICE_MOVE: 1 << 8, SPLICE_READ: 1 << 9,
  FLOCK_LOCKS: 1 << 10, HAS_IOCTL_DIR: 1 << 11, AUTO_INVAL_DATA: 1 << 12, DO_READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14, ASYNC_DIO: 1 << 15, WRITEBACK_CACHE: 1 << 16, NO_OPEN_SUPPORT: 1 << 17,
  PARALLEL_DIROPS: 1 << 18, HANDLE_KILLPRIV: 1 << 19, POSIX_ACL: 1 << 20, ABORT_ERROR: 1 << 21, MAX_PAGES: 1 << 22,
  CACHE_SYMLINKS: 1 << 23, NO_OPENDIR_SUPPORT: 1 << 24, EXPLICIT_INVAL_DATA: 1 << 25, MAP_ALIGNMENT: 1 << 26,
  SUBMOUNTS: 1 << 27, HANDLE_KILLPRIV_V2: 1 << 28, SETXATTR_EXT: 1 << 29, INIT_EXT: 1 << 30,
} as const;

export function initFlagNames(flags: number): string[] {
  return Object.entries(InitFlag).filter(([, bit]) => (flags & bit) !== 0).map(([name]) => name);
}

/** fuse_open_out.open_flags */
export const OpenFlag = {
  DIRECT_IO: 1 << 0, KEEP_CACHE: 1 << 1, NONSEEKABLE: 1 << 2, CACHE_DIR: 1 << 3, STREAM: 1 << 4, NOFLUSH: 1 << 5,
} as const;

export const NotifyCode = { POLL: 1, INVAL_INODE: 2, INVAL_ENTRY: 3, STORE: 4, RETRIEVE: 5, DELETE: 6, RESEND: 7 } as const;

export const IN_HEADER_SIZE = 40;
export const OUT_HEADER_SIZE = 16;
export const ATTR_SIZE = 88;
export const ENTRY_OUT_SIZE = 40 + ATTR_SIZE;
export const ATTR_OUT_SIZE = 16 + ATTR_SIZE;
export const OPEN_OUT_SIZE = 16;
export const KSTATFS_SIZE = 80;
export const INIT_OUT_SIZE = 64;
export const DIRENT_HEADER_SIZE = 24;
export const READ_IN_SIZE = 40;
/** The kernel refuses reads into a buffer smaller than this, whatever max_write is. */
export const FUSE_MIN_READ_BUFFER = 8192;
/** The interrupt request's own unique has this bit set on top of the interrupted request's unique. */
export const FUSE_INT_REQ_BIT = 1n;

export interface InHeader {
  len: number;
  opcode: number;
  unique: bigint;
  nodeId: bigint;
  uid: number;
  gid: number;
  pid: number;
}

export class ProtocolError extends Error {}

export function decodeInHeader(buf: Buffer): InHeader {
  if (buf.length < IN_HEADER_SIZE) throw new ProtocolError(`FUSE request of ${buf.length} bytes is shorter than its 40-byte header`);
  const len = buf.readUInt32LE(0);
  if (len !== buf.length) throw new ProtocolError(`FUSE request header says ${len} bytes but ${buf.length} were read`);
  return {
    len,
    opcode: buf.readUInt32LE(4),
    unique: buf.readBigUInt64LE(8),
    nodeId: buf.readBigUInt64LE(16),
    uid: buf.readUInt32LE(24),
    gid: buf.readUInt32LE(28),
    pid: buf.readUInt32LE(32),
  };
}

/** The body after the header, checked to hold at least `need` bytes for the opcode's fixed struct. */
function body(buf: Buffer, need: number, what: string): Buffer {
  const b = buf.subarray(IN_HEADER_SIZE);
  if (b.length < need) throw new ProtocolError(`${what} body is ${b.length} bytes, expected at least ${need}`);
  return b;
}

/** A NUL-terminated name inside a request body. */
function cString(b: Buffer, from: number, what: string): Buffer {
  const end = b.indexOf(0, from);
  if (end < 0) throw new ProtocolError(`${what}: name is not NUL-terminated`);
  return b.subarray(from, end);
}

export interface InitIn { major: number; minor: number; maxReadahead: number; flags: number; flags2: number }
export function decodeInit(buf: Buffer): InitIn {
  const b = body(buf, 16, 'INIT');
  return {
    major: b.readUInt32LE(0),
    minor: b.readUInt32LE(4),
    maxReadahead: b.readUInt32LE(8),
    flags: b.readUInt32LE(12),
    // flags2 exists from 7.36 (64-byte fuse_init_in); older kernels send 16 bytes
    flags2: b.length >= 20 ? b.readUInt32LE(16) : 0,
  };
}

/** Name of LOOKUP (and of the other single-name requests). */
export function decodeName(buf: Buffer): Buffer {
  return cString(body(buf, 1, 'LOOKUP'), 0, 'LOOKUP');
}

export function decodeForget(buf: Buffer): bigint {
  return body(buf, 8, 'FORGET').readBigUInt64LE(0);
}

export function decodeBatchForget(buf: Buffer): { nodeId: bigint; nlookup: bigint }[] {
  const b = body(buf, 8, 'BATCH_FORGET');
  const count = b.readUInt32LE(0);
  if (8 + count * 16 > b.length) throw new ProtocolError(`BATCH_FORGET claims ${count} entries but carries ${(b.length - 8) >> 4}`);
  const out: { nodeId: bigint; nlookup: bigint }[] = [];
  for (let i = 0, p = 8; i < count; i++, p += 16) out.push({ nodeId: b.readBigUInt64LE(p), nlookup: b.readBigUInt64LE(p + 8) });
  return out;
}

export interface GetattrIn { flags: number; fh: bigint }
export function decodeGetattr(buf: Buffer): GetattrIn {
  // kernels before 7.9 send no body; treat as "no handle"
  const b = buf.subarray(IN_HEADER_SIZE);
  if (b.length < 16) return { flags: 0, fh: 0n };
  return { flags: b.readUInt32LE(0), fh: b.readBigUInt64LE(8) };
}

export interface OpenIn { flags: number; openFlags: number }
export function decodeOpen(buf: Buffer): OpenIn {
  const b = body(buf, 8, 'OPEN');
  return { flags: b.readUInt32LE(0), openFlags: b.readUInt32LE(4) };
}

/** READ, READDIR and READDIRPLUS share fuse_read_in. */
export interface ReadIn { fh: bigint; offset: bigint; size: number; readFlags: number; lockOwner: bigint; flags: number }
export function decodeRead(buf: Buffer): ReadIn {
  const b = body(buf, 24, 'READ');
  return {
    fh: b.readBigUInt64LE(0),
    offset: b.readBigUInt64LE(8),
    size: b.readUInt32LE(16),
    readFlags: b.readUInt32LE(20),
    lockOwner: b.length >= 32 ? b.readBigUInt64LE(24) : 0n,
    flags: b.length >= 36 ? b.readUInt32LE(32) : 0,
  };
}

export interface ReleaseIn { fh: bigint; flags: number; releaseFlags: number; lockOwner: bigint }
export function decodeRelease(buf: Buffer): ReleaseIn {
  const b = body(buf, 16, 'RELEASE');
  return { fh: b.readBigUInt64LE(0), flags: b.readUInt32LE(8), releaseFlags: b.readUInt32LE(12), lockOwner: b.length >= 24 ? b.readBigUInt64LE(16) : 0n };
}

export interface FlushIn { fh: bigint; lockOwner: bigint }
export function decodeFlush(buf: Buffer): FlushIn {
  const b = body(buf, 24, 'FLUSH');
  return { fh: b.readBigUInt64LE(0), lockOwner: b.readBigUInt64LE(16) };
}

export interface GetxattrIn { size: number; name: Buffer }
export function decodeGetxattr(buf: Buffer): GetxattrIn {
  const b = body(buf, 9, 'GETXATTR');
  return { size: b.readUInt32LE(0), name: cString(b, 8, 'GETXATTR') };
}

export function decodeListxattr(buf: Buffer): { size: number } {
  return { size: body(buf, 8, 'LISTXATTR').readUInt32LE(0) };
}

export function decodeAccess(buf: Buffer): { mask: number } {
  return { mask: body(buf, 8, 'ACCESS').readUInt32LE(0) };
}

export interface LseekIn { fh: bigint; offset: bigint; whence: number }
export function decodeLseek(buf: Buffer): LseekIn {
  const b = body(buf, 24, 'LSEEK');
  return { fh: b.readBigUInt64LE(0), offset: b.readBigInt64LE(8), whence: b.readUInt32LE(16) };
}

export function decodeInterrupt(buf: Buffer): bigint {
  return body(buf, 8, 'INTERRUPT').readBigUInt64LE(0);
}

// ---- replies ----------------------------------------------------------------------------------------------------

export function encodeOutHeader(unique: bigint, errno: number, payloadLen: number): Buffer {
  const h = Buffer.allocUnsafe(OUT_HEADER_SIZE);
  h.writeUInt32LE(OUT_HEADER_SIZE + payloadLen, 0);
  h.writeInt32LE(errno === 0 ? 0 : -Math.abs(errno), 4);
  h.writeBigUInt64LE(unique, 8);
  return h;
}

/** An error reply: the header alone with a negative errno. */
export function encodeError(unique: bigint, errno: number): Buffer {
  return encodeOutHeader(unique, errno, 0);
}

/** A success reply whose payload is one buffer (header prepended; use encodeOutHeader + writev for big data). */
export function encodeReply(unique: bigint, payload: Buffer): Buffer {
  return Buffer.concat([encodeOutHeader(unique, 0, payload.length), payload]);
}

/** Times are seconds since the epoch as numbers (fractions become nanoseconds). */
export interface Attr {
  ino: bigint | number;
  size: bigint | number;
  blocks?: bigint | number;
  atime?: number;
  mtime?: number;
  ctime?: number;
  /**
   * Nanoseconds of the times, when they are given apart: `atime`/`mtime`/`ctime` are then whole seconds. A time as
   * one float of seconds keeps only about 240 ns at today's dates, so an image's exact mtime needs the two fields.
   */
  atimeNsec?: number;
  mtimeNsec?: number;
  ctimeNsec?: number;
  mode: number;
  nlink?: number;
  uid?: number;
  gid?: number;
  rdev?: number;
  blksize?: number;
}

const TWO_32 = 0x1_0000_0000;
const U64_MAX = 0xffff_ffff_ffff_ffffn;

/**
 * A u64 field. Numbers (what RAFS hands out) are written as two u32 halves: a find over a large image encodes
 * about ten u64 fields per entry, and a BigInt for each was a visible share of the daemon's CPU. Anything that
 * is not a safe integer goes the BigInt way, which throws on fractions and negatives.
 */
function writeU64(b: Buffer, v: bigint | number, off: number): void {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) {
    b.writeUInt32LE(v >>> 0, off);
    b.writeUInt32LE(Math.floor(v / TWO_32), off + 4);
  } else {
    b.writeBigUInt64LE(BigInt(v), off);
  }
}

/** Seconds and nanoseconds of a time in seconds (or whole seconds and `nsec` apart); not finite or negative is 0. */
function writeTime(b: Buffer, secOff: number, nsecOff: number, t: number, nsec?: number): void {
  if (!Number.isFinite(t) || t < 0) t = 0;
  const sec = Math.floor(t);
  // beyond 2^64 - 1 (a huge cache timeout) the field saturates
  writeU64(b, sec < 2 ** 64 ? sec : U64_MAX, secOff);
  b.writeUInt32LE(Math.min(999_999_999, nsec ?? Math.round((t - sec) * 1e9)), nsecOff);
}

export function writeAttr(b: Buffer, off: number, a: Attr): void {
  writeU64(b, a.ino, off);
  writeU64(b, a.size, off + 8);
  const blocks = a.blocks ?? (typeof a.size === 'number' ? Math.ceil(a.size / 512) : (a.size + 511n) / 512n);
  writeU64(b, blocks, off + 16);
  writeTime(b, off + 24, off + 48, a.atime ?? 0, a.atimeNsec);
  writeTime(b, off + 32, off + 52, a.mtime ?? 0, a.mtimeNsec);
  writeTime(b, off + 40, off + 56, a.ctime ?? 0, a.ctimeNsec);
  b.writeUInt32LE(a.mode >>> 0, off + 60);
  b.writeUInt32LE(a.nlink ?? 1, off + 64);
  b.writeUInt32LE(a.uid ?? 0, off + 68);
  b.writeUInt32LE(a.gid ?? 0, off + 72);
  b.writeUInt32LE(a.rdev ?? 0, off + 76);
  b.writeUInt32LE(a.blksize ?? 4096, off + 80);
  b.writeUInt32LE(0, off + 84); // fuse_attr.flags (submount/dax): never set for RAFS
}

/** Attributes as decoded: times as float seconds (the `*Nsec` fields are only an input form). */
export type DecodedAttr = Required<Omit<Attr, 'atimeNsec' | 'mtimeNsec' | 'ctimeNsec'>>;

export function decodeAttr(b: Buffer, off = 0): DecodedAttr {
  const t = (s: number, ns: number) => Number(b.readBigUInt64LE(off + s)) + b.readUInt32LE(off + ns) / 1e9;
  return {
    ino: b.readBigUInt64LE(off),
    size: b.readBigUInt64LE(off + 8),
    blocks: b.readBigUInt64LE(off + 16),
    atime: t(24, 48),
    mtime: t(32, 52),
    ctime: t(40, 56),
    mode: b.readUInt32LE(off + 60),
    nlink: b.readUInt32LE(off + 64),
    uid: b.readUInt32LE(off + 68),
    gid: b.readUInt32LE(off + 72),
    rdev: b.readUInt32LE(off + 76),
    blksize: b.readUInt32LE(off + 80),
  };
}

export interface EntryOut {
  /** 0 = negative entry: the name is cached as absent for entryTimeout. */
  nodeId: bigint;
  generation?: bigint;
  entryTimeout: number;
  attrTimeout: number;
  attr: Attr;
}

export function writeEntryOut(b: Buffer, off: number, e: EntryOut): void {
  writeEntryFields(b, off, e.nodeId, e.generation ?? 0n, e.entryTimeout, e.attrTimeout, e.attr);
}

function writeEntryFields(b: Buffer, off: number, nodeId: bigint | number, generation: bigint | number, entryTimeout: number, attrTimeout: number, attr: Attr): void {
  writeU64(b, nodeId, off);
  writeU64(b, generation, off + 8);
  writeTime(b, off + 16, off + 32, entryTimeout);
  writeTime(b, off + 24, off + 36, attrTimeout);
  writeAttr(b, off + 40, attr);
}

/** The bits of a node id below a VFS slot (spec nydusd-runtime.md 9.1: slot << 56 | inode). */
export const SLOT_SHIFT = 56n;
export const INODE_MASK = (1n << SLOT_SHIFT) - 1n;

/** `slot << 56 | nodeId`: a filesystem's own node id as the kernel sees it when served in VFS slot `slot`. */
export function withSlot(slot: number, nodeId: bigint | number): bigint {
  const n = BigInt(nodeId);
  if (n > INODE_MASK) throw new ProtocolError(`node id ${n} does not fit below a VFS slot`);
  return (BigInt(slot) << SLOT_SHIFT) | n;
}

export function encodeEntryOut(e: EntryOut): Buffer {
  const b = Buffer.alloc(ENTRY_OUT_SIZE);
  writeEntryOut(b, 0, e);
  return b;
}

export function encodeAttrOut(attr: Attr, timeout: number): Buffer {
  const b = Buffer.alloc(ATTR_OUT_SIZE);
  writeTime(b, 0, 8, timeout);
  writeAttr(b, 16, attr);
  return b;
}

export function encodeOpenOut(fh: bigint, openFlags: number): Buffer {
  const b = Buffer.alloc(OPEN_OUT_SIZE);
  b.writeBigUInt64LE(fh, 0);
  b.writeUInt32LE(openFlags >>> 0, 8);
  return b;
}

export interface StatFs {
  blocks?: bigint | number;
  bfree?: bigint | number;
  bavail?: bigint | number;
  files?: bigint | number;
  ffree?: bigint | number;
  bsize?: number;
  namelen?: number;
  frsize?: number;
}

export function encodeStatfsOut(s: StatFs): Buffer {
  const b = Buffer.alloc(KSTATFS_SIZE);
  b.writeBigUInt64LE(BigInt(s.blocks ?? 0), 0);
  b.writeBigUInt64LE(BigInt(s.bfree ?? 0), 8);
  b.writeBigUInt64LE(BigInt(s.bavail ?? 0), 16);
  b.writeBigUInt64LE(BigInt(s.files ?? 0), 24);
  b.writeBigUInt64LE(BigInt(s.ffree ?? 0), 32);
  b.writeUInt32LE(s.bsize ?? 512, 40);
  b.writeUInt32LE(s.namelen ?? 255, 44);
  b.writeUInt32LE(s.frsize ?? s.bsize ?? 512, 48);
  return b;
}

/** fuse_getxattr_out / LISTXATTR size probe answer. */
export function encodeXattrSizeOut(size: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(size, 0);
  return b;
}

export function encodeLseekOut(offset: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(offset, 0);
  return b;
}

export interface InitOut {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
  maxBackground: number;
  congestionThreshold: number;
  maxWrite: number;
  timeGran: number;
  maxPages: number;
  flags2?: number;
}

export function encodeInitOut(o: InitOut): Buffer {
  const b = Buffer.alloc(INIT_OUT_SIZE);
  b.writeUInt32LE(o.major, 0);
  b.writeUInt32LE(o.minor, 4);
  b.writeUInt32LE(o.maxReadahead >>> 0, 8);
  b.writeUInt32LE(o.flags >>> 0, 12);
  b.writeUInt16LE(o.maxBackground, 16);
  b.writeUInt16LE(o.congestionThreshold, 18);
  b.writeUInt32LE(o.maxWrite >>> 0, 20);
  b.writeUInt32LE(o.timeGran, 24);
  b.writeUInt16LE(o.maxPages, 28);
  b.writeUInt16LE(0, 30); // map_alignment: DAX only
  b.writeUInt32LE((o.flags2 ?? 0) >>> 0, 32);
  return b;
}

export function decodeInitOut(b: Buffer): InitOut {
  return {
    major: b.readUInt32LE(0), minor: b.readUInt32LE(4), maxReadahead: b.readUInt32LE(8), flags: b.readUInt32LE(12),
    maxBackground: b.readUInt16LE(16), congestionThreshold: b.readUInt16LE(18), maxWrite: b.readUInt32LE(20),
    timeGran: b.readUInt32LE(24), maxPages: b.readUInt16LE(28), flags2: b.readUInt32LE(32),
  };
}

// ---- directory listings -----------------------------------------------------------------------------------------

const align8 = (n: number) => (n + 7) & ~7;

/** DT_* value from st_mode, as getdents reports it. */
export function direntType(mode: number): number {
  return (mode & 0o170000) >>> 12;
}

export function direntSize(nameLen: number): number {
  return align8(DIRENT_HEADER_SIZE + nameLen);
}

export function direntPlusSize(nameLen: number): number {
  return align8(ENTRY_OUT_SIZE + DIRENT_HEADER_SIZE + nameLen);
}

/**
 * Packs directory entries into a READDIR / READDIRPLUS reply of at most `size` bytes. `off` of each entry is the
 * cookie the kernel sends back to continue after it.
 */
export class DirentWriter {
  private readonly buf: Buffer;
  private pos = 0;
  /**
   * Written into the top 8 bits of every non-zero node id of a READDIRPLUS entry: a VFS serving several
   * filesystems in one session sets it to the listing filesystem's slot (spec nydusd-runtime.md 9.1), so that
   * the filesystem writes its own node ids without knowing the slot.
   */
  nodeSlot = 0;
  /** READDIRPLUS entries written with a non-zero node id: each is a lookup the kernel will FORGET one day. */
  linked = 0;
  constructor(size: number, readonly plus: boolean) {
    this.buf = Buffer.alloc(size);
  }

  /** Returns false (writing nothing) when the entry does not fit: the caller stops and replies. */
  add(name: Buffer, ino: bigint | number, off: bigint | number, type: number, entry?: EntryOut): boolean {
    if (!this.plus) return this.addName(name, 0, name.length, ino, off, type);
    // nodeid 0 means "no entry attached": the kernel only fills the dirent (used for "." and "..")
    if (entry === undefined) return this.addPlus(name, 0, name.length, ino, off, type, 0, 0, { ino, size: 0, mode: type << 12 });
    return this.addPlus(name, 0, name.length, ino, off, type, entry.nodeId, entry.entryTimeout, entry.attr, entry.attrTimeout, entry.generation);
  }

  /** A READDIR entry named `src[start, end)`, so a filesystem can copy names straight from its own buffers. */
  addName(src: Buffer, start: number, end: number, ino: bigint | number, off: bigint | number, type: number): boolean {
    const len = this.checkName(start, end);
    const need = direntSize(len);
    if (this.pos + need > this.buf.length) return false;
    this.dirent(src, start, end, this.pos, ino, off, type);
    this.pos += need; // padding bytes stay zero from Buffer.alloc
    return true;
  }

  /**
   * A READDIRPLUS entry named `src[start, end)`: node `nodeId` (0: none attached) with attributes `attr`, written
   * straight from the numbers given, so a filesystem needs no entry objects per listed name.
   */
  addPlus(
    src: Buffer, start: number, end: number, ino: bigint | number, off: bigint | number, type: number, nodeId: bigint | number, timeout: number,
    attr: Attr, attrTimeout = timeout, generation: bigint | number = 0,
  ): boolean {
    const len = this.checkName(start, end);
    const need = direntPlusSize(len);
    if (this.pos + need > this.buf.length) return false;
    writeEntryFields(this.buf, this.pos, nodeId, generation, timeout, attrTimeout, attr);
    if (nodeId !== 0 && nodeId !== 0n) {
      this.linked++;
      // the slot goes into the top byte of the node id already written (no BigInt per listed entry)
      if (this.nodeSlot !== 0) {
        const high = this.buf.readUInt32LE(this.pos + 4);
        if (high >= 1 << 24) throw new ProtocolError(`node id ${nodeId} does not fit below a VFS slot`);
        this.buf.writeUInt32LE(this.nodeSlot * 2 ** 24 + high, this.pos + 4);
      }
    }
    this.dirent(src, start, end, this.pos + ENTRY_OUT_SIZE, ino, off, type);
    this.pos += need;
    return true;
  }

  /** Whether an entry with a name of `nameLen` bytes still fits. */
  fits(nameLen: number): boolean {
    return this.pos + (this.plus ? direntPlusSize(nameLen) : direntSize(nameLen)) <= this.buf.length;
  }

  private checkName(start: number, end: number): number {
    const len = end - start;
    if (len <= 0 || len > 1024) throw new ProtocolError(`directory entry name of ${len} bytes`);
    return len;
  }

  private dirent(src: Buffer, start: number, end: number, p: number, ino: bigint | number, off: bigint | number, type: number): void {
    writeU64(this.buf, ino, p);
    writeU64(this.buf, off, p + 8);
    this.buf.writeUInt32LE(end - start, p + 16);
    this.buf.writeUInt32LE(type, p + 20);
    if (end - start > 32) {
      src.copy(this.buf, p + DIRENT_HEADER_SIZE, start, end);
      return;
    }
    // most names are short: a loop is cheaper than the native copy's call overhead, once per listed entry
    const b = this.buf;
    for (let i = start, q = p + DIRENT_HEADER_SIZE; i < end; i++, q++) b[q] = src[i]!;
  }

  get length(): number {
    return this.pos;
  }

  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

export interface DecodedDirent { ino: bigint; off: bigint; type: number; name: string; nameBytes: Buffer; entry?: { nodeId: bigint; attr: DecodedAttr } }

/** Inverse of DirentWriter (tests, and the VFS listing an instance's root before it goes). */
export function decodeDirents(b: Buffer, plus: boolean): DecodedDirent[] {
  const out: DecodedDirent[] = [];
  let p = 0;
  while (p < b.length) {
    let entry: DecodedDirent['entry'];
    const start = p;
    if (plus) {
      entry = { nodeId: b.readBigUInt64LE(p), attr: decodeAttr(b, p + 40) };
      p += ENTRY_OUT_SIZE;
    }
    const namelen = b.readUInt32LE(p + 16);
    out.push({ ino: b.readBigUInt64LE(p), off: b.readBigUInt64LE(p + 8), type: b.readUInt32LE(p + 20), name: b.toString('utf8', p + 24, p + 24 + namelen), nameBytes: Buffer.from(b.subarray(p + 24, p + 24 + namelen)), entry });
    p = start + (plus ? direntPlusSize(namelen) : direntSize(namelen));
  }
  return out;
}

// ---- notifications (daemon -> kernel, unique 0, error field = notify code) ------------------------------------

export function encodeNotifyInvalInode(nodeId: bigint, offset: bigint, length: bigint): Buffer {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(nodeId, 0);
  b.writeBigInt64LE(offset, 8);
  b.writeBigInt64LE(length, 16);
  return notify(NotifyCode.INVAL_INODE, b);
}

export function encodeNotifyInvalEntry(parent: bigint, name: Buffer | string): Buffer {
  const n = typeof name === 'string' ? Buffer.from(name) : name;
  if (n.length === 0 || n.length > 1024) throw new ProtocolError(`invalidation of a ${n.length}-byte name`);
  const b = Buffer.alloc(16 + n.length + 1);
  b.writeBigUInt64LE(parent, 0);
  b.writeUInt32LE(n.length, 8);
  b.writeUInt32LE(0, 12);
  n.copy(b, 16);
  return notify(NotifyCode.INVAL_ENTRY, b);
}

/** FUSE_NOTIFY_RESEND (7.40, Linux >= 6.9): requeue requests a dead predecessor had read but not answered. */
export function encodeNotifyResend(): Buffer {
  return notify(NotifyCode.RESEND, Buffer.alloc(0));
}

function notify(code: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(OUT_HEADER_SIZE);
  h.writeUInt32LE(OUT_HEADER_SIZE + payload.length, 0);
  h.writeInt32LE(code, 4); // positive: a notification, not an error
  h.writeBigUInt64LE(0n, 8);
  return Buffer.concat([h, payload]);
}

// ---- request encoders (only tests and the benchmark need them: they play the kernel) ----------------------------

export function encodeRequest(opcode: number, unique: bigint, nodeId: bigint, payload: Buffer, ids: { uid?: number; gid?: number; pid?: number } = {}): Buffer {
  const b = Buffer.alloc(IN_HEADER_SIZE + payload.length);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt32LE(opcode, 4);
  b.writeBigUInt64LE(unique, 8);
  b.writeBigUInt64LE(nodeId, 16);
  b.writeUInt32LE(ids.uid ?? 0, 24);
  b.writeUInt32LE(ids.gid ?? 0, 28);
  b.writeUInt32LE(ids.pid ?? 0, 32);
  payload.copy(b, IN_HEADER_SIZE);
  return b;
}

export function encodeReadIn(fh: bigint, offset: bigint, size: number): Buffer {
  const b = Buffer.alloc(READ_IN_SIZE);
  b.writeBigUInt64LE(fh, 0);
  b.writeBigUInt64LE(offset, 8);
  b.writeUInt32LE(size, 16);
  return b;
}
