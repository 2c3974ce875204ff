// Rebuilds the tree of fixture repeatable/sha256-nocompress-repeatable (files read from blob
// 7334a259…) with our writers: as v6 the chunk-data region must equal the original blob byte for
// byte (rafs-format.md 7.9); as v5 every inode digest must equal the fixture's. The v6 image is also mounted by
// the kernel's EROFS driver, an independent reader, as a check of the metadata (CI runs as root; a mount
// that fails is a failure, never a skip).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build } from '../../src/builder/build.js';
import { defaultOptions } from '../../src/builder/context.js';
import { treeFromBootstrap } from '../../src/builder/from-bootstrap.js';
import type { TreeNode } from '../../src/builder/tree.js';
import { openBootstrap } from '../../src/rafs/bootstrap.js';
import { Compressor, Digester, type Bootstrap } from '../../src/image-model.js';
import { texture } from '../helpers/paths.js';
import { listing, readFileData } from './helpers.js';

const BLOB_ID = '7334a2594e133cf8ae364189c2276b090fc490c627bcc3fb1077f0419a538e00';

function fixtureTree(): { bs: Bootstrap; root: TreeNode } {
  const bs = openBootstrap(readFileSync(texture('repeatable', 'sha256-nocompress-repeatable')));
  const root = treeFromBootstrap(bs);
  const byPath = new Map<string, TreeNode>();
  const walk = (n: TreeNode, p: string): void => {
    byPath.set(p, n);
    for (const c of n.children ?? []) walk(c, `${p}/${c.name.toString()}`);
  };
  walk(root, '');
  const blobDir = path.dirname(texture('repeatable', 'blobs', BLOB_ID));
  for (const [p, ino] of listing(bs)) {
    const n = byPath.get(p)!;
    if ((n.inode.mode & 0o170000) === 0o100000 && !n.inode.source) {
      n.inode.source = { kind: 'buffer', data: readFileData(bs, ino, blobDir) };
      n.inode.chunks = undefined;
    }
  }
  return { bs, root };
}

test('v6 rebuild of the repeatable fixture: identical chunk data, same tree, as the kernel mounts it', () => {
  const out = mkdtempSync(path.join(tmpdir(), 'nydus-writer-'));
  try {
    const { bs, root } = fixtureTree();
    const r = build({
      root,
      options: defaultOptions({ fsVersion: 6, compressor: Compressor.None, digester: Digester.Sha256, explicitUidGid: false, blobToc: true, chunkSize: bs.superblock.chunkSize }),
      outputDir: out,
    });
    const original = readFileSync(texture('repeatable', 'blobs', BLOB_ID));
    const ours = readFileSync(r.blobPath!);
    assert.ok(ours.subarray(0, original.length).equals(original), 'chunk-data region equals blob 7334a259…');
    const b6 = openBootstrap(r.bootstrap);
    const want = listing(bs);
    const got = listing(b6);
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    const blobDir = path.dirname(texture('repeatable', 'blobs', BLOB_ID));
    for (const [p, ino] of want) {
      const a = bs.getInode(ino);
      const b = b6.getInode(got.get(p)!);
      assert.equal(b.mode, a.mode, p);
      if ((a.mode & 0o170000) !== 0o040000) assert.equal(b.size, a.size, p);
      assert.equal(b.nlink, a.nlink, p);
      if ((a.mode & 0o170000) === 0o100000) assert.ok(readFileData(b6, got.get(p)!, out).equals(readFileData(bs, ino, blobDir)), p);
      if ((a.mode & 0o170000) === 0o120000) assert.ok(b6.readlink(got.get(p)!).equals(bs.readlink(ino)), p);
    }
    kernelCheck(r.bootstrap, out, b6);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('v5 rebuild of the repeatable fixture: inode digests and blob id match', () => {
  const out = mkdtempSync(path.join(tmpdir(), 'nydus-writer-'));
  try {
    const { bs, root } = fixtureTree();
    const r = build({
      root,
      options: defaultOptions({ fsVersion: 5, compressor: Compressor.None, digester: Digester.Sha256, explicitUidGid: false, chunkSize: bs.superblock.chunkSize }),
      outputDir: out,
    });
    assert.equal(r.blobId, BLOB_ID, 'the v5 blob is the fixture blob byte for byte');
    const b5 = openBootstrap(r.bootstrap);
    assert.equal(r.bootstrap.length, readFileSync(texture('repeatable', 'sha256-nocompress-repeatable')).length);
    const want = listing(bs);
    const got = listing(b5);
    assert.ok(b5.getInode(b5.superblock.rootIno).digest!.equals(bs.getInode(bs.superblock.rootIno).digest!), 'root digest');
    for (const [p, ino] of want) {
      const a = bs.getInode(ino);
      const b = b5.getInode(got.get(p)!);
      assert.ok(b.digest!.equals(a.digest!), `${p} digest`);
      assert.equal(b.size, a.size, `${p} size`);
      assert.equal(b.linkIno, a.linkIno, `${p} inode number`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

/** Mounts the bootstrap with the kernel EROFS driver (metadata only) and compares every entry. */
function kernelCheck(bootstrap: Buffer, out: string, bs: Bootstrap): void {
  assert.equal(process.getuid?.(), 0, 'the kernel EROFS mount needs root (CI runs as root)');
  const img = path.join(out, 'image.boot');
  const mnt = path.join(out, 'mnt');
  writeFileSync(img, bootstrap);
  mkdirSync(mnt);
  const m = spawnSync('mount', ['-t', 'erofs', '-o', 'loop,ro', img, mnt], { encoding: 'utf8' });
  assert.equal(m.status, 0, `mount -t erofs of the rebuilt v6 bootstrap failed: ${m.error?.message ?? m.stderr}`);
  try {
    const entries = listing(bs);
    // every path the kernel lists (symlinks not followed), against the image's
    const seen: string[] = [];
    const walk = (rel: string): void => {
      for (const n of readdirSync(path.join(mnt, rel))) {
        seen.push(`${rel}/${n}`);
        if (lstatSync(path.join(mnt, rel, n)).isDirectory()) walk(`${rel}/${n}`);
      }
    };
    walk('');
    assert.deepEqual(seen.sort(), [...entries.keys()].sort(), 'the kernel lists other paths');
    for (const [p, ino] of entries) {
      const st = lstatSync(path.join(mnt, p));
      const i = bs.getInode(ino);
      assert.equal(st.mode, i.mode, `kernel mode of ${p}`);
      if ((i.mode & 0o170000) !== 0o040000) assert.equal(st.size, i.size, `kernel size of ${p}`);
      assert.equal(st.nlink, i.nlink, `kernel nlink of ${p}`);
      if ((i.mode & 0o170000) === 0o120000) assert.equal(readlinkSync(path.join(mnt, p), { encoding: 'buffer' }).toString('hex'), bs.readlink(ino).toString('hex'));
    }
  } finally {
    execFileSync('umount', [mnt], { stdio: 'pipe' });
  }
}
