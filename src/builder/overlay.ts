// Stacking one layer's tree onto another (rafs-format.md 5.3), plus the small tree edits the sources share.
// RAFS has no whiteout object: whiteouts stay ordinary entries until a layer is applied here.
import type { TreeInode, TreeNode } from './tree.js';
import { isDir } from './tree.js';
import { S_IFCHR, S_IFDIR, S_IFMT } from '../rafs/common.js';

export type WhiteoutSpec = 'oci' | 'overlayfs' | 'none';


const WH_PREFIX = Buffer.from('.wh.');
const WH_OPAQUE = Buffer.from('.wh..wh..opq');
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';

export function parseWhiteoutSpec(s: string): WhiteoutSpec {
  if (s === 'oci' || s === 'overlayfs' || s === 'none') return s;
  throw new Error(`invalid whiteout spec '${s}' (expected oci, overlayfs or none)`);
}

/** A directory inode with the attributes rafs-format.md 5.2 gives synthesised parents. */
export function syntheticDirInode(): TreeInode {
  return { mode: S_IFDIR | 0o755, uid: 0, gid: 0, mtime: 0, mtimeNsec: 0, rdev: 0, size: 0, xattrs: new Map() };
}

export function newDir(name: Buffer, inode: TreeInode = syntheticDirInode()): TreeNode {
  return { name, inode, children: [] };
}

/** Binary search over sorted children; returns the index or -(insertion point) - 1. */
export function findChild(dir: TreeNode, name: Buffer): number {
  const kids = dir.children ?? [];
  let lo = 0;
  let hi = kids.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const c = Buffer.compare(kids[mid].name, name);
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -lo - 1;
}

export function getChild(dir: TreeNode, name: Buffer): TreeNode | undefined {
  const i = findChild(dir, name);
  return i >= 0 ? dir.children![i] : undefined;
}

/** Inserts or replaces a child keeping the children sorted; returns the node now in the tree. */
export function putChild(dir: TreeNode, node: TreeNode): TreeNode {
  if (!dir.children) dir.children = [];
  const i = findChild(dir, node.name);
  if (i >= 0) dir.children[i] = node;
  else dir.children.splice(-i - 1, 0, node);
  return node;
}

export function removeChild(dir: TreeNode, name: Buffer): boolean {
  const i = findChild(dir, name);
  if (i < 0) return false;
  dir.children!.splice(i, 1);
  return true;
}

export function isOciWhiteoutName(name: Buffer): boolean {
  return name.length >= WH_PREFIX.length && name.subarray(0, WH_PREFIX.length).equals(WH_PREFIX);
}

export function isOciOpaqueName(name: Buffer): boolean {
  return name.equals(WH_OPAQUE);
}

export function isOverlayWhiteout(n: TreeNode): boolean {
  return (n.inode.mode & S_IFMT) === S_IFCHR && n.inode.rdev === 0;
}

export function isOverlayOpaqueDir(n: TreeNode): boolean {
  const v = n.inode.xattrs.get(OVERLAY_OPAQUE_XATTR);
  return isDir(n) && v !== undefined && v.toString() === 'y';
}

/**
 * Applies `upper` onto `lower` in place (lower becomes the merged tree) and returns it. Whiteouts of the
 * given spec in the upper tree delete lower entries and are not themselves kept; spec 'none' means the
 * upper entries are all ordinary files.
 */
export function applyLayer(lower: TreeNode, upper: TreeNode, spec: WhiteoutSpec): TreeNode {
  if (!isDir(lower) || !isDir(upper)) throw new Error('overlay: both layer roots must be directories');
  mergeDir(lower, upper, spec);
  return lower;
}

function mergeDir(lower: TreeNode, upper: TreeNode, spec: WhiteoutSpec): void {
  // Iterative over (lower, upper) directory pairs so deep trees cannot overflow the stack.
  const work: Array<[TreeNode, TreeNode]> = [[lower, upper]];
  while (work.length > 0) {
    const [lo, up] = work.pop()!;
    lo.inode = up.inode;
    if (!lo.children) lo.children = [];
    const rest: TreeNode[] = [];
    // First pass: deletions, so that an entry re-added in the same layer survives its own whiteout.
    for (const child of up.children ?? []) {
      if (spec === 'oci' && isOciOpaqueName(child.name)) {
        lo.children = [];
      } else if (spec === 'oci' && isOciWhiteoutName(child.name)) {
        removeChild(lo, child.name.subarray(WH_PREFIX.length));
      } else if (spec === 'overlayfs' && isOverlayWhiteout(child)) {
        removeChild(lo, child.name);
      } else {
        rest.push(child);
      }
    }
    for (const child of rest) {
      if (isDir(child)) {
        let target = getChild(lo, child.name);
        if (spec === 'overlayfs' && isOverlayOpaqueDir(child)) {
          const xattrs = new Map(child.inode.xattrs);
          xattrs.delete(OVERLAY_OPAQUE_XATTR);
          child.inode = { ...child.inode, xattrs };
          if (target && isDir(target)) target.children = [];
        }
        if (!target || !isDir(target)) target = putChild(lo, newDir(child.name, child.inode));
        work.push([target, child]);
      } else {
        putChild(lo, child);
      }
    }
  }
}

/** Drops whiteouts from a single-layer directory build (rafs-format.md 5.3: oci drops `.wh.*`, overlayfs 0/0 char devices). */
export function dropWhiteouts(root: TreeNode, spec: WhiteoutSpec): void {
  if (spec === 'none') return;
  const stack = [root];
  while (stack.length > 0) {
    const d = stack.pop()!;
    if (!d.children) continue;
    d.children = d.children.filter((c) =>
      spec === 'oci' ? !isOciWhiteoutName(c.name) : !isOverlayWhiteout(c),
    );
    for (const c of d.children) if (isDir(c)) stack.push(c);
  }
}
