import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openBootstrap } from '../../src/rafs/bootstrap.js';
import { walk } from '../../src/rafs/walk.js';
import { RafsError } from '../../src/image-model.js';
import { buildMiniV5, buildMiniV6, MINI_V6 } from './helpers/mini-images.js';

test('v6 mini image: compact inodes, special files, xattrs, multi-block FLAT_PLAIN directory', () => {
  const bs = openBootstrap(buildMiniV6());
  const root = MINI_V6.rootNid;
  const names = bs.readdir(root).map((e) => `${e.name}:${e.type.toString(8)}`);
  assert.deepEqual(names, ['big:40000', 'cdev:20000', 'f:100000', 'fifo:10000', 'link:120000']);
  const cdev = bs.lookup(root, Buffer.from('cdev'))!;
  assert.equal(cdev.rdev, 0x12345);
  assert.equal(cdev.uid, 7);
  assert.equal(cdev.mtime, 0);
  const link = bs.lookup(root, Buffer.from('link'))!;
  assert.equal(bs.readlink(link.ino).toString(), MINI_V6.linkTarget);
  const f = bs.lookup(root, Buffer.from('f'))!;
  assert.equal(f.hasXattr, true);
  assert.equal(f.uid, 1000);
  assert.equal(f.mtime, 1700000000);
  assert.deepEqual([...bs.xattrs(f.ino)].map(([k, v]) => `${k}=${v.toString('hex')}`).sort(), [
    'security.selinux=63747800', 'system.posix_acl_access=02000000', 'user.foo=626172',
  ]);
  const [chunk] = bs.chunks(f.ino);
  assert.equal(chunk.uncompressedSize, MINI_V6.fileSize);
  assert.equal(chunk.compressedSize, 1234);
  const big = bs.lookup(root, Buffer.from('big'))!;
  const entries = bs.readdir(big.ino);
  assert.equal(entries.length, MINI_V6.bigEntries);
  for (let i = 0; i < MINI_V6.bigEntries; i += 7) {
    assert.equal(bs.lookup(big.ino, Buffer.from(`e${String(i).padStart(3, '0')}`))!.ino, f.ino);
  }
  assert.equal(bs.lookup(big.ino, Buffer.from('e399'))!.ino, f.ino);
  assert.equal(bs.lookup(big.ino, Buffer.from('e400')), undefined);
  assert.equal(bs.lookup(big.ino, Buffer.from('a')), undefined);
  assert.equal(bs.parentOf(big.ino), root);
  let count = 0;
  walk(bs, () => count++);
  assert.equal(count, 1 + 5 + MINI_V6.bigEntries);
});

test('v6 mini image: unknown i_format bits and dirent loops are RafsErrors', () => {
  const img = buildMiniV6();
  const bs = openBootstrap(img);
  const f = bs.lookup(MINI_V6.rootNid, Buffer.from('f'))!;
  const bad = Buffer.from(img);
  bad.writeUInt16LE(bad.readUInt16LE(8192 + 32 * f.ino) | 0x10, 8192 + 32 * f.ino);
  assert.throws(() => openBootstrap(bad).getInode(f.ino), { message: `v6 inode nid ${f.ino}: i_format has unknown bits 0x10` });
  // point 'big' at the root: the walk must notice the directory it already entered
  const looped = Buffer.from(img);
  const big = bs.lookup(MINI_V6.rootNid, Buffer.from('big'))!;
  const rootTail = 8192 + 32 * MINI_V6.rootNid + 64;
  assert.equal(Number(looped.readBigUInt64LE(rootTail + 24)), big.ino);
  looped.writeBigUInt64LE(BigInt(MINI_V6.rootNid), rootTail + 24);
  assert.throws(() => walk(openBootstrap(looped), () => {}), RafsError);
});

test('v5 mini image: xattrs, HAS_HOLE chunk offsets, symlink', () => {
  const bs = openBootstrap(buildMiniV5());
  assert.equal(bs.superblock.version, 5);
  const a = bs.lookup(1, Buffer.from('a'))!;
  assert.equal(a.hasXattr, true);
  assert.deepEqual([...bs.xattrs(a.ino)].map(([k, v]) => `${k}=${v}`), ['user.k=v1', 'trusted.overlay.opaque=y']);
  assert.deepEqual(bs.chunks(a.ino).map((c) => c.fileOffset), [0, 0x200000]);
  assert.equal(bs.readlink(bs.lookup(1, Buffer.from('s'))!.ino).toString(), 'a/b');
  assert.deepEqual(bs.readdir(1).map((e) => e.name.toString()), ['a', 's']);
  assert.throws(() => bs.readlink(a.ino), RafsError);
});

test('blob ids: inlined-meta blobs take the bootstrap file name without extensions', async () => {
  const { stripExtensions } = await import('../../src/rafs/common.js');
  assert.equal(stripExtensions('/x/y/abc.boot.tar.gz'), 'abc');
  assert.equal(stripExtensions('plain'), 'plain');
  const img = buildMiniV6();
  assert.equal(openBootstrap(img, { fileName: 'abc.boot' }).blobs[0].blobId, 'ab'.repeat(32));
  img.writeUInt32LE(0x4000_0003, 4096 + 84);
  assert.equal(openBootstrap(img).blobs[0].blobId, 'ab'.repeat(32));
  assert.equal(openBootstrap(img, { fileName: '/d/abc.boot' }).blobs[0].blobId, 'abc');
  img.writeUInt32LE(0x4000_0013, 4096 + 84);
  assert.equal(openBootstrap(img, { fileName: '/d/abc.boot' }).blobs[0].blobId, 'ab'.repeat(32), 'SEPARATE keeps its id');
});
