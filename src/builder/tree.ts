// The builder's tree: what directory scans, tar parsers and bootstrap loaders produce, what whiteout
// application and merge rearrange, and what the blob dumper and the bootstrap writers consume.
import type { ChunkInfo } from '../image-model.js';

/** Where a regular file's bytes come from when they still have to be written into a blob. */
export type ContentSource =
  /** a byte range of a local file (a source tree's file, or a decompressed tar) */
  | { kind: 'file'; path: string; offset: number; length: number }
  /** bytes held in memory (small files, tests) */
  | { kind: 'buffer'; data: Buffer };

/**
 * The attributes and content of one inode. Hardlinks are several TreeNodes sharing one TreeInode
 * object, so identity (===) is what makes two entries the same file.
 */
export interface TreeInode {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  mtimeNsec: number;
  rdev: number;
  /** content length for regular files, target length for symlinks; writers compute directory sizes */
  size: number;
  /** full names with prefix ('user.foo'), in the order they should be written */
  xattrs: Map<string, Buffer>;
  /** symlink target */
  symlink?: Buffer;
  /** regular file: bytes not yet in a blob */
  source?: ContentSource;
  /**
   * regular file: chunks already in a blob (after dumping, or loaded from a parent bootstrap).
   * blobIndex refers to the blob list of the build context.
   */
  chunks?: ChunkInfo[];
  /** v5 inode digest, filled by the v5 writer */
  digest?: Buffer;
}

export interface TreeNode {
  /** raw name bytes; the root's name is '/' */
  name: Buffer;
  inode: TreeInode;
  /** directories only: children sorted by raw name bytes (Buffer.compare) */
  children?: TreeNode[];
}

export function isDir(n: TreeNode): boolean {
  return (n.inode.mode & 0o170000) === 0o040000;
}

export function isReg(n: TreeNode): boolean {
  return (n.inode.mode & 0o170000) === 0o100000;
}

/** Sorts children by raw bytes, the order both formats require. */
export function sortChildren(dir: TreeNode): void {
  dir.children?.sort((a, b) => Buffer.compare(a.name, b.name));
}
