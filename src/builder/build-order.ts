// The build order of rafs-format.md 2.15 step 1, shared by the blob dumper (chunk order) and both bootstrap
// writers (inode numbers, v5 child ranges): the root is 1, then each directory numbers all of its
// children consecutively before recursing into its child directories.
import { isDir, isReg, type TreeInode, type TreeNode } from './tree.js';

export interface NodeEntry {
  node: TreeNode;
  /** 1-based position in build order (the v5 inode-table index) */
  index: number;
  /** the on-disk inode number: index of the first link for hardlinked regular files */
  ino: number;
  parent?: NodeEntry;
  /** for a hardlink after the first: the first entry of the same inode */
  firstLink?: NodeEntry;
  nlink: number;
  /** directories: index of the first child (the next free index when empty, as nydus-image does) */
  childIndex: number;
}

export interface BuildOrder {
  /** every tree entry in build order (entries[i].index === i + 1) */
  entries: NodeEntry[];
  byNode: Map<TreeNode, NodeEntry>;
  /** number of distinct inodes (hardlinks counted once) */
  inodeCount: number;
}

function checkTree(root: TreeNode): void {
  if (!isDir(root)) throw new Error('the root of the tree must be a directory');
}

export function buildOrder(root: TreeNode): BuildOrder {
  checkTree(root);
  const entries: NodeEntry[] = [];
  const byNode = new Map<TreeNode, NodeEntry>();
  const firstOf = new Map<TreeInode, NodeEntry>();
  const links = new Map<TreeInode, NodeEntry[]>();

  const add = (node: TreeNode, parent: NodeEntry | undefined): NodeEntry => {
    if (byNode.has(node)) throw new Error(`tree node "${node.name.toString()}" appears twice in the tree`);
    const e: NodeEntry = { node, index: entries.length + 1, ino: entries.length + 1, parent, nlink: 1, childIndex: 0 };
    if (isReg(node)) {
      const first = firstOf.get(node.inode);
      if (first) {
        e.ino = first.ino;
        e.firstLink = first;
        const all = links.get(node.inode)!;
        all.push(e);
        for (const l of all) l.nlink = all.length;
      } else {
        firstOf.set(node.inode, e);
        links.set(node.inode, [e]);
      }
    }
    entries.push(e);
    byNode.set(node, e);
    return e;
  };

  const walk = (dirEntry: NodeEntry): void => {
    const children = dirEntry.node.children ?? [];
    dirEntry.childIndex = entries.length + 1;
    const dirs: NodeEntry[] = [];
    let prev: Buffer | undefined;
    for (const c of children) {
      if (prev && Buffer.compare(prev, c.name) >= 0) {
        throw new Error(`children of "${dirEntry.node.name.toString()}" are not sorted or not unique at "${c.name.toString()}"`);
      }
      validateName(c.name);
      prev = c.name;
      const e = add(c, dirEntry);
      if (isDir(c)) dirs.push(e);
    }
    dirEntry.nlink = 2 + dirs.length;
    for (const d of dirs) walk(d);
  };

  const rootEntry = add(root, undefined);
  walk(rootEntry);
  return { entries, byNode, inodeCount: firstOf.size + entries.filter((e) => !isReg(e.node)).length };
}

function validateName(name: Buffer): void {
  if (name.length === 0) throw new Error('a tree entry has an empty name');
  if (name.length > 255) throw new Error(`name "${name.toString()}" is longer than 255 bytes`);
  if (name.includes(0x2f) || name.includes(0)) throw new Error(`name "${name.toString()}" contains '/' or NUL`);
  if ((name.length === 1 && name[0] === 0x2e) || (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e)) {
    throw new Error(`"." and ".." cannot be tree entries`);
  }
}

/**
 * Regular-file inodes in chunk dump order: files below the prefetch nodes first (pattern order, each
 * in build order), then every other file in build order. Hardlinked content is dumped once.
 */
export function dumpOrder(order: BuildOrder, prefetch: TreeNode[] = []): TreeInode[] {
  const out: TreeInode[] = [];
  const seen = new Set<TreeInode>();
  const take = (n: TreeNode): void => {
    if (isReg(n) && !seen.has(n.inode)) {
      seen.add(n.inode);
      out.push(n.inode);
    }
  };
  for (const p of prefetch) {
    const pe = order.byNode.get(p);
    if (!pe) throw new Error(`prefetch node "${p.name.toString()}" is not in the tree`);
    if (!isDir(p)) {
      take(p);
      continue;
    }
    // Entries below a directory, in build order, are those whose ancestor chain reaches it.
    for (const e of order.entries) {
      for (let a: NodeEntry | undefined = e; a; a = a.parent) {
        if (a === pe) {
          take(e.node);
          break;
        }
      }
    }
  }
  for (const e of order.entries) take(e.node);
  return out;
}
