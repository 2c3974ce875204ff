// OCI layer tar (or tar.gz) -> builder tree (rafs-format.md 5.2). The tar is parsed header by header with
// positioned reads, so a multi-GiB layer costs one 512-byte buffer; file contents stay in the tar and
// are referenced as byte ranges. Gzip'ed layers are first inflated to a temporary file.
import { closeSync, createReadStream, createWriteStream, mkdtempSync, readSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { openInputFile, readInputRange } from '../input-file.js';
import { createGunzip } from 'node:zlib';
import type { TreeInode, TreeNode } from './tree.js';
import { isDir, isReg } from './tree.js';
import { getChild, newDir, putChild, syntheticDirInode } from './overlay.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG } from '../rafs/common.js';

const BLOCK = 512;
/** PAX and GNU long-name payloads are small; refuse absurd sizes instead of allocating them. */
const MAX_META_ENTRY = 16 * 1024 * 1024;
const USTAR_MAGIC = Buffer.from('ustar\0', 'latin1');
const DROPPED = new Set(['stargz.index.json', '.prefetch.landmark', '.no.prefetch.landmark']);

export interface TarTree {
  root: TreeNode;
  /** regular files in tar-stream order (hardlinks once): the dump order of a tar build */
  files: TreeNode[];
  /** the tar the content sources point into (a temporary file for gzip input) */
  tarPath: string;
  /** removes the temporary decompressed tar, if any */
  cleanup(): void;
}

/** glibc's makedev: the dev_t encoding stat(2) reports and the tree carries. */
export function makedev(major: number, minor: number): number {
  return (
    ((minor & 0xff) | ((major & 0xfff) << 8)) +
    (minor & ~0xff) * 0x1000 + // minor bits 8.. go to bits 20..
    (major & ~0xfff) * 0x100000000 // major bits 12.. go to bits 44..
  );
}

export function devMajor(rdev: number): number {
  return ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 0x100000000) & ~0xfff);
}

export function devMinor(rdev: number): number {
  return (rdev & 0xff) | ((rdev >>> 12) & ~0xff);
}

/** Whether `b` starts as a gzip member does (magic 1f 8b, method 8: deflate). */
export function hasGzipMagic(b: Buffer): boolean {
  return b.length >= 3 && b[0] === 0x1f && b[1] === 0x8b && b[2] === 0x08;
}

export async function isGzipFile(file: string): Promise<boolean> {
  const input = openInputFile(file, 'tar source');
  try {
    const b = readInputRange(input, 0, Math.min(3, input.size), 'tar source');
    return hasGzipMagic(b);
  } finally {
    closeSync(input.fd);
  }
}

/** Inflates a (possibly multi-member) gzip file into `dest`, as far as `src` was long when opened. */
export async function gunzipTo(src: string, dest: string): Promise<void> {
  const input = openInputFile(src, 'tar source');
  if (input.size === 0) {
    closeSync(input.fd);
    throw new Error(`corrupt gzip input ${src}: empty file`);
  }
  try {
    await pipeline(createReadStream('', { fd: input.fd, start: 0, end: input.size - 1 }), createGunzip(), createWriteStream(dest));
  } catch (e) {
    throw new Error(`corrupt gzip input ${src}: ${(e as Error).message}`);
  }
}

export interface TarSourceOptions {
  /** where a decompressed copy of a gzip'ed layer goes (default: the OS temp dir) */
  tempDir?: string;
}

/** Parses a tar or tar.gz layer (gzip detected by magic) into a tree. */
export async function treeFromTarFile(file: string, opts: TarSourceOptions = {}): Promise<TarTree> {
  let tarPath = file;
  let tmp: string | undefined;
  closeSync(openInputFile(file, 'tar source').fd);
  if (await isGzipFile(file)) {
    tmp = mkdtempSync(path.join(opts.tempDir ?? os.tmpdir(), 'nydus-tar-'));
    tarPath = path.join(tmp, 'layer.tar');
    try {
      await gunzipTo(file, tarPath);
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
  }
  const cleanup = () => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  };
  try {
    const { root, files } = parseTarFile(tarPath, file);
    return { root, files, tarPath, cleanup };
  } catch (e) {
    cleanup();
    throw e;
  }
}

interface PaxState {
  path?: Buffer;
  linkpath?: Buffer;
  size?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  devmajor?: number;
  devminor?: number;
  xattrs: Map<string, Buffer>;
}

function freshPax(): PaxState {
  return { xattrs: new Map() };
}

/** One tar entry with the PAX/GNU overrides folded in. */
export interface TarEntry {
  path: Buffer;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size: number;
  linkname: Buffer;
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Buffer>;
  /** offset of the entry's data in the tar */
  dataOffset: number;
}

/**
 * Reads every entry of a tar file. `label` names the input in errors. Calls `onEntry` for each
 * real entry (PAX/GNU meta entries are folded into the entry they describe).
 */
export function readTarEntries(tarPath: string, label: string, onEntry: (e: TarEntry) => void): void {
  // the size at open bounds the parse: a tar still being appended to ends where it was
  const { fd, size: fileSize } = openInputFile(tarPath, 'tar source');
  try {
    const hdr = Buffer.alloc(BLOCK);
    let off = 0;
    let pax = freshPax();
    let gnuName: Buffer | undefined;
    let gnuLink: Buffer | undefined;
    let sawEnd = false;
    const fail = (msg: string): never => {
      throw new Error(`corrupt tar ${label}: ${msg} (entry header at offset ${off})`);
    };
    while (off < fileSize) {
      if (off + BLOCK > fileSize) fail(`truncated header: ${fileSize - off} bytes left`);
      readFull(fd, hdr, off);
      if (isZeroBlock(hdr)) {
        sawEnd = true;
        break;
      }
      verifyChecksum(hdr, fail);
      const type = hdr[156] === 0 ? '0' : String.fromCharCode(hdr[156]);
      const hdrSize = parseNumeric(hdr, 124, 12, 'size', fail);
      // Links, devices, fifos and directories are header-only whatever size they declare (as Go's archive/tar reads them).
      const size = '123456'.includes(type) ? 0 : (pax.size ?? hdrSize);
      const dataOffset = off + BLOCK;
      if (dataOffset + size > fileSize) {
        fail(`entry data of ${size} bytes runs past the end of the file (${fileSize} bytes)`);
      }
      const next = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
      const readPayload = (what: string): Buffer => {
        if (size > MAX_META_ENTRY) fail(`${what} entry of ${size} bytes is too large`);
        const b = Buffer.alloc(size);
        if (size > 0) readFull(fd, b, dataOffset);
        return b;
      };
      switch (type) {
        case 'x':
          parsePax(readPayload('PAX header'), pax, fail);
          off = next;
          continue;
        case 'g':
          // Global PAX headers apply to the whole archive; nothing in them matters for an image.
          readPayload('PAX global header');
          off = next;
          continue;
        case 'L':
          gnuName = trimNul(readPayload('GNU long name'));
          off = next;
          continue;
        case 'K':
          gnuLink = trimNul(readPayload('GNU long link'));
          off = next;
          continue;
        case '0': case '1': case '2': case '3': case '4': case '5': case '6':
          break;
        case '7':
          fail('contiguous files (type 7) are not supported');
          break;
        case 'S':
          fail('GNU sparse files are not supported');
          break;
        default:
          fail(`unsupported entry type '${type.replace(/[^\x20-\x7e]/g, '?')}'`);
      }
      const ustar = hdr.subarray(257, 263).equals(USTAR_MAGIC);
      let name = cstr(hdr, 0, 100);
      if (ustar && hdr[345] !== 0) name = Buffer.concat([cstr(hdr, 345, 155), Buffer.from('/'), name]);
      const entry: TarEntry = {
        path: pax.path ?? gnuName ?? name,
        type,
        mode: parseNumeric(hdr, 100, 8, 'mode', fail) & 0o7777,
        uid: pax.uid ?? parseNumeric(hdr, 108, 8, 'uid', fail),
        gid: pax.gid ?? parseNumeric(hdr, 116, 8, 'gid', fail),
        mtime: pax.mtime ?? parseNumeric(hdr, 136, 12, 'mtime', fail),
        size,
        linkname: pax.linkpath ?? gnuLink ?? cstr(hdr, 157, 100),
        devmajor: pax.devmajor ?? (type === '3' || type === '4' ? parseNumeric(hdr, 329, 8, 'devmajor', fail) : 0),
        devminor: pax.devminor ?? (type === '3' || type === '4' ? parseNumeric(hdr, 337, 8, 'devminor', fail) : 0),
        xattrs: pax.xattrs,
        dataOffset,
      };
      // Old tars mark directories only by the trailing slash.
      if (type === '0' && entry.path.length > 0 && entry.path[entry.path.length - 1] === 0x2f) entry.type = '5';
      onEntry(entry);
      pax = freshPax();
      gnuName = undefined;
      gnuLink = undefined;
      off = next;
    }
    if (!sawEnd && (pax.path || gnuName || gnuLink)) {
      throw new Error(`corrupt tar ${label}: archive ends after a PAX/GNU extension header with no entry`);
    }
  } finally {
    closeSync(fd);
  }
}

function readFull(fd: number, buf: Buffer, pos: number): void {
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, pos + done);
    if (n === 0) throw new Error(`unexpected end of file at offset ${pos + done}`);
    done += n;
  }
}

function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function verifyChecksum(hdr: Buffer, fail: (m: string) => never): void {
  const field = hdr.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/g, '').trim();
  if (!/^[0-7]+$/.test(field)) fail(`bad header checksum field '${field.replace(/[^\x20-\x7e]/g, '?')}'`);
  const want = parseInt(field, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : hdr[i];
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  if (want !== unsigned && want !== signed) fail(`header checksum mismatch (stored ${want}, computed ${unsigned})`);
}

/** Octal, or GNU base-256 when the top bit of the first byte is set. */
function parseNumeric(hdr: Buffer, off: number, len: number, what: string, fail: (m: string) => never): number {
  if (hdr[off] & 0x80) {
    if (hdr[off] === 0xff) fail(`negative base-256 ${what}`);
    let v = hdr[off] & 0x7f;
    for (let i = 1; i < len; i++) {
      v = v * 256 + hdr[off + i];
      if (v > Number.MAX_SAFE_INTEGER) fail(`${what} too large`);
    }
    return v;
  }
  const s = hdr.subarray(off, off + len).toString('latin1').replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) fail(`bad ${what} field '${s.replace(/[^\x20-\x7e]/g, '?')}'`);
  return parseInt(s, 8);
}

function cstr(b: Buffer, off: number, len: number): Buffer {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return Buffer.from(z >= 0 ? s.subarray(0, z) : s);
}

function trimNul(b: Buffer): Buffer {
  const z = b.indexOf(0);
  return z >= 0 ? b.subarray(0, z) : b;
}

function parsePax(buf: Buffer, pax: PaxState, fail: (m: string) => never): void {
  let p = 0;
  while (p < buf.length) {
    if (buf[p] === 0) break; // some writers pad the record area with NULs
    const sp = buf.indexOf(0x20, p);
    if (sp < 0 || sp - p > 20) fail('malformed PAX record length');
    const lenStr = buf.subarray(p, sp).toString('latin1');
    if (!/^[0-9]+$/.test(lenStr)) fail(`malformed PAX record length '${lenStr}'`);
    const len = parseInt(lenStr, 10);
    if (len <= sp - p + 1 || p + len > buf.length || buf[p + len - 1] !== 0x0a) fail('PAX record overruns its header');
    const rec = buf.subarray(sp + 1, p + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq < 0) fail('PAX record without "="');
    const key = rec.subarray(0, eq).toString('utf8');
    const value = Buffer.from(rec.subarray(eq + 1));
    const num = (what: string): number => {
      const s = value.toString('latin1');
      if (!/^-?[0-9]+(\.[0-9]*)?$/.test(s)) fail(`bad PAX ${what} '${s}'`);
      const v = Math.floor(Number(s));
      if (!Number.isSafeInteger(v) || (v < 0 && what !== 'mtime')) fail(`bad PAX ${what} '${s}'`);
      return v;
    };
    if (key === 'path') pax.path = value;
    else if (key === 'linkpath') pax.linkpath = value;
    else if (key === 'size') pax.size = num('size');
    else if (key === 'uid') pax.uid = num('uid');
    else if (key === 'gid') pax.gid = num('gid');
    else if (key === 'mtime') pax.mtime = num('mtime');
    else if (key === 'SCHILY.devmajor') pax.devmajor = num('devmajor');
    else if (key === 'SCHILY.devminor') pax.devminor = num('devminor');
    else if (key.startsWith('SCHILY.xattr.')) pax.xattrs.set(key.slice('SCHILY.xattr.'.length), value);
    p += len;
  }
}

/** Splits an entry path into components, dropping '.', empty parts and a leading '/'. */
export function splitTarPath(p: Buffer, label: string): Buffer[] {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    if (i === p.length || p[i] === 0x2f) {
      const part = p.subarray(start, i);
      start = i + 1;
      if (part.length === 0 || (part.length === 1 && part[0] === 0x2e)) continue;
      if (part.length === 2 && part[0] === 0x2e && part[1] === 0x2e) {
        throw new Error(`tar ${label}: entry path '${p.toString()}' contains '..'`);
      }
      if (part.length > 255) throw new Error(`tar ${label}: name longer than 255 bytes in '${p.toString()}'`);
      if (part.includes(0)) throw new Error(`tar ${label}: entry path '${p.toString().replace(/\0/g, '\\0')}' contains a NUL byte`);
      parts.push(Buffer.from(part));
    }
  }
  return parts;
}

function modeBits(type: string): number {
  switch (type) {
    case '5': return S_IFDIR;
    case '2': return S_IFLNK;
    case '3': return S_IFCHR;
    case '4': return S_IFBLK;
    case '6': return S_IFIFO;
    default: return S_IFREG;
  }
}

export function parseTarFile(tarPath: string, label = tarPath): { root: TreeNode; files: TreeNode[] } {
  const root = newDir(Buffer.from('/'));
  // Dump order = stream order; a later entry for the same path supersedes the earlier one.
  const order: TreeNode[] = [];
  const lookup = (parts: Buffer[], create: boolean): TreeNode | undefined => {
    let cur = root;
    for (const part of parts) {
      let next = getChild(cur, part);
      if (!next) {
        if (!create) return undefined;
        next = putChild(cur, newDir(part));
      } else if (!isDir(next)) {
        if (!create) return undefined;
        // A non-directory in the way of a deeper path is replaced, as extracting the tar would.
        next = putChild(cur, newDir(part));
      }
      cur = next;
    }
    return cur;
  };

  readTarEntries(tarPath, label, (e) => {
    const parts = splitTarPath(e.path, label);
    if (parts.length === 1 && DROPPED.has(parts[0].toString('latin1'))) return;
    if (parts.length === 0) {
      if (e.type !== '5') throw new Error(`tar ${label}: the root entry '${e.path.toString()}' is not a directory`);
      root.inode = dirInode(e);
      return;
    }
    const parent = lookup(parts.slice(0, -1), true)!;
    const name = parts[parts.length - 1];
    if (e.type === '1') {
      const tparts = splitTarPath(e.linkname, label);
      const tdir = tparts.length > 0 ? lookup(tparts.slice(0, -1), false) : undefined;
      const target = tdir && getChild(tdir, tparts[tparts.length - 1]);
      if (!target || !isReg(target)) {
        throw new Error(
          `tar ${label}: hardlink '${e.path.toString()}' points to '${e.linkname.toString()}', which is not an earlier regular file`,
        );
      }
      putChild(parent, { name, inode: target.inode });
      return;
    }
    if (e.type === '5') {
      const existing = getChild(parent, name);
      if (existing && isDir(existing)) existing.inode = dirInode(e);
      else putChild(parent, { name, inode: dirInode(e), children: [] });
      return;
    }
    const inode: TreeInode = {
      mode: modeBits(e.type) | e.mode,
      uid: e.uid,
      gid: e.gid,
      mtime: e.mtime,
      mtimeNsec: 0,
      rdev: e.type === '3' || e.type === '4' ? makedev(e.devmajor, e.devminor) : 0,
      size: 0,
      xattrs: e.xattrs,
    };
    if (e.type === '2') {
      if (e.linkname.length === 0) throw new Error(`tar ${label}: symlink '${e.path.toString()}' has an empty target`);
      inode.symlink = e.linkname;
      inode.size = e.linkname.length;
    } else if (e.type === '0') {
      inode.size = e.size;
      inode.source = { kind: 'file', path: tarPath, offset: e.dataOffset, length: e.size };
    }
    const node = putChild(parent, { name, inode });
    if (e.type === '0') order.push(node);
  });

  // Keep only files still reachable with their original inode (replaced entries drop out).
  const live = new Set<TreeInode>();
  const stack = [root];
  while (stack.length > 0) {
    const d = stack.pop()!;
    for (const c of d.children ?? []) {
      if (isDir(c)) stack.push(c);
      else if (isReg(c)) live.add(c.inode);
    }
  }
  const seen = new Set<TreeInode>();
  const files = order.filter((n) => live.has(n.inode) && !seen.has(n.inode) && (seen.add(n.inode), true));
  return { root, files };
}

function dirInode(e: TarEntry): TreeInode {
  return { ...syntheticDirInode(), mode: S_IFDIR | e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, xattrs: e.xattrs };
}
