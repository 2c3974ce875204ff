// Test helpers: build trees in memory, read files back through a bootstrap and the blob files.
import { closeSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { decompress } from '../../src/compress.js';
import { ChunkFlag, type Bootstrap, type ChunkInfo } from '../../src/image-model.js';
import type { TreeInode, TreeNode } from '../../src/builder/tree.js';

export function inode(mode: number, extra: Partial<TreeInode> = {}): TreeInode {
  return { mode, uid: 0, gid: 0, mtime: 0, mtimeNsec: 0, rdev: 0, size: 0, xattrs: new Map(), ...extra };
}

export function dir(name: string, children: TreeNode[], extra: Partial<TreeInode> = {}): TreeNode {
  const kids = [...children].sort((a, b) => Buffer.compare(a.name, b.name));
  return { name: Buffer.from(name), inode: inode(0o040755, extra), children: kids };
}

export function file(name: string, data: Buffer | string, extra: Partial<TreeInode> = {}): TreeNode {
  const d = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return { name: Buffer.from(name), inode: inode(0o100644, { size: d.length, source: { kind: 'buffer', data: d }, ...extra }) };
}

export function symlink(name: string, target: string): TreeNode {
  const t = Buffer.from(target);
  return { name: Buffer.from(name), inode: inode(0o120777, { size: t.length, symlink: t }) };
}

/** Reads one chunk's bytes from a blob file and checks them against the record. */
export function readChunk(blobPath: string, c: ChunkInfo, compressor: number): Buffer {
  const fd = openSync(blobPath, 'r');
  try {
    const raw = Buffer.alloc(c.compressedSize);
    const n = readSync(fd, raw, 0, raw.length, c.compressedOffset);
    if (n !== raw.length) throw new Error(`short read of chunk ${c.index} in ${blobPath}`);
    return c.flags & ChunkFlag.COMPRESSED ? decompress(compressor, raw, c.uncompressedSize) : raw;
  } finally {
    closeSync(fd);
  }
}

export function readFileData(bs: Bootstrap, ino: number, blobDir: string): Buffer {
  const parts: Buffer[] = [];
  for (const c of bs.chunks(ino)) {
    const blob = bs.blobs[c.blobIndex];
    parts.push(readChunk(path.join(blobDir, blob.blobId), c, blob.compressor));
  }
  return Buffer.concat(parts);
}

/** path -> inode for every entry below the root */
export function listing(bs: Bootstrap): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (ino: number, prefix: string): void => {
    for (const e of bs.readdir(ino)) {
      const p = `${prefix}/${e.name.toString()}`;
      out.set(p, e.ino);
      if ((e.type & 0o170000) === 0o040000) walk(e.ino, p);
    }
  };
  walk(bs.superblock.rootIno, '');
  return out;
}
