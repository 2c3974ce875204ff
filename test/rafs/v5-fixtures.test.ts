import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fixture, texture } from '../helpers/paths.js';
import { loadBootstrap, openBootstrap } from '../../src/rafs/bootstrap.js';
import { walk } from '../../src/rafs/walk.js';
import { digest } from '../../src/digest.js';
import { Compressor, Digester, type Bootstrap } from '../../src/image-model.js';
import { readFile } from './helpers/file-data.js';
import { renderResult, resultTreeFromBootstrap } from './helpers/tree-result.js';

const BLOB_PLAIN = '7334a2594e133cf8ae364189c2276b090fc490c627bcc3fb1077f0419a538e00';
const BLOB_LZ4 = 'd7b86b1e74e316fe945741d1a9fa1b271459fe41481e304977659e0c6ecf56ac';
const OLD = 'nydus-at-5be153feb0c08571e88934e9020c208d85aefeb0';
const expected = readFileSync(texture('repeatable', 'sha256-nocompress-repeatable.result'), 'utf8');

const cases = [
  { file: texture('repeatable', 'sha256-nocompress-repeatable'), blob: BLOB_PLAIN, compressor: Compressor.None, digester: Digester.Sha256, explicit: false },
  { file: texture('repeatable', 'blake3-lz4_block-non_repeatable'), blob: BLOB_PLAIN, compressor: Compressor.None, digester: Digester.Blake3, explicit: false },
  { file: fixture(OLD, 'tests', 'texture', 'repeatable', 'blake3-lz4_block-non_repeatable'), blob: BLOB_LZ4, compressor: Compressor.Lz4Block, digester: Digester.Blake3, explicit: true },
  { file: fixture(OLD, 'tests', 'texture', 'repeatable', 'sha256-nocompress-repeatable'), blob: BLOB_PLAIN, compressor: Compressor.None, digester: Digester.Sha256, explicit: false },
];

/** v5 inode digest rule (rafs-format.md 1.6), recomputed bottom-up from chunks, targets and children. */
function expectedDigest(bs: Bootstrap, ino: number): Buffer {
  const inode = bs.getInode(ino);
  const h = bs.superblock.digester;
  switch (inode.mode & 0o170000) {
    case 0o100000:
      return digest(h, Buffer.concat(bs.chunks(ino).map((c) => c.digest)));
    case 0o120000:
      return digest(h, bs.readlink(ino));
    case 0o040000:
      return digest(h, Buffer.concat(bs.readdir(ino).map((e) => bs.getInode(e.ino).digest!)));
    default:
      return digest(h, Buffer.alloc(0));
  }
}

for (const c of cases) {
  const label = path.relative(path.dirname(path.dirname(path.dirname(c.file))), c.file);
  test(`v5 ${label}: superblock and blob table`, () => {
    const bs = loadBootstrap(c.file);
    assert.equal(bs.superblock.version, 5);
    assert.equal(bs.superblock.compressor, c.compressor);
    assert.equal(bs.superblock.digester, c.digester);
    assert.equal(bs.superblock.explicitUidGid, c.explicit);
    assert.equal(bs.superblock.chunkSize, 0x100000);
    assert.equal(bs.superblock.rootIno, 1);
    assert.equal(bs.blobs.length, 1);
    // a normal (non-inlined) bootstrap keeps its recorded blob id even when loaded from a named file
    assert.equal(bs.blobs[0].blobId, c.blob);
    assert.equal(bs.blobs[0].compressor, c.compressor);
  });

  test(`v5 ${label}: tree and file contents reproduce the .result file`, () => {
    const bs = loadBootstrap(c.file);
    const blob = readFileSync(texture('repeatable', 'blobs', c.blob));
    const out = renderResult(resultTreeFromBootstrap(bs, (ino) => readFile(bs, ino, () => blob)));
    assert.equal(out, expected);
  });

  test(`v5 ${label}: every inode digest follows the merkle rule`, () => {
    const bs = loadBootstrap(c.file);
    let n = 0;
    walk(bs, (_p, inode) => {
      assert.ok(expectedDigest(bs, inode.ino).equals(inode.digest!), `inode ${inode.ino}`);
      n++;
    });
    assert.equal(n, 54);
  });

  test(`v5 ${label}: lookup finds every path and parentOf walks back`, () => {
    const bs = loadBootstrap(c.file);
    let found = 0;
    walk(bs, (p, inode, parent) => {
      if (inode.ino === 1) return;
      const parts = p.toString().split('/').filter(Boolean);
      let ino = 1;
      for (const part of parts) ino = bs.lookup(ino, Buffer.from(part))!.ino;
      assert.equal(ino, inode.ino);
      if ((inode.mode & 0o170000) === 0o040000) assert.equal(bs.parentOf(inode.ino), parent);
      found++;
    });
    assert.equal(found, 53);
    assert.equal(bs.lookup(1, Buffer.from('nope')), undefined);
    assert.equal(bs.parentOf(1), 1);
  });
}

test('v5: hardlinks share i_ino and chunks; HAS_HOLE-free files have sequential offsets', () => {
  const bs = openBootstrap(readFileSync(cases[0].file));
  const dir = bs.lookup(1, Buffer.from('hardlink-test'))!;
  const foo = bs.lookup(dir.ino, Buffer.from('foo'))!;
  const sh = bs.lookup(dir.ino, Buffer.from('test.sh'))!;
  assert.notEqual(foo.ino, sh.ino);
  assert.equal(foo.linkIno, sh.linkIno);
  assert.equal(foo.nlink, 3);
  assert.deepEqual(bs.chunks(foo.ino).map((c) => c.digest.toString('hex')), bs.chunks(sh.ino).map((c) => c.digest.toString('hex')));
  const holes = bs.lookup(bs.lookup(1, Buffer.from('normal-file-test'))!.ino, Buffer.from('holefiles'))!;
  const h1 = bs.lookup(holes.ino, Buffer.from('head-hole-1'))!;
  assert.deepEqual(bs.chunks(h1.ino).map((c) => c.fileOffset), [0, 0x100000, 0x200000]);
});

test('tree-result helper: an extracted copy of the image on disk renders the same .result', async () => {
  const { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { resultTreeFromDirectory } = await import('./helpers/tree-result.js');
  const bs = loadBootstrap(cases[0].file);
  const blob = readFileSync(texture('repeatable', 'blobs', BLOB_PLAIN));
  const root = mkdtempSync(path.join(tmpdir(), 'nydus-result-'));
  try {
    walk(bs, (p, inode) => {
      if (p.length === 1) return;
      const dest = path.join(root, p.toString());
      const type = inode.mode & 0o170000;
      if (type === 0o040000) mkdirSync(dest);
      else if (type === 0o120000) symlinkSync(bs.readlink(inode.ino).toString(), dest);
      else writeFileSync(dest, readFile(bs, inode.ino, () => blob));
    });
    assert.equal(renderResult(resultTreeFromDirectory(root)), expected);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
