// Renders the `.result` format of the old nydus smoke test (rafs-format.md 6.1): `tree -a -J -v <mnt>` as printed by
// tree 1.7/1.8, then `find <mnt> -type f -exec md5sum {} + | sort`, with the mountpoint removed. One renderer
// over an abstract tree, fed either from a Bootstrap (+ blobs) or from a real directory (a FUSE mount).
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Bootstrap } from '../../../src/image-model.js';
import { walk } from '../../../src/rafs/walk.js';

export interface ResultNode {
  name: string;
  kind: 'directory' | 'file' | 'link';
  /** symlink target */
  target?: string;
  /** symlink whose target (followed) is a directory: tree counts it as a directory, not a file */
  targetIsDir?: boolean;
  /** md5 hex of regular files */
  md5?: string;
  children?: ResultNode[];
}

/** glibc strverscmp, the order of `tree -v`: digit runs compare by numeric value (runs with leading zeros as fractions). */
export function strverscmp(a: Buffer, b: Buffer): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  if (i === a.length && i === b.length) return 0;
  const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;
  let j = i;
  while (j > 0 && isDigit(a[j - 1])) j--;
  const ca = a[i];
  const cb = b[i];
  if ((j < i || (isDigit(ca) && isDigit(cb))) && a[j] !== 0x30 && b[j] !== 0x30 && isDigit(a[j]) && isDigit(b[j])) {
    let ea = i;
    while (isDigit(a[ea])) ea++;
    let eb = i;
    while (isDigit(b[eb])) eb++;
    if (ea !== eb) return ea - eb;
  }
  return (ca ?? -1) - (cb ?? -1);
}

function jsonString(s: string): string {
  return JSON.stringify(s);
}

export function renderResult(root: ResultNode): string {
  const lines: string[] = ['['];
  let dirs = 0;
  let files = 0;
  const md5s: string[] = [];
  const render = (n: ResultNode, depth: number, p: string): string => {
    const ind = '  '.repeat(depth + 1);
    if (n.kind === 'file') {
      files++;
      if (n.md5 !== undefined) md5s.push(`${n.md5}  ${p}`);
      return `${ind}{"type":"file","name":${jsonString(n.name)}}`;
    }
    if (n.kind === 'link') {
      if (n.targetIsDir) dirs++;
      else files++;
      return `${ind}{"type":"link","name":${jsonString(n.name)},"target":${jsonString(n.target ?? '')},"contents":[]}`;
    }
    if (depth > 0) dirs++;
    const kids = (n.children ?? []).map((c) => render(c, depth + 1, `${p === '/' ? '' : p}/${c.name}`));
    const head = `${ind}{"type":"directory","name":${jsonString(n.name)},"contents":[`;
    return kids.length === 0 ? `${head}\n${ind}]}` : `${head}\n${kids.join(',\n')}\n${ind}]}`;
  };
  lines.push(render(root, 0, '/') + ',');
  lines.push(`  {"type":"report","directories":${dirs},"files":${files}}`);
  lines.push(']');
  md5s.sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  return lines.join('\n') + '\n' + md5s.map((l) => l + '\n').join('');
}

/**
 * Builds the tree from a bootstrap. Symlink targets are resolved inside the image (absolute ones from its
 * root, `..` stopping at the root), which is how they behave under the mountpoint for the fixture images.
 */
export function resultTreeFromBootstrap(bs: Bootstrap, readFile: (ino: number) => Buffer): ResultNode {
  const byIno = new Map<number, ResultNode>();
  const root: ResultNode = { name: '', kind: 'directory', children: [] };
  byIno.set(bs.superblock.rootIno, root);
  const links: { node: ResultNode; dir: string }[] = [];
  walk(bs, (p, inode, parentIno) => {
    if (inode.ino === bs.superblock.rootIno && p.length === 1) return;
    const name = path.posix.basename(p.toString());
    const type = inode.mode & 0o170000;
    let node: ResultNode;
    if (type === 0o040000) node = { name, kind: 'directory', children: [] };
    else if (type === 0o120000) {
      node = { name, kind: 'link', target: bs.readlink(inode.ino).toString() };
      links.push({ node, dir: path.posix.dirname(p.toString()) });
    } else if (type === 0o100000) node = { name, kind: 'file', md5: createHash('md5').update(readFile(inode.ino)).digest('hex') };
    else node = { name, kind: 'file' };
    byIno.get(parentIno)!.children!.push(node);
    if (node.kind === 'directory') byIno.set(inode.ino, node);
  });
  const sortAll = (n: ResultNode): void => {
    n.children?.sort((a, b) => strverscmp(Buffer.from(a.name), Buffer.from(b.name)));
    n.children?.forEach(sortAll);
  };
  sortAll(root);
  for (const { node, dir } of links) node.targetIsDir = resolvesToDir(bs, dir, node.target!);
  return root;
}

function resolvesToDir(bs: Bootstrap, dir: string, target: string, depth = 0): boolean {
  if (depth > 40) return false;
  const start = target.startsWith('/') ? [] : dir.split('/').filter(Boolean);
  const parts = [...start];
  for (const c of target.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') parts.pop();
    else parts.push(c);
  }
  let ino = bs.superblock.rootIno;
  for (let k = 0; k < parts.length; k++) {
    const child = bs.lookup(ino, Buffer.from(parts[k]));
    if (child === undefined) return false;
    if ((child.mode & 0o170000) === 0o120000) {
      const rest = parts.slice(k + 1).join('/');
      const t = bs.readlink(child.ino).toString();
      return resolvesToDir(bs, '/' + parts.slice(0, k).join('/'), rest ? `${t}/${rest}` : t, depth + 1);
    }
    ino = child.ino;
  }
  return (bs.getInode(ino).mode & 0o170000) === 0o040000;
}

/** The same tree from a real directory (e.g. a FUSE mountpoint), following the host's view of symlinks. */
export function resultTreeFromDirectory(dir: string): ResultNode {
  const build = (p: string, name: string): ResultNode => {
    const st = lstatSync(p);
    if (st.isDirectory()) {
      const children = readdirSync(p).map((n) => build(path.join(p, n), n));
      children.sort((a, b) => strverscmp(Buffer.from(a.name), Buffer.from(b.name)));
      return { name, kind: 'directory', children };
    }
    if (st.isSymbolicLink()) {
      let targetIsDir = false;
      try {
        targetIsDir = statSync(p).isDirectory();
      } catch {
        targetIsDir = false;
      }
      return { name, kind: 'link', target: readlinkSync(p, 'utf8'), targetIsDir };
    }
    if (st.isFile()) return { name, kind: 'file', md5: createHash('md5').update(readFileSync(p)).digest('hex') };
    return { name, kind: 'file' };
  };
  return build(dir, '');
}
