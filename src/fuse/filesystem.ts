// What a filesystem served over FUSE implements. Inode-based like the kernel protocol (node ids, not paths), async
// everywhere so a handler can wait on a backend without holding up other requests. Failures are thrown as
// FuseError (or any Error with an errno-name `code`); anything else becomes EIO.
import { constants as osConstants } from 'node:os';
import type { Attr, DirentWriter, EntryOut, StatFs } from './protocol.js';

export type { Attr, EntryOut as Entry, StatFs } from './protocol.js';

/** Who asked, and a signal that fires when the kernel interrupts the request (the caller was killed). */
export interface RequestContext {
  uid: number;
  gid: number;
  pid: number;
  unique: bigint;
  signal: AbortSignal;
}

export interface OpenResult {
  fh?: bigint;
  /** Keep the page cache across opens (image content is immutable). */
  keepCache?: boolean;
  /** Bypass the page cache for this open file: every read() reaches the daemon. */
  directIo?: boolean;
  /** opendir only: let the kernel cache the listing. */
  cacheDir?: boolean;
}

export interface DirEntry {
  name: Buffer | string;
  /** st_ino as getdents reports it. */
  ino: bigint | number;
  /** st_mode file-type bits (S_IFDIR...), or 0 for DT_UNKNOWN. */
  mode: number;
  /** Cookie for continuing after this entry: the kernel sends it back as the next READDIR offset. */
  offset: bigint | number;
  /**
   * READDIRPLUS only: the lookup result for this entry (counts as one lookup, like LOOKUP). Leave it out for "."
   * and ".."; for other names the session asks `lookup` when it is missing.
   */
  entry?: EntryOut;
}

/** Capabilities agreed at INIT, passed to `init` and kept across resume. */
export interface ConnectionInfo {
  protoMajor: number;
  protoMinor: number;
  flags: number;
  maxWrite: number;
  maxReadahead: number;
  maxPages: number;
}

/** Read data in memory the filesystem recycles: `release` is called once the reply no longer needs it. */
export interface LeasedData {
  data: Buffer[];
  release(): void;
}

export interface FileSystem {
  /** Called once the kernel's INIT has been answered (not on resume). */
  init?(conn: ConnectionInfo): void | Promise<void>;
  /** The kernel sent DESTROY (fuseblk/virtiofs) or the session is unmounting. */
  destroy?(): void | Promise<void>;

  /** A child of `parent`; return `nodeId: 0n` for a cached negative entry, or throw ENOENT. */
  lookup(parent: bigint, name: Buffer, ctx: RequestContext): Promise<EntryOut>;
  /** The kernel dropped `nlookup` references to `nodeId`. No reply is sent. */
  forget?(nodeId: bigint, nlookup: bigint): void;
  getattr(nodeId: bigint, ctx: RequestContext): Promise<{ attr: Attr; timeout: number }>;
  readlink?(nodeId: bigint, ctx: RequestContext): Promise<Buffer | string>;

  /** Absent: the session answers ENOSYS, which (with NO_OPEN_SUPPORT) makes opens zero-message with keep_cache. */
  open?(nodeId: bigint, flags: number, ctx: RequestContext): Promise<OpenResult>;
  /**
   * At most `size` bytes at `offset`; fewer only at end of file. May return a view of a larger buffer (it is
   * written to the device without copying) or several buffers to be sent back to back. Large replies are written
   * after this returns, from another thread: the bytes must not change until then, so never hand back a buffer
   * that is about to be reused for another read.
   */
  read(nodeId: bigint, fh: bigint, offset: bigint, size: number, ctx: RequestContext): Promise<Buffer | Buffer[] | LeasedData>;
  release?(nodeId: bigint, fh: bigint): void | Promise<void>;
  flush?(nodeId: bigint, fh: bigint, ctx: RequestContext): Promise<void>;
  lseek?(nodeId: bigint, fh: bigint, offset: bigint, whence: number, ctx: RequestContext): Promise<bigint>;

  /** Absent: ENOSYS (zero-message opendir with directory caching where the kernel supports it). */
  opendir?(nodeId: bigint, flags: number, ctx: RequestContext): Promise<OpenResult>;
  /**
   * Entries after cookie `offset` (0 = from the start), in order. The session stops pulling when the reply is full,
   * so a lazy iterable avoids building the whole listing for every page.
   */
  readdir?(nodeId: bigint, fh: bigint, offset: bigint, plus: boolean, ctx: RequestContext): Promise<Iterable<DirEntry>>;
  /**
   * The other way to list (implement one of the two): write the entries after cookie `offset` straight into the
   * reply with `out.addName` (READDIR) or `out.addPlus` (READDIRPLUS, `out.plus`) until one returns false. Entries
   * written with a node id count as one lookup each, like LOOKUP. For filesystems that list huge directories from
   * their own buffers: no object per entry (issue 8 item 2).
   */
  readdirInto?(nodeId: bigint, fh: bigint, offset: bigint, out: DirentWriter, ctx: RequestContext): Promise<void>;
  releasedir?(nodeId: bigint, fh: bigint): void | Promise<void>;

  statfs(nodeId: bigint, ctx: RequestContext): Promise<StatFs>;
  /** The whole value; the session handles the size probe and ERANGE. Throw ENODATA when absent. */
  getxattr?(nodeId: bigint, name: Buffer, ctx: RequestContext): Promise<Buffer>;
  listxattr?(nodeId: bigint, ctx: RequestContext): Promise<(Buffer | string)[]>;
  /** Absent: ENOSYS, and the kernel stops asking (it checks modes itself with default_permissions). */
  access?(nodeId: bigint, mask: number, ctx: RequestContext): Promise<void>;

  /** Whatever the filesystem must get back in `Session.resume` to reproduce the node ids the kernel knows. */
  saveState?(): unknown;
}

const errnoNumbers = osConstants.errno as Record<string, number>;

/** An errno failure a filesystem method throws, e.g. `new FuseError('ENOENT')`. */
export class FuseError extends Error {
  readonly code: string;
  readonly errno: number;
  constructor(code: string, message?: string) {
    const n = errnoNumbers[code];
    if (n === undefined) throw new Error(`FuseError: unknown errno name ${code}`);
    super(message ?? code);
    this.code = code;
    this.errno = n;
  }
}

/** The positive errno for a thrown value; undefined when it carries none (the session then logs it and says EIO). */
export function errnoOf(e: unknown): number | undefined {
  if (e instanceof FuseError) return e.errno;
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && errnoNumbers[code] !== undefined) return errnoNumbers[code];
  return undefined;
}

export const errno = (name: string): number => {
  const n = errnoNumbers[name];
  if (n === undefined) throw new Error(`unknown errno name ${name}`);
  return n;
};
