// Iterative depth-first walk of a whole tree in sorted order. Every directory is entered at most once, so a
// corrupt image whose entries point back at an ancestor (or share a subtree) cannot loop or explode.
import { RafsError, type Bootstrap, type Inode } from '../image-model.js';
import { S_IFDIR } from './common.js';

export type WalkCallback = (path: Buffer, inode: Inode, parentIno: number) => void;

const SLASH = Buffer.from('/');

/** Calls `cb` for the root (path "/", parent = root) and then every entry below it, parents before children. */
export function walk(bs: Bootstrap, cb: WalkCallback): void {
  const root = bs.superblock.rootIno;
  const rootInode = bs.getInode(root);
  cb(SLASH, rootInode, root);
  const seenDirs = new Set<number>([root]);
  // Each frame is a directory being listed: its path and the remaining entries, consumed in order.
  const stack: { path: Buffer; ino: number; entries: ReturnType<Bootstrap['readdir']>; next: number }[] = [
    { path: Buffer.alloc(0), ino: root, entries: bs.readdir(root), next: 0 },
  ];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.next >= top.entries.length) {
      stack.pop();
      continue;
    }
    const e = top.entries[top.next++];
    const p = Buffer.concat([top.path, SLASH, e.name]);
    const inode = bs.getInode(e.ino);
    cb(p, inode, top.ino);
    if ((inode.mode & 0o170000) === S_IFDIR) {
      if (seenDirs.has(e.ino)) throw new RafsError(`directory inode ${e.ino} is reached twice (at ${p.toString()})`);
      seenDirs.add(e.ino);
      stack.push({ path: p, ino: e.ino, entries: bs.readdir(e.ino), next: 0 });
    }
  }
}
