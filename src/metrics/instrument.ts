// A FileSystem decorator that counts every operation of one instance in its FsMetrics (spec nydusd-runtime.md 8.1-8.4):
// the operations RAFS records (Getattr, Readlink, Read, Getxattr, Listxattr, Lookup, Readdir, Readdirplus, Access),
// with the instance's own inode numbers. Methods the inner filesystem lacks stay absent, so the session answers them
// exactly as before (ENOSYS, zero-message opens).
import type { FileSystem, LeasedData, RequestContext } from '../fuse/filesystem.js';
import type { DirentWriter } from '../fuse/protocol.js';
import type { FsMetrics } from './fs-metrics.js';
import { Fop } from './tables.js';

/** Bytes a READ answer carries: what the dispatcher sends, capped at the requested size. */
export function replyBytes(data: Buffer | Buffer[] | LeasedData, size: number): number {
  const list = Buffer.isBuffer(data) ? [data] : Array.isArray(data) ? data : data.data;
  let n = 0;
  for (const b of list) n += b.length;
  return Math.min(n, size);
}

/**
 * Wraps `inner`; `inoOf` turns a node id of this instance into its inode number (RAFS answers the root as node 1).
 * Per-file counters are made for a looked-up child and for every inode an operation names.
 */
export function instrumentFs(inner: FileSystem, m: FsMetrics, inoOf: (node: bigint) => number): FileSystem {
  const ino = (node: bigint): number => {
    try {
      return inoOf(node);
    } catch {
      return 0;
    }
  };
  async function counted<T>(fop: number, node: bigint, run: () => Promise<T>): Promise<T> {
    try {
      const r = await run();
      m.op(fop, ino(node), true);
      return r;
    } catch (err) {
      m.op(fop, ino(node), false);
      throw err;
    }
  }
  const fs: FileSystem = {
    lookup: async (parent, name, ctx) => {
      const e = await counted(Fop.Lookup, parent, () => inner.lookup(parent, name, ctx));
      // a negative entry (node 0) is a successful lookup of nothing (8.2)
      if (e.nodeId !== 0n) m.file(ino(e.nodeId));
      return e;
    },
    getattr: (node, ctx) => counted(Fop.Getattr, node, () => inner.getattr(node, ctx)),
    read: async (node, fh, offset, size, ctx: RequestContext) => {
      const t0 = performance.now();
      try {
        const data = await inner.read(node, fh, offset, size, ctx);
        m.read(ino(node), true, replyBytes(data, size), (performance.now() - t0) * 1000);
        return data;
      } catch (err) {
        m.read(ino(node), false, 0, (performance.now() - t0) * 1000);
        throw err;
      }
    },
    statfs: (node, ctx) => inner.statfs(node, ctx),
  };
  if (inner.init) fs.init = (conn) => inner.init!(conn);
  if (inner.destroy) fs.destroy = () => inner.destroy!();
  if (inner.forget) fs.forget = (node, n) => inner.forget!(node, n);
  if (inner.readlink) fs.readlink = (node, ctx) => counted(Fop.Readlink, node, () => inner.readlink!(node, ctx));
  if (inner.open) fs.open = (node, flags, ctx) => inner.open!(node, flags, ctx);
  if (inner.release) fs.release = (node, fh) => inner.release!(node, fh);
  if (inner.flush) fs.flush = (node, fh, ctx) => inner.flush!(node, fh, ctx);
  if (inner.lseek) fs.lseek = (node, fh, offset, whence, ctx) => inner.lseek!(node, fh, offset, whence, ctx);
  if (inner.opendir) fs.opendir = (node, flags, ctx) => inner.opendir!(node, flags, ctx);
  if (inner.readdir) {
    fs.readdir = (node, fh, offset, plus, ctx) =>
      counted(plus ? Fop.Readdirplus : Fop.Readdir, node, () => inner.readdir!(node, fh, offset, plus, ctx));
  }
  if (inner.readdirInto) {
    fs.readdirInto = (node, fh, offset, out: DirentWriter, ctx) =>
      counted(out.plus ? Fop.Readdirplus : Fop.Readdir, node, () => inner.readdirInto!(node, fh, offset, out, ctx));
  }
  if (inner.releasedir) fs.releasedir = (node, fh) => inner.releasedir!(node, fh);
  if (inner.getxattr) fs.getxattr = (node, name, ctx) => counted(Fop.Getxattr, node, () => inner.getxattr!(node, name, ctx));
  if (inner.listxattr) fs.listxattr = (node, ctx) => counted(Fop.Listxattr, node, () => inner.listxattr!(node, ctx));
  if (inner.access) fs.access = (node, mask, ctx) => counted(Fop.Access, node, () => inner.access!(node, mask, ctx));
  if (inner.saveState) fs.saveState = () => inner.saveState!();
  return fs;
}
