// Directory -> builder tree (rafs-format.md 5.1 dir-rafs). Attributes come from lstat; extended attributes from
// ONE `getfattr -R` run over the whole tree, parsed once: Node has no xattr API, and a process per
// file would cost minutes on a 50,000-file tree, while one recursive dump costs about as much as the walk.
import { spawnSync } from 'node:child_process';
import { lstatSync, readFileSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import path from 'node:path';
import type { TreeInode, TreeNode } from './tree.js';
import { dropWhiteouts, type WhiteoutSpec } from './overlay.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../rafs/common.js';

export interface DirSourceOptions {
  whiteoutSpec?: WhiteoutSpec;
  /** skip extended attributes entirely (no getfattr run) */
  noXattrs?: boolean;
  /** receives warnings (default: stderr) */
  warn?: (msg: string) => void;
}

export interface DirTree {
  root: TreeNode;
}

export function treeFromDirectory(dir: string, opts: DirSourceOptions = {}): DirTree {
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`warning: ${m}\n`));
  let rootStat: BigIntStats;
  try {
    rootStat = lstatSync(dir, { bigint: true });
  } catch (e) {
    throw new Error(`source directory ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (!rootStat.isDirectory()) throw new Error(`source ${dir} is not a directory`);
  const absRoot = path.resolve(dir);
  const xattrs = opts.noXattrs ? new Map<string, Map<string, Buffer>>() : dumpXattrs(absRoot, warn);

  const hardlinks = new Map<string, TreeInode>();
  const rootBuf = Buffer.from(absRoot);
  const makeInode = (full: Buffer, st: BigIntStats): TreeInode => {
    const inode: TreeInode = {
      mode: Number(st.mode),
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtime: Number(st.mtimeNs / 1_000_000_000n),
      mtimeNsec: Number(st.mtimeNs % 1_000_000_000n),
      rdev: Number(st.rdev),
      size: 0,
      xattrs: xattrs.get(full.toString('latin1')) ?? new Map(),
    };
    const fmt = inode.mode & S_IFMT;
    if (fmt === S_IFREG) {
      inode.size = Number(st.size);
      inode.source = contentSource(full, inode.size);
      inode.rdev = 0;
    } else if (fmt === S_IFLNK) {
      inode.symlink = readlinkSync(full, { encoding: 'buffer' });
      inode.size = inode.symlink.length;
      inode.rdev = 0;
    } else if (fmt === S_IFDIR) {
      inode.rdev = 0;
    }
    return inode;
  };

  const root: TreeNode = { name: Buffer.from('/'), inode: makeInode(rootBuf, rootStat), children: [] };
  root.inode.mtime = 0;
  root.inode.mtimeNsec = 0;
  const stack: Array<[TreeNode, Buffer]> = [[root, rootBuf]];
  while (stack.length > 0) {
    const [node, full] = stack.pop()!;
    let names: Buffer[];
    try {
      names = readdirSync(full, { encoding: 'buffer' });
    } catch (e) {
      throw new Error(`cannot read directory ${full.toString()}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    names.sort(Buffer.compare);
    const kids: TreeNode[] = [];
    for (const name of names) {
      const childPath = Buffer.concat([full, Buffer.from('/'), name]);
      const st = lstatSync(childPath, { bigint: true });
      let inode: TreeInode;
      if (st.isFile() && st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        const seen = hardlinks.get(key);
        if (seen) inode = seen;
        else hardlinks.set(key, (inode = makeInode(childPath, st)));
      } else {
        inode = makeInode(childPath, st);
      }
      const child: TreeNode = { name, inode };
      if (st.isDirectory()) {
        child.children = [];
        stack.push([child, childPath]);
      }
      kids.push(child);
    }
    node.children = kids;
  }
  dropWhiteouts(root, opts.whiteoutSpec ?? 'oci');
  return { root };
}

const MAX_BUFFERED_FILE = 64 * 1024 * 1024;

/**
 * ContentSource paths are JS strings, which cannot name a file whose path is not valid UTF-8; such
 * (rare) files are read into memory instead, up to a bound.
 */
function contentSource(full: Buffer, size: number): TreeInode['source'] {
  const asString = full.toString();
  if (Buffer.from(asString).equals(full)) return { kind: 'file', path: asString, offset: 0, length: size };
  if (size > MAX_BUFFERED_FILE) {
    throw new Error(`file with a non-UTF-8 path is larger than ${MAX_BUFFERED_FILE} bytes: ${asString}`);
  }
  return { kind: 'buffer', data: readFileSync(full) };
}

/** path (latin1 string of the raw bytes) -> xattrs, from one `getfattr -R` dump. */
function dumpXattrs(absRoot: string, warn: (m: string) => void): Map<string, Map<string, Buffer>> {
  const out = new Map<string, Map<string, Buffer>>();
  const r = spawnSync('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', absRoot], {
    maxBuffer: 1 << 30,
    env: { ...process.env, LC_ALL: 'C' },
  });
  if (r.error) {
    if ((r.error as NodeJS.ErrnoException).code === 'ENOENT') {
      warn(`getfattr not found (install the 'attr' package): extended attributes of ${absRoot} are NOT included`);
      return out;
    }
    throw new Error(`getfattr failed on ${absRoot}: ${r.error.message}`);
  }
  if (r.status !== 0 && r.stdout.length === 0) {
    // Filesystems without xattr support make getfattr fail with "Operation not supported": nothing to carry.
    const msg = r.stderr.toString().trim();
    if (/not supported/i.test(msg)) return out;
    throw new Error(`getfattr failed on ${absRoot}: ${msg}`);
  }
  parseGetfattr(r.stdout, out);
  return out;
}

/** Parses `getfattr -d -e hex` output: "# file: <escaped path>" then "name=0x..." lines. */
export function parseGetfattr(text: Buffer, out: Map<string, Map<string, Buffer>>): void {
  let cur: Map<string, Buffer> | undefined;
  for (const line of text.toString('latin1').split('\n')) {
    if (line.startsWith('# file: ')) {
      cur = new Map();
      out.set(unescapeGetfattr(line.slice(8)), cur);
    } else if (line.length > 0 && cur) {
      const eq = line.indexOf('=');
      const name = unescapeGetfattr(eq < 0 ? line : line.slice(0, eq));
      let value = Buffer.alloc(0);
      if (eq >= 0) {
        const v = line.slice(eq + 1);
        if (v.startsWith('0x')) value = Buffer.from(v.slice(2), 'hex');
        else if (v.startsWith('"') && v.endsWith('"')) value = Buffer.from(unescapeGetfattr(v.slice(1, -1)), 'latin1');
        else throw new Error(`unexpected getfattr value format: ${line}`);
      }
      cur.set(Buffer.from(name, 'latin1').toString(), value);
    }
  }
}

/** getfattr writes non-printable bytes (and '\' itself) as backslash-octal escapes; undo that into latin1. */
function unescapeGetfattr(s: string): string {
  return s.replace(/\\([0-7]{3}|\\)/g, (_m, g: string) => (g === '\\' ? '\\' : String.fromCharCode(parseInt(g, 8))));
}
