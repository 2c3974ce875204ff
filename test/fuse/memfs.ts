// A small in-memory read-only filesystem for the FUSE session tests. Built deterministically (same content and
// inode numbers every time), so a process that resumes a session serves exactly what its predecessor served.
import { createHash } from 'node:crypto';
import { FuseError, type DirEntry, type Entry, type FileSystem, type OpenResult, type RequestContext } from '../../src/fuse/filesystem.js';
import type { Attr, StatFs } from '../../src/fuse/protocol.js';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
/** RAFS answers with practically infinite timeouts; so do we. */
const TIMEOUT = 2 ** 32;
const MTIME = 1_700_000_000;
/** Far above the milliseconds a group of barrier reads normally takes to gather; below the test commands' timeouts. */
const BARRIER_GIVE_UP_MS = 10_000;

interface Node {
  ino: bigint;
  parent: bigint;
  mode: number;
  data: Buffer;
  target?: Buffer;
  children?: Map<string, bigint>;
  xattrs?: Map<string, Buffer>;
  /** ms each READ of this file waits (honouring interrupts). */
  readDelayMs?: number;
  /** each READ of this file waits until this many barrier READs wait together (see MemFs.barrier) */
  readBarrier?: number;
  directIo?: boolean;
}

/** Deterministic bytes: an xorshift32 stream seeded by a hash of the name (fast enough for 8 MiB files). */
export function content(seed: string, size: number): Buffer {
  const words = new Uint32Array(Math.ceil(size / 4));
  let x = createHash('sha256').update(seed).digest().readUInt32LE(0) || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return Buffer.from(words.buffer, 0, size);
}

export interface MemFsOptions {
  /** Implement OPEN/OPENDIR (needed for per-file direct_io); without them opens are zero-message. */
  withOpen?: boolean;
}

export class MemFs implements FileSystem {
  readonly nodes = new Map<bigint, Node>();
  private nextIno = 2n;
  /** Reads whose interrupt signal fired. */
  abortedReads = 0;
  /** READ requests currently waiting in a delay. */
  pendingReads = 0;
  /** Barrier READs waiting now, the most that ever waited at once, and how many gave up waiting for their group. */
  barrierWaiting = 0;
  barrierPeak = 0;
  barrierGaveUp = 0;
  private barrierWaiters: (() => void)[] = [];
  declare open?: FileSystem['open'];
  declare opendir?: FileSystem['opendir'];

  constructor(opts: MemFsOptions = {}) {
    this.nodes.set(1n, { ino: 1n, parent: 1n, mode: S_IFDIR | 0o755, data: Buffer.alloc(0), children: new Map() });
    if (opts.withOpen) {
      this.open = async (nodeId: bigint): Promise<OpenResult> => {
        const n = this.node(nodeId);
        return n.directIo ? { directIo: true } : { keepCache: true };
      };
      this.opendir = async (): Promise<OpenResult> => ({ cacheDir: true });
    }
  }

  private node(ino: bigint): Node {
    const n = this.nodes.get(ino);
    if (!n) throw new FuseError('ENOENT', `no node ${ino}`);
    return n;
  }

  private add(parent: bigint, name: string, n: Omit<Node, 'ino' | 'parent'>): bigint {
    const p = this.node(parent);
    if (!p.children) throw new Error(`${parent} is not a directory`);
    const ino = this.nextIno++;
    this.nodes.set(ino, { ...n, ino, parent });
    p.children.set(name, ino);
    return ino;
  }

  mkdir(parent: bigint, name: string): bigint {
    return this.add(parent, name, { mode: S_IFDIR | 0o755, data: Buffer.alloc(0), children: new Map() });
  }

  file(parent: bigint, name: string, data: Buffer, extra: Partial<Node> = {}): bigint {
    return this.add(parent, name, { mode: S_IFREG | 0o644, data, ...extra });
  }

  symlink(parent: bigint, name: string, target: string): bigint {
    return this.add(parent, name, { mode: S_IFLNK | 0o777, data: Buffer.alloc(0), target: Buffer.from(target) });
  }

  attr(n: Node): Attr {
    return {
      ino: n.ino,
      size: n.target ? n.target.length : n.children ? 4096 : n.data.length,
      mode: n.mode,
      nlink: n.children ? 2 : 1,
      uid: 0,
      gid: 0,
      atime: MTIME,
      mtime: MTIME,
      ctime: MTIME,
    };
  }

  entry(n: Node): Entry {
    return { nodeId: n.ino, entryTimeout: TIMEOUT, attrTimeout: TIMEOUT, attr: this.attr(n) };
  }

  async lookup(parent: bigint, name: Buffer): Promise<Entry> {
    const p = this.node(parent);
    if (!p.children) throw new FuseError('ENOTDIR');
    const ino = p.children.get(name.toString());
    // RAFS answers a missing name with a cached negative entry; the "neg-" names exercise that path
    if (ino === undefined && name.toString().startsWith('neg-')) return { nodeId: 0n, entryTimeout: TIMEOUT, attrTimeout: 0, attr: { ino: 0, size: 0, mode: 0 } };
    if (ino === undefined) throw new FuseError('ENOENT');
    return this.entry(this.node(ino));
  }

  async getattr(nodeId: bigint): Promise<{ attr: Attr; timeout: number }> {
    return { attr: this.attr(this.node(nodeId)), timeout: TIMEOUT };
  }

  async readlink(nodeId: bigint): Promise<Buffer> {
    const n = this.node(nodeId);
    if (!n.target) throw new FuseError('EINVAL');
    return n.target;
  }

  async read(nodeId: bigint, _fh: bigint, offset: bigint, size: number, ctx: RequestContext): Promise<Buffer> {
    const n = this.node(nodeId);
    if (n.readDelayMs) await this.delay(n.readDelayMs, ctx.signal);
    if (n.readBarrier) await this.barrier(n.readBarrier, ctx.signal);
    const off = Number(offset);
    if (off >= n.data.length) return Buffer.alloc(0);
    return n.data.subarray(off, Math.min(n.data.length, off + size));
  }

  /**
   * Holds a READ until `group` of them wait here together, then lets them all go: reads served one at a time never
   * fill the group. Not to hang a test, a read gives up after BARRIER_GIVE_UP_MS (counted in barrierGaveUp).
   */
  private async barrier(group: number, signal: AbortSignal): Promise<void> {
    this.barrierWaiting++;
    this.barrierPeak = Math.max(this.barrierPeak, this.barrierWaiting);
    try {
      if (this.barrierWaiting >= group) {
        for (const go of this.barrierWaiters.splice(0)) go();
        return;
      }
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => {
          this.barrierGaveUp++;
          resolve();
        }, BARRIER_GIVE_UP_MS);
        const go = () => {
          clearTimeout(t);
          resolve();
        };
        this.barrierWaiters.push(go);
        signal.addEventListener('abort', () => {
          clearTimeout(t);
          this.barrierWaiters = this.barrierWaiters.filter((w) => w !== go);
          reject(new FuseError('EINTR'));
        }, { once: true });
      });
    } finally {
      this.barrierWaiting--;
    }
  }

  private async delay(ms: number, signal: AbortSignal): Promise<void> {
    this.pendingReads++;
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, ms);
        signal.addEventListener('abort', () => {
          clearTimeout(t);
          this.abortedReads++;
          reject(new FuseError('EINTR'));
        }, { once: true });
      });
    } finally {
      this.pendingReads--;
    }
  }

  async readdir(nodeId: bigint, _fh: bigint, offset: bigint, plus: boolean): Promise<Iterable<DirEntry>> {
    const n = this.node(nodeId);
    if (!n.children) throw new FuseError('ENOTDIR');
    const self = this;
    const start = Number(offset);
    const names = ['.', '..', ...n.children.keys()];
    return (function* () {
      for (let i = start; i < names.length; i++) {
        const name = names[i]!;
        const ino = name === '.' ? n.ino : name === '..' ? n.parent : n.children!.get(name)!;
        const child = self.node(ino);
        yield { name, ino, mode: child.mode, offset: i + 1, entry: plus && i >= 2 ? self.entry(child) : undefined };
      }
    })();
  }

  async statfs(): Promise<StatFs> {
    return { blocks: 1000, bfree: 0, bavail: 0, files: this.nodes.size, ffree: 0, bsize: 512, namelen: 255 };
  }

  async getxattr(nodeId: bigint, name: Buffer): Promise<Buffer> {
    const v = this.node(nodeId).xattrs?.get(name.toString());
    if (!v) throw new FuseError('ENODATA');
    return v;
  }

  async listxattr(nodeId: bigint): Promise<string[]> {
    return [...(this.node(nodeId).xattrs?.keys() ?? [])];
  }

  saveState(): unknown {
    return { kind: 'memfs-test', nodes: this.nodes.size };
  }
}

export const FILE_SIZES: Record<string, number> = {
  empty: 0,
  one: 1,
  'page-1': 4095,
  'mib+1': (1 << 20) + 1,
  '8mib': 8 << 20,
};

/** The tree every test serves: files of several sizes, a symlink, xattrs, a 3000-entry directory, slow files. */
export function buildTestFs(opts: MemFsOptions & { slowDelayMs?: number } = {}): MemFs {
  const fs = new MemFs(opts);
  const root = 1n;
  for (const [name, size] of Object.entries(FILE_SIZES)) fs.file(root, name, content(name, size));
  fs.symlink(root, 'link', 'mib+1');
  fs.file(root, 'tagged', Buffer.from('has xattrs\n'), {
    xattrs: new Map([['user.color', Buffer.from('blue')], ['user.empty', Buffer.alloc(0)]]),
  });
  const big = fs.mkdir(root, 'big');
  for (let i = 0; i < 3000; i++) fs.file(big, `entry-${String(i).padStart(4, '0')}-with-a-longer-name`, Buffer.from(`${i}\n`));
  const par = fs.mkdir(root, 'parallel');
  for (let i = 0; i < 8; i++) fs.file(par, `p${i}`, content(`p${i}`, 4096), { readBarrier: 8 });
  fs.file(root, 'slow', content('slow', 4096), { readDelayMs: opts.slowDelayMs ?? 5000, directIo: true });
  const sub = fs.mkdir(root, 'sub');
  fs.file(sub, 'nested', Buffer.from('nested file\n'));
  return fs;
}
