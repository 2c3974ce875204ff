// Many filesystems under one FUSE session, as nydusd's shared mode serves them (spec nydusd-runtime.md 9.1, 3.5.6):
// a pseudo directory tree whose leaves are the attached instances. Node ids tell them apart: the pseudo tree's own
// are small numbers (the root is FUSE's 1), and an instance in slot s (1..255) has its node n seen by the kernel as
// s << 56 | n. An instance attached at `/` serves the FUSE root itself: the dedicated daemon is this VFS with one
// instance there.
//
// An instance that is detached (DELETE /api/v1/mount) or replaced (PUT) keeps its slot while the kernel still holds
// node ids of it (a process with an open file or a cwd inside, an overlay on top): requests for them are served by
// that instance until the kernel forgets them all, and only then is the slot freed and the instance released. So an
// open file keeps reading what it opened, and a slot is never reused while an old node id could reach it, which would
// serve another image's inode under the old name. Lookups are counted per slot to know when that is (FORGET
// balances every entry reply with a node id, "." and ".." of READDIRPLUS excepted).
import { FuseError, type Attr, type Entry, type FileSystem, type LeasedData, type RequestContext, type StatFs } from '../fuse/filesystem.js';
import { decodeDirents, DirentWriter, INODE_MASK, SLOT_SHIFT, withSlot } from '../fuse/protocol.js';

const S_IFDIR = 0o040000;
const FUSE_ROOT = 1n;
const MAX_SLOT = 255;
/** The pseudo tree never changes by itself: only attach and detach change it, and they notify the kernel. */
const TIMEOUT = 2 ** 32;
const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');
/** How deep an instance path may go, and how long one name may be (NAME_MAX). */
const MAX_DEPTH = 32;
const NAME_MAX = 255;

/** How the VFS tells the kernel to forget what it cached of a changed part of the tree (FUSE notifications). */
export interface Notifier {
  /** Drops the dentry `name` under `parent`. */
  invalEntry(parent: bigint, name: Buffer): Promise<void>;
  /** Drops the attributes and cached data (a directory's cached listing) of `node`. */
  invalInode(node: bigint): Promise<void>;
}

/** A path inside the FUSE mount that an instance is attached at or asked for; its problems are one-line messages. */
export class InstancePathError extends Error {}

/**
 * The components of an instance path: absolute, normalised (no `.`, `..` or empty components, so no way out of
 * the pseudo root and one spelling per place), no NUL, each name at most 255 bytes. `/` has none.
 */
export function parseInstancePath(p: string): string[] {
  if (typeof p !== 'string' || p.length === 0) throw new InstancePathError('the mountpoint is empty');
  if (!p.startsWith('/')) throw new InstancePathError(`mountpoint ${JSON.stringify(p)} is not an absolute path inside the FUSE mount`);
  if (p.includes('\0')) throw new InstancePathError(`mountpoint ${JSON.stringify(p)} contains a NUL byte`);
  if (p === '/') return [];
  const parts = p.slice(1).split('/');
  for (const c of parts) {
    if (c === '' || c === '.' || c === '..') {
      throw new InstancePathError(`mountpoint ${JSON.stringify(p)} is not a normalised path (empty, "." or ".." components are refused)`);
    }
    if (Buffer.byteLength(c) > NAME_MAX) throw new InstancePathError(`mountpoint ${JSON.stringify(p)} has a component longer than ${NAME_MAX} bytes`);
  }
  if (parts.length > MAX_DEPTH) throw new InstancePathError(`mountpoint ${JSON.stringify(p)} is deeper than ${MAX_DEPTH} levels`);
  return parts;
}

/** A filesystem in a slot of the VFS. `T` is what the owner keeps with it (the daemon's mounted instance). */
export interface Attached<T> {
  readonly slot: number;
  readonly path: string;
  readonly fs: FileSystem;
  readonly owner: T;
  /** node ids of this slot the kernel holds (entries replied minus FORGETs) */
  lookups: number;
  /** detached or replaced: released once `lookups` reaches 0 */
  retired: boolean;
}

interface PseudoNode<T> {
  id: bigint;
  name: Buffer;
  parent: PseudoNode<T> | undefined;
  children: Map<string, PseudoNode<T>>;
  mount: Attached<T> | undefined;
}

type Target<T> = { kind: 'pseudo'; node: PseudoNode<T> } | { kind: 'instance'; att: Attached<T>; inner: bigint };

export interface VfsOptions<T> {
  /** An instance is gone for good: the kernel holds none of its node ids any more (close its storage). */
  released(owner: T): void;
  /** attributes of pseudo directories */
  uid: number;
  gid: number;
  startTime: number;
}

export class Vfs<T> implements FileSystem {
  private readonly root: PseudoNode<T>;
  private readonly pseudo = new Map<bigint, PseudoNode<T>>();
  private nextPseudo = 2n;
  /** slot -> attached instance, live or retired; index 0 unused */
  private readonly slots: (Attached<T> | undefined)[] = new Array(MAX_SLOT + 1).fill(undefined);
  /** set once the session exists; before that the kernel has cached nothing */
  notifier: Notifier | undefined;
  /** notifications written but not yet taken by the kernel */
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly opts: VfsOptions<T>) {
    this.root = { id: FUSE_ROOT, name: Buffer.from('/'), parent: undefined, children: new Map(), mount: undefined };
    this.pseudo.set(FUSE_ROOT, this.root);
  }

  /** The attached instances, live ones only, in slot order. */
  attached(): Attached<T>[] {
    return this.slots.filter((a): a is Attached<T> => a !== undefined && !a.retired);
  }

  /** The live instance at `path`, if any. */
  find(path: string): Attached<T> | undefined {
    const node = this.walk(parseInstancePath(path));
    return node?.mount;
  }

  /** Slots still held by the kernel after their instance was detached or replaced. */
  retiredCount(): number {
    return this.slots.filter((a) => a?.retired).length;
  }

  /**
   * Attaches `fs` at `path`, creating the pseudo directories above it. Refused: an instance already there, a path
   * inside another instance (no instance in another), a path with instances below it, no free slot.
   */
  attach(path: string, fs: FileSystem, owner: T): Attached<T> {
    const node = this.placeFor(path);
    const att = this.occupy(path, fs, owner);
    // link the new pseudo directories only now that nothing can fail
    this.link(node);
    node.mount = att;
    if (node.parent) this.invalidateListing(node.parent);
    else void this.notify((n) => n.invalInode(FUSE_ROOT));
    return att;
  }

  /** Throws unless an instance could be attached at `path` now (a caller checks before building one). */
  checkAttach(path: string): void {
    this.placeFor(path);
    if (this.freeSlot() < 0) throw noFreeSlot();
  }

  /** The pseudo node an instance at `path` would take, not linked into the tree yet when it is new. */
  private placeFor(path: string): PseudoNode<T> {
    const parts = parseInstancePath(path);
    let node = this.root;
    for (const c of parts) {
      if (node.mount) throw new InstancePathError(`cannot attach at ${path}: it is inside the instance at ${node.mount.path}`);
      node = node.children.get(c) ?? { id: 0n, name: Buffer.from(c), parent: node, children: new Map(), mount: undefined };
    }
    if (node.mount) throw new InstancePathError(`object or filesystem already exists at ${path}`);
    if (node.children.size > 0) throw new InstancePathError(`cannot attach at ${path}: instances are attached below it`);
    return node;
  }

  /** Replaces the instance at `path` with `fs`; the old one is retired (served to whoever still holds it). */
  replace(path: string, fs: FileSystem, owner: T): { old: Attached<T>; now: Attached<T> } {
    const node = this.walk(parseInstancePath(path));
    const old = node?.mount;
    if (!node || !old) throw new InstancePathError(`object or filesystem doesn't exist at ${path}`);
    const now = this.occupy(path, fs, owner);
    node.mount = now;
    this.retire(old);
    this.forgetDentries(node, old);
    return { old, now };
  }

  /** Detaches the instance at `path`; its pseudo directory goes, and so do pseudo directories left empty above it. */
  detach(path: string): Attached<T> {
    const node = this.walk(parseInstancePath(path));
    const att = node?.mount;
    if (!node || !att) throw new InstancePathError(`object or filesystem doesn't exist at ${path}`);
    node.mount = undefined;
    this.retire(att);
    this.forgetDentries(node, att);
    // the leaf and any pseudo directory it leaves empty disappear (nydus-snapshotter-contract.md 8 item 14.4: ENOENT)
    let n: PseudoNode<T> = node;
    while (n.parent && n.children.size === 0 && !n.mount) {
      const parent: PseudoNode<T> = n.parent;
      parent.children.delete(n.name.toString('latin1'));
      this.pseudo.delete(n.id);
      void this.notify((x) => x.invalEntry(parent.id, n.name));
      this.invalidateListing(parent);
      n = parent;
    }
    return att;
  }

  private occupy(path: string, fs: FileSystem, owner: T): Attached<T> {
    const slot = this.freeSlot();
    if (slot < 0) throw noFreeSlot();
    const att: Attached<T> = { slot, path, fs, owner, lookups: 0, retired: false };
    this.slots[slot] = att;
    return att;
  }

  private freeSlot(): number {
    return this.slots.findIndex((a, i) => i > 0 && a === undefined);
  }

  private link(node: PseudoNode<T>): void {
    for (let n: PseudoNode<T> | undefined = node; n && n.id === 0n; n = n.parent) {
      n.id = this.nextPseudo++;
      this.pseudo.set(n.id, n);
      n.parent!.children.set(n.name.toString('latin1'), n);
      if (n.parent!.id !== 0n) this.invalidateListing(n.parent!);
    }
  }

  private retire(att: Attached<T>): void {
    att.retired = true;
    if (att.lookups <= 0) this.free(att);
  }

  private free(att: Attached<T>): void {
    if (this.slots[att.slot] !== att) return;
    this.slots[att.slot] = undefined;
    this.opts.released(att.owner);
  }

  /** The kernel's dentries into an instance that is going: the entry in its pseudo parent, or the root's children. */
  private forgetDentries(node: PseudoNode<T>, att: Attached<T>): void {
    if (node.parent) {
      const parent = node.parent;
      void this.notify((n) => n.invalEntry(parent.id, node.name));
      return;
    }
    // the instance served the FUSE root: its children's dentries and the root's cached attributes and listing
    void this.notify(async (n) => {
      for (const name of await this.childNames(att)) await n.invalEntry(FUSE_ROOT, name).catch(() => undefined);
      await n.invalInode(FUSE_ROOT);
    });
  }

  private async childNames(att: Attached<T>): Promise<Buffer[]> {
    const names: Buffer[] = [];
    const ctx = internalContext();
    if (att.fs.readdirInto) {
      let offset = 0n;
      for (;;) {
        const w = new DirentWriter(64 * 1024, false);
        await att.fs.readdirInto(FUSE_ROOT, 0n, offset, w, ctx);
        const entries = decodeDirents(w.finish(), false);
        if (entries.length === 0) break;
        for (const e of entries) if (!e.nameBytes.equals(DOT) && !e.nameBytes.equals(DOTDOT)) names.push(e.nameBytes);
        offset = entries[entries.length - 1]!.off;
      }
    } else if (att.fs.readdir) {
      for (const e of await att.fs.readdir(FUSE_ROOT, 0n, 0n, false, ctx)) {
        const name = typeof e.name === 'string' ? Buffer.from(e.name) : e.name;
        if (!name.equals(DOT) && !name.equals(DOTDOT)) names.push(name);
      }
    }
    return names;
  }

  private invalidateListing(dir: PseudoNode<T>): void {
    void this.notify((n) => n.invalInode(dir.id));
  }

  /** Notifications are best effort: ENOENT (nothing cached) and a closed session are normal. */
  private notify(fn: (n: Notifier) => Promise<void>): Promise<void> {
    const n = this.notifier;
    if (!n) return Promise.resolve();
    const p: Promise<void> = fn(n).catch(() => undefined).finally(() => this.pending.delete(p));
    this.pending.add(p);
    return p;
  }

  /**
   * Resolves once the kernel has taken every notification issued so far, so an API reply that follows an attach or
   * detach is not seen before the tree it changed (a stat right after DELETE must fail: snapshotter-contract.md 8
   * item 14). Bounded by `limitMs`: a notification the kernel holds longer must not hold the reply with it.
   */
  async notified(limitMs = 1000): Promise<void> {
    if (this.pending.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((resolve) => (timer = setTimeout(resolve, limitMs)));
    await Promise.race([Promise.all([...this.pending]), limit]);
    clearTimeout(timer);
  }

  private walk(parts: string[]): PseudoNode<T> | undefined {
    let node: PseudoNode<T> | undefined = this.root;
    for (const c of parts) {
      node = node.children.get(c);
      if (!node) return undefined;
    }
    return node;
  }

  private target(node: bigint): Target<T> {
    const slot = Number(node >> SLOT_SHIFT);
    if (slot === 0) {
      if (node === FUSE_ROOT && this.root.mount) return { kind: 'instance', att: this.root.mount, inner: FUSE_ROOT };
      const p = this.pseudo.get(node);
      if (!p) throw new FuseError('ENOENT', `node ${node} is not in the pseudo tree (detached)`);
      // a pseudo directory that became an instance's mountpoint serves that instance's root
      if (p.mount) return { kind: 'instance', att: p.mount, inner: FUSE_ROOT };
      return { kind: 'pseudo', node: p };
    }
    const att = this.slots[slot];
    if (!att) throw new FuseError('ESTALE', `node ${node}: slot ${slot} holds no instance`);
    return { kind: 'instance', att, inner: node & INODE_MASK };
  }

  /** The kernel's node id for node `inner` of `att` (the instance at `/` keeps FUSE's root id for its root). */
  private outer(att: Attached<T>, inner: bigint): bigint {
    if (inner === 0n) return 0n;
    if (inner === FUSE_ROOT && att === this.root.mount) return FUSE_ROOT;
    return withSlot(att.slot, inner);
  }

  private pseudoAttr(p: PseudoNode<T>): Attr {
    const t = this.opts.startTime;
    return { ino: p.id, size: 4096, blocks: 8, mode: S_IFDIR | 0o755, nlink: 2 + p.children.size, uid: this.opts.uid, gid: this.opts.gid, atime: t, mtime: t, ctime: t, blksize: 4096 };
  }

  /** The entry for a pseudo directory's child: another pseudo directory, or the root of the instance there. */
  private async childEntry(child: PseudoNode<T>, ctx: RequestContext): Promise<Entry> {
    const att = child.mount;
    if (!att) return { nodeId: child.id, entryTimeout: TIMEOUT, attrTimeout: TIMEOUT, attr: this.pseudoAttr(child) };
    const { attr } = await att.fs.getattr(FUSE_ROOT, ctx);
    att.lookups++;
    return { nodeId: withSlot(att.slot, FUSE_ROOT), entryTimeout: TIMEOUT, attrTimeout: TIMEOUT, attr };
  }

  // ---- FileSystem ----------------------------------------------------------------------------------------------

  async lookup(parent: bigint, name: Buffer, ctx: RequestContext): Promise<Entry> {
    const t = this.target(parent);
    if (t.kind === 'pseudo') {
      const p = t.node;
      if (name.equals(DOT)) return { nodeId: p.id, entryTimeout: TIMEOUT, attrTimeout: TIMEOUT, attr: this.pseudoAttr(p) };
      if (name.equals(DOTDOT)) {
        const up = p.parent ?? p;
        return { nodeId: up.id, entryTimeout: TIMEOUT, attrTimeout: TIMEOUT, attr: this.pseudoAttr(up) };
      }
      const child = p.children.get(name.toString('latin1'));
      // not cached by the kernel (no negative entry): an instance may be attached under this name at any time
      if (!child) throw new FuseError('ENOENT');
      return this.childEntry(child, ctx);
    }
    const e = await t.att.fs.lookup(t.inner, name, ctx);
    if (e.nodeId === 0n) return e;
    const nodeId = this.outer(t.att, e.nodeId);
    // the FUSE root is never forgotten: only other nodes count
    if (nodeId !== FUSE_ROOT) t.att.lookups++;
    return { ...e, nodeId };
  }

  forget(nodeId: bigint, nlookup: bigint): void {
    const slot = Number(nodeId >> SLOT_SHIFT);
    const att = slot === 0 ? undefined : this.slots[slot];
    if (!att) return;
    att.fs.forget?.(nodeId & INODE_MASK, nlookup);
    att.lookups -= Number(nlookup);
    if (att.retired && att.lookups <= 0) this.free(att);
  }

  async getattr(nodeId: bigint, ctx: RequestContext): Promise<{ attr: Attr; timeout: number }> {
    const t = this.target(nodeId);
    if (t.kind === 'pseudo') return { attr: this.pseudoAttr(t.node), timeout: TIMEOUT };
    return t.att.fs.getattr(t.inner, ctx);
  }

  async readlink(nodeId: bigint, ctx: RequestContext): Promise<Buffer | string> {
    const t = this.target(nodeId);
    if (t.kind === 'pseudo' || !t.att.fs.readlink) throw new FuseError('EINVAL');
    return t.att.fs.readlink(t.inner, ctx);
  }

  async read(nodeId: bigint, fh: bigint, offset: bigint, size: number, ctx: RequestContext): Promise<Buffer | Buffer[] | LeasedData> {
    const t = this.target(nodeId);
    if (t.kind === 'pseudo') throw new FuseError('EISDIR');
    return t.att.fs.read(t.inner, fh, offset, size, ctx);
  }

  async readdirInto(nodeId: bigint, fh: bigint, offset: bigint, out: DirentWriter, ctx: RequestContext): Promise<void> {
    const t = this.target(nodeId);
    if (t.kind === 'pseudo') return this.listPseudo(t.node, offset, out, ctx);
    const { att, inner } = t;
    const before = out.linked;
    out.nodeSlot = att.slot;
    try {
      if (att.fs.readdirInto) {
        await att.fs.readdirInto(inner, fh, offset, out, ctx);
      } else if (att.fs.readdir) {
        for (const e of await att.fs.readdir(inner, fh, offset, out.plus, ctx)) {
          const name = typeof e.name === 'string' ? Buffer.from(e.name) : e.name;
          const type = (e.mode & 0o170000) >>> 12;
          if (out.plus) {
            if (!out.fits(name.length)) break;
            const dots = name.equals(DOT) || name.equals(DOTDOT);
            const entry = e.entry ?? (dots ? undefined : await att.fs.lookup(inner, name, ctx));
            if (!out.add(name, e.ino, e.offset, type, entry)) break;
          } else if (!out.add(name, e.ino, e.offset, type)) {
            break;
          }
        }
      } else {
        throw new FuseError('ENOSYS');
      }
    } finally {
      att.lookups += out.linked - before;
      out.nodeSlot = 0;
    }
  }

  /** `.`, `..`, then the children in name order; the cookie of child k is k + 3. */
  private async listPseudo(p: PseudoNode<T>, offset: bigint, out: DirentWriter, ctx: RequestContext): Promise<void> {
    const from = Number(offset > 1_000_000n ? 1_000_000n : offset);
    const dirType = S_IFDIR >>> 12;
    if (from < 1 && !out.add(DOT, p.id, 1, dirType)) return;
    if (from < 2 && !out.add(DOTDOT, (p.parent ?? p).id, 2, dirType)) return;
    const names = [...p.children.keys()].sort();
    for (let k = Math.max(0, from - 2); k < names.length; k++) {
      const child = p.children.get(names[k]!)!;
      const name = child.name;
      if (!out.plus) {
        if (!out.add(name, child.id, k + 3, dirType)) return;
        continue;
      }
      if (!out.fits(name.length)) return;
      const entry = await this.childEntry(child, ctx);
      // written with the instance's slot already in the node id: no slot to add here
      if (!out.add(name, entry.attr.ino, k + 3, dirType, entry)) return;
    }
  }

  async statfs(nodeId: bigint, ctx: RequestContext): Promise<StatFs> {
    const t = this.target(nodeId);
    if (t.kind === 'pseudo') return { bsize: 512, frsize: 512, namelen: NAME_MAX, files: 0 };
    return t.att.fs.statfs(t.inner, ctx);
  }

  /**
   * An ENOSYS answer switches xattrs off for the whole connection, all instances included: only an instance that
   * serves the FUSE root alone may give it (RAFS does for images without xattrs, issue 8 item 2); in a pseudo tree
   * it becomes "no such attribute".
   */
  async getxattr(nodeId: bigint, name: Buffer, ctx: RequestContext): Promise<Buffer> {
    const t = this.target(nodeId);
    if (t.kind === 'pseudo') throw new FuseError('ENODATA');
    if (!t.att.fs.getxattr) throw new FuseError(this.alone(t.att) ? 'ENOSYS' : 'ENODATA');
    try {
      return await t.att.fs.getxattr(t.inner, name, ctx);
    } catch (err) {
      if (!this.alone(t.att) && (err as { code?: string }).code === 'ENOSYS') throw new FuseError('ENODATA');
      throw err;
    }
  }

  async listxattr(nodeId: bigint, ctx: RequestContext): Promise<(Buffer | string)[]> {
    const t = this.target(nodeId);
    if (t.kind === 'pseudo') return [];
    if (!t.att.fs.listxattr) {
      if (this.alone(t.att)) throw new FuseError('ENOSYS');
      return [];
    }
    try {
      return await t.att.fs.listxattr(t.inner, ctx);
    } catch (err) {
      if (!this.alone(t.att) && (err as { code?: string }).code === 'ENOSYS') return [];
      throw err;
    }
  }

  private alone(att: Attached<T>): boolean {
    return att === this.root.mount;
  }
}

function noFreeSlot(): InstancePathError {
  return new InstancePathError(`no free instance slot: ${MAX_SLOT} instances are attached or still held by the kernel (open files of detached ones)`);
}

/** For the VFS's own walks of an instance (no kernel request behind them). */
function internalContext(): RequestContext {
  return { uid: 0, gid: 0, pid: process.pid, unique: 0n, signal: new AbortController().signal };
}

