// A filesystem tree as comparable lines, one per path: type, mode, owner, size, mtime, link target, xattrs, link
// count and the sha256 of a file's content. `check` lists the source image (its layers stacked with OCI
// whiteouts) and the Nydus image (unpacked) this way and compares the two listings line by line.
import { closeSync, openSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { isDir, isReg, type TreeInode, type TreeNode } from '../builder/tree.js';

const TYPE: Record<number, string> = { 0o100000: 'file', 0o040000: 'dir', 0o120000: 'symlink', 0o020000: 'chardev', 0o060000: 'blockdev', 0o010000: 'fifo', 0o140000: 'socket' };

/** path -> description; directories' sizes are left out (each format computes its own). */
export function listTree(root: TreeNode): Map<string, string> {
  const links = new Map<TreeInode, number>();
  const walk = (fn: (n: TreeNode, p: string) => void) => {
    const stack: Array<[TreeNode, string]> = [[root, '/']];
    while (stack.length > 0) {
      const [n, p] = stack.pop()!;
      fn(n, p);
      for (const c of n.children ?? []) stack.push([c, p === '/' ? `/${c.name.toString('latin1')}` : `${p}/${c.name.toString('latin1')}`]);
    }
  };
  walk((n) => links.set(n.inode, (links.get(n.inode) ?? 0) + 1));
  const out = new Map<string, string>();
  walk((n, p) => {
    const i = n.inode;
    const fields = [
      TYPE[i.mode & 0o170000] ?? `mode${(i.mode & 0o170000).toString(8)}`,
      `mode=${(i.mode & 0o7777).toString(8)}`,
      `uid=${i.uid}`,
      `gid=${i.gid}`,
      `mtime=${i.mtime}`,
    ];
    if (!isDir(n)) fields.push(`size=${i.size}`, `nlink=${links.get(i)}`);
    if (i.rdev) fields.push(`rdev=${i.rdev}`);
    if (i.symlink) fields.push(`target=${i.symlink.toString('latin1')}`);
    if (i.xattrs.size > 0) {
      fields.push(`xattrs=${[...i.xattrs].map(([k, v]) => `${k}:${v.toString('hex')}`).sort().join(',')}`);
    }
    if (isReg(n)) fields.push(`sha256=${contentDigest(i)}`);
    out.set(p, fields.join(' '));
  });
  return out;
}

function contentDigest(i: TreeInode): string {
  const h = createHash('sha256');
  const s = i.source;
  if (!s) {
    if (i.size !== 0) throw new Error('a file of the listed tree has no content source');
  } else if (s.kind === 'buffer') {
    h.update(s.data);
  } else {
    const fd = openSync(s.path, 'r');
    try {
      const buf = Buffer.alloc(Math.min(s.length, 1 << 20));
      for (let done = 0; done < s.length; ) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, s.length - done), s.offset + done);
        if (n === 0) throw new Error(`${s.path} ends before the file's content`);
        h.update(buf.subarray(0, n));
        done += n;
      }
    } finally {
      closeSync(fd);
    }
  }
  return h.digest('hex');
}

/** The differences of two listings, as lines naming the path (at most `limit`, then a count of the rest). */
export function diffListings(expected: Map<string, string>, actual: Map<string, string>, limit = 20): string[] {
  const out: string[] = [];
  for (const [p, e] of expected) {
    const a = actual.get(p);
    if (a === undefined) out.push(`${p}: missing from the Nydus image (source: ${e})`);
    else if (a !== e) out.push(`${p}: differs: source ${e}; nydus ${a}`);
  }
  for (const [p, a] of actual) if (!expected.has(p)) out.push(`${p}: only in the Nydus image (${a})`);
  return out.length > limit ? [...out.slice(0, limit), `... and ${out.length - limit} more differences`] : out;
}
