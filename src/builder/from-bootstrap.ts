// Bootstrap -> builder tree, for layered builds (`--parent-bootstrap`) and merge: the files keep their
// chunk lists (blob indexes of THIS bootstrap's blob table) instead of content sources.
import type { Bootstrap, Inode } from '../image-model.js';
import type { TreeInode, TreeNode } from './tree.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../rafs/common.js';

export function treeFromBootstrap(bs: Bootstrap): TreeNode {
  const rootIno = bs.superblock.rootIno;
  const rootInode = bs.getInode(rootIno);
  if ((rootInode.mode & S_IFMT) !== S_IFDIR) throw new Error('bootstrap root is not a directory');
  // Hardlinked regular files share one TreeInode, keyed by the on-disk inode number.
  const shared = new Map<number, TreeInode>();
  const root: TreeNode = { name: Buffer.from('/'), inode: convert(bs, rootInode), children: [] };
  const visited = new Set<number>([rootIno]);
  const stack: Array<[TreeNode, number]> = [[root, rootIno]];
  while (stack.length > 0) {
    const [node, ino] = stack.pop()!;
    const kids: TreeNode[] = [];
    for (const ent of bs.readdir(ino)) {
      const inode = bs.getInode(ent.ino);
      const fmt = inode.mode & S_IFMT;
      if (fmt === S_IFDIR) {
        // A directory reached twice would make the walk endless; a valid image never does that.
        if (visited.has(ent.ino)) throw new Error(`bootstrap directory inode ${ent.ino} is linked twice`);
        visited.add(ent.ino);
        const child: TreeNode = { name: Buffer.from(ent.name), inode: convert(bs, inode), children: [] };
        kids.push(child);
        stack.push([child, ent.ino]);
      } else if (fmt === S_IFREG && inode.nlink > 1) {
        let t = shared.get(inode.linkIno);
        if (!t) shared.set(inode.linkIno, (t = convert(bs, inode)));
        kids.push({ name: Buffer.from(ent.name), inode: t });
      } else {
        kids.push({ name: Buffer.from(ent.name), inode: convert(bs, inode) });
      }
    }
    kids.sort((a, b) => Buffer.compare(a.name, b.name));
    node.children = kids;
  }
  return root;
}

function convert(bs: Bootstrap, i: Inode): TreeInode {
  const t: TreeInode = {
    mode: i.mode,
    uid: i.uid,
    gid: i.gid,
    mtime: i.mtime,
    mtimeNsec: i.mtimeNsec,
    rdev: i.rdev,
    size: (i.mode & S_IFMT) === S_IFDIR ? 0 : i.size,
    xattrs: i.hasXattr ? new Map(bs.xattrs(i.ino)) : new Map(),
  };
  const fmt = i.mode & S_IFMT;
  if (fmt === S_IFLNK) t.symlink = Buffer.from(bs.readlink(i.ino));
  else if (fmt === S_IFREG) t.chunks = bs.chunks(i.ino).map((c) => ({ ...c }));
  return t;
}
