// Shared pieces of the end-to-end image tests: the CLI runner, a seeded tree generator, and
// "snapshots" (path -> attributes/xattrs/content digest) of a directory on disk or of an image.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, chownSync, closeSync, ftruncateSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync,
  readlinkSync, rmSync, symlinkSync, linkSync, writeFileSync, writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../helpers/paths.js';
import { openBootstrap } from '../../src/rafs/bootstrap.js';
import type { Bootstrap } from '../../src/image-model.js';
import { BlobReader } from '../../src/unpack/blob-reader.js';
import { parseGetfattr } from '../../src/builder/source-dir.js';

export const CLI = path.join(projectRoot, 'dist', 'src', 'cli', 'nydus-image.js');

export function nydusImage(args: string[], input?: string): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', input, maxBuffer: 1 << 28 });
}

/** Runs the CLI and fails with its stderr when it does not exit 0. */
export function nydusImageOk(args: string[], input?: string): string {
  const r = nydusImage(args, input);
  if (r.status !== 0) throw new Error(`nydus-image ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** Test prerequisites are part of CI: a missing tool fails the test loudly instead of skipping it. */
export function requireTool(name: string): void {
  const r = spawnSync('sh', ['-c', `command -v ${name}`]);
  if (r.status !== 0) throw new Error(`required tool '${name}' is not installed (CI must provide it)`);
}

export function run(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: opts.cwd, maxBuffer: 1 << 28 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `nydus-test-${prefix}-`));
}

import { prng } from '../helpers/prng.js';
export { prng };

export interface GenOptions {
  seed: number;
  chunkSize: number;
  /** include fifos and device nodes (needs root) */
  specials?: boolean;
  /** entries of the big directory */
  bigDir?: number;
  /** a few files of several chunks */
  largeFiles?: number;
}

/** Content that compresses partially: random runs mixed with repeated text. */
function content(rand: () => number, size: number): Buffer {
  const b = Buffer.alloc(size);
  let i = 0;
  while (i < size) {
    const run = Math.min(size - i, 1 + Math.floor(rand() * 700));
    if (rand() < 0.5) for (let j = 0; j < run; j++) b[i + j] = Math.floor(rand() * 256);
    else b.write('nydus-ts test content '.repeat(Math.ceil(run / 22)).slice(0, run), i, 'latin1');
    i += run;
  }
  return b;
}

function setXattr(p: string, name: string, value: Buffer): void {
  run('setfattr', ['-h', '-n', name, '-v', '0x' + value.toString('hex'), p]);
}

/**
 * Writes a random tree under `dir`: empty files, sizes around chunk boundaries, larger files,
 * hardlinks, symlinks, xattrs, fifos and devices, deep paths, 255-byte and non-ASCII names, a big dir.
 */
export function generateTree(dir: string, o: GenOptions): void {
  const rand = prng(o.seed);
  const cs = o.chunkSize;
  mkdirSync(dir, { recursive: true });
  const dirs = [dir];
  for (let i = 0; i < 8; i++) {
    const parent = dirs[Math.floor(rand() * dirs.length)];
    const d = path.join(parent, `dir${i}`);
    mkdirSync(d);
    dirs.push(d);
  }
  const pick = () => dirs[Math.floor(rand() * dirs.length)];
  const sizes = [0, 1, 100, cs - 1, cs, cs + 1, 2 * cs - 1, 2 * cs, 2 * cs + 1, 3 * cs + 17, 4096, 4095, 4097, 12345];
  const files: string[] = [];
  sizes.forEach((s, i) => {
    const f = path.join(pick(), `f${i}-${s}.bin`);
    writeFileSync(f, content(rand, s));
    files.push(f);
  });
  for (let i = 0; i < (o.largeFiles ?? 2); i++) {
    const f = path.join(pick(), `large${i}`);
    writeFileSync(f, content(rand, 5 * cs + Math.floor(rand() * cs)));
    files.push(f);
  }
  // Duplicate content exercises chunk dedup.
  writeFileSync(path.join(dir, 'dup-of-f5'), readFileSync(files[5]));
  // Hardlinks: one file linked three times across directories.
  const h = path.join(dirs[1], 'hard-a');
  writeFileSync(h, content(rand, cs + 123));
  linkSync(h, path.join(dirs[2], 'hard-b'));
  linkSync(h, path.join(dir, 'hard-c'));
  // Symlinks: relative, absolute, dangling, long target.
  symlinkSync('f1-1.bin', path.join(dir, 'link-rel'));
  symlinkSync('/etc/passwd', path.join(dirs[3], 'link-abs'));
  symlinkSync('does/not/exist', path.join(dir, 'link-dangling'));
  symlinkSync('t'.repeat(300) + '/x', path.join(dir, 'link-long'));
  // Names: 255 bytes, non-ASCII, odd characters.
  writeFileSync(path.join(dir, 'n'.repeat(255)), 'long name');
  writeFileSync(path.join(dir, 'héllo wörld ✓'), 'unicode');
  writeFileSync(path.join(dirs[2], 'space and\ttab'), 'odd');
  mkdirSync(path.join(dir, 'ünï'));
  writeFileSync(path.join(dir, 'ünï', '日本語.txt'), 'japanese');
  // Deep path.
  let deep = path.join(dir, 'deep');
  for (let i = 0; i < 30; i++) deep = path.join(deep, `d${i}`);
  mkdirSync(deep, { recursive: true });
  writeFileSync(path.join(deep, 'bottom'), 'bottom');
  // xattrs on files, dirs and a symlink-free file; one empty value; one binary value.
  setXattr(files[1], 'user.color', Buffer.from('blue'));
  setXattr(files[1], 'user.empty', Buffer.alloc(0));
  setXattr(dirs[1], 'user.dirattr', Buffer.from('d'));
  setXattr(files[3], 'user.bin', Buffer.from([0, 1, 2, 255, 10, 13]));
  setXattr(files[3], 'trusted.t', Buffer.from('trusted value'));
  setXattr(h, 'user.onhardlink', Buffer.from('shared'));
  if (o.specials ?? true) {
    run('mkfifo', [path.join(dirs[4], 'fifo')]);
    run('mknod', [path.join(dirs[4], 'chardev'), 'c', '1', '3']);
    run('mknod', [path.join(dirs[5], 'blockdev'), 'b', '7', '200']);
    run('mknod', [path.join(dir, 'bigminor'), 'c', '300', '70000']);
  }
  // Owners and unusual mode bits.
  chownSync(files[2], 1000, 1001);
  chownSync(dirs[3], 65534, 65534);
  lchownSync(path.join(dir, 'link-rel'), 4242, 4343);
  chmodSync(files[4], 0o4755);
  chmodSync(dirs[6], 0o1777);
  chmodSync(files[6], 0o400);
  const big = path.join(dir, 'bigdir');
  mkdirSync(big);
  for (let i = 0; i < (o.bigDir ?? 2000); i++) writeFileSync(path.join(big, `entry-${String(i).padStart(5, '0')}`), i % 7 === 0 ? `${i}` : '');
}

export interface Entry {
  mode: number;
  uid: number;
  gid: number;
  /** regular files and symlinks only (directory sizes are format-specific) */
  size?: number;
  mtime?: number;
  rdev?: number;
  link?: string;
  xattrs: Record<string, string>;
  md5?: string;
  /** link count (snapshotDisk with `nlink`) */
  nlink?: number;
  /** first path (sorted) of the hardlink group, for regular files with nlink > 1 */
  hardlinkOf?: string;
}

export type Snapshot = Map<string, Entry>;

export interface SnapOptions {
  content?: boolean;
  mtime?: boolean;
  /** record st_nlink of every entry (snapshotDisk only) */
  nlink?: boolean;
  /** xattr names to leave out (e.g. security.* the host adds) */
  ignoreXattr?: (name: string) => boolean;
}

function sortedXattrs(m: Map<string, Buffer> | undefined, ignore?: (n: string) => boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of [...(m?.keys() ?? [])].sort()) if (!ignore?.(k)) out[k] = m!.get(k)!.toString('hex');
  return out;
}

function finishHardlinks(snap: Snapshot, groups: Map<string, string[]>): Snapshot {
  for (const paths of groups.values()) {
    if (paths.length < 2) continue;
    paths.sort();
    for (const p of paths) snap.get(p)!.hardlinkOf = paths[0];
  }
  return snap;
}

/** A directory on disk (a source tree, or a kernel mount) via lstat and one `getfattr -R` run. */
export function snapshotDisk(root: string, o: SnapOptions = {}): Snapshot {
  requireTool('getfattr');
  const rawX = new Map<string, Map<string, Buffer>>();
  const gx = spawnSync('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root], {
    maxBuffer: 1 << 28,
    env: { ...process.env, LC_ALL: 'C' },
  });
  parseGetfattr(gx.stdout, rawX);
  const rootBuf = Buffer.from(root);
  const snap: Snapshot = new Map();
  const groups = new Map<string, string[]>();
  const stack: Buffer[] = [rootBuf];
  while (stack.length > 0) {
    const full = stack.pop()!;
    const rel = full.length === rootBuf.length ? '/' : full.subarray(rootBuf.length).toString();
    const st = lstatSync(full);
    const fmt = st.mode & 0o170000;
    const e: Entry = {
      mode: st.mode,
      uid: st.uid,
      gid: st.gid,
      xattrs: sortedXattrs(rawX.get(full.toString('latin1')), o.ignoreXattr),
    };
    if (o.mtime && rel !== '/') e.mtime = Math.floor(st.mtimeMs / 1000);
    if (o.nlink) e.nlink = st.nlink;
    if (fmt === 0o100000) {
      e.size = st.size;
      if (o.content) e.md5 = createHash('md5').update(readFileSync(full)).digest('hex');
      if (st.nlink > 1) {
        const k = `${st.dev}:${st.ino}`;
        groups.set(k, [...(groups.get(k) ?? []), rel]);
      }
    } else if (fmt === 0o120000) {
      e.link = readlinkSync(full, { encoding: 'buffer' }).toString();
      e.size = st.size;
    } else if (fmt === 0o020000 || fmt === 0o060000) {
      e.rdev = st.rdev;
    }
    snap.set(rel, e);
    if (fmt === 0o040000) {
      for (const n of readdirSync(full, { encoding: 'buffer' })) stack.push(Buffer.concat([full, Buffer.from('/'), n]));
    }
  }
  return finishHardlinks(snap, groups);
}

/** An image through our reader; contents read from the blobs when `blobDir`/`blobFile` is given. */
export function snapshotImage(bs: Bootstrap, where: { blobDir?: string; blobFile?: string } | undefined, o: SnapOptions = {}): Snapshot {
  const reader = where ? new BlobReader(bs, where) : undefined;
  const snap: Snapshot = new Map();
  const groups = new Map<string, string[]>();
  try {
    const visit = (rel: string, ino: number) => {
      const i = bs.getInode(ino);
      const fmt = i.mode & 0o170000;
      const e: Entry = {
        mode: i.mode,
        uid: i.uid,
        gid: i.gid,
        xattrs: sortedXattrs(i.hasXattr ? bs.xattrs(ino) : undefined, o.ignoreXattr),
      };
      if (o.mtime && rel !== '/') e.mtime = i.mtime;
      if (fmt === 0o100000) {
        e.size = i.size;
        if (o.content && reader) e.md5 = createHash('md5').update(reader.readFile(ino, true)!).digest('hex');
        if (i.nlink > 1) groups.set(String(i.linkIno), [...(groups.get(String(i.linkIno)) ?? []), rel]);
      } else if (fmt === 0o120000) {
        e.link = bs.readlink(ino).toString();
        e.size = i.size;
      } else if (fmt === 0o020000 || fmt === 0o060000) {
        e.rdev = i.rdev;
      }
      snap.set(rel, e);
      return fmt === 0o040000;
    };
    const stack: Array<[string, number]> = [['/', bs.superblock.rootIno]];
    visit('/', bs.superblock.rootIno);
    while (stack.length > 0) {
      const [rel, ino] = stack.pop()!;
      for (const d of bs.readdir(ino)) {
        const p = (rel === '/' ? '' : rel) + '/' + d.name.toString();
        if (visit(p, d.ino)) stack.push([p, d.ino]);
      }
    }
  } finally {
    reader?.close();
  }
  return finishHardlinks(snap, groups);
}

export function loadImageFile(file: string): Bootstrap {
  return openBootstrap(readFileSync(file), { fileName: path.basename(file) });
}

/** Compact diff for assertion messages: the first few differing paths. */
export function diffSnapshots(a: Snapshot, b: Snapshot, max = 8): string[] {
  const out: string[] = [];
  const keys = new Set([...a.keys(), ...b.keys()]);
  for (const k of [...keys].sort()) {
    const x = JSON.stringify(a.get(k));
    const y = JSON.stringify(b.get(k));
    if (x !== y) out.push(`${k}:\n    left  ${x}\n    right ${y}`);
    if (out.length >= max) break;
  }
  return out;
}

/**
 * The per-blob "uncompressed cache file" the kernel reads as an EROFS device: every chunk
 * decompressed at its uncompressed_offset (rafs-format.md 2.11, §4.12). Returns one path per blob.
 */
export function writeCacheFiles(bs: Bootstrap, blobDir: string, outDir: string): string[] {
  const reader = new BlobReader(bs, { blobDir });
  const paths = bs.blobs.map((b) => path.join(outDir, `${b.blobId}.blob.data`));
  const fds = paths.map((p) => openSync(p, 'w'));
  try {
    const done = new Set<string>();
    const stack = [bs.superblock.rootIno];
    while (stack.length > 0) {
      const d = stack.pop()!;
      for (const e of bs.readdir(d)) {
        const i = bs.getInode(e.ino);
        const fmt = i.mode & 0o170000;
        if (fmt === 0o040000) stack.push(e.ino);
        if (fmt !== 0o100000) continue;
        for (const c of bs.chunks(e.ino)) {
          const key = `${c.blobIndex}:${c.index}`;
          if (done.has(key)) continue;
          done.add(key);
          const data = reader.readChunk(c, true);
          writeSync(fds[c.blobIndex], data, 0, data.length, c.uncompressedOffset);
        }
      }
    }
    bs.blobs.forEach((b, i) => ftruncateSync(fds[i], Math.ceil(b.uncompressedSize / 4096) * 4096));
  } finally {
    fds.forEach((fd) => closeSync(fd));
    reader.close();
  }
  return paths;
}

export function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Runs the CLI dispatcher in this process (much faster than a node per call), capturing its output. */
export async function nydusImageInProcess(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const { main, errorText } = await import('../../src/cli/nydus-image/main.js');
  const { io } = await import('../../src/cli/nydus-image/io.js');
  let stdout = '';
  const saved = io.stdout;
  io.stdout = (text: string) => {
    stdout += text;
  };
  try {
    const status = await main(args);
    return { status, stdout, stderr: '' };
  } catch (e) {
    return { status: 1, stdout, stderr: errorText(e) };
  } finally {
    io.stdout = saved;
  }
}

/** Directory sizes differ between filesystems (EROFS, overlayfs, ext4), so listings compare without them. */
export function withoutDirSizes(s: Snapshot): Snapshot {
  for (const e of s.values()) if ((e.mode & 0o170000) === 0o040000) delete e.size;
  return s;
}

/** Unmounts what a test mounted, innermost (last) first; one already gone is fine. */
export function unmountAll(mounts: string[]): void {
  for (const m of [...mounts].reverse()) {
    try {
      run('umount', [m]);
    } catch {
      // already unmounted
    }
  }
}
