// v6 metadata layout details: the allocator mirrors nydus-image (the same placements its own unit
// test expects), dirent blocks, the chunk-format trick, prefetch table, chunk-table order, errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MetaAllocator, Layout } from '../../src/builder/v6-allocator.js';
import { build } from '../../src/builder/build.js';
import { defaultOptions } from '../../src/builder/context.js';
import { openBootstrap } from '../../src/rafs/bootstrap.js';
import { dir, file, listing, readFileData } from './helpers.js';

test('allocator places inodes and tails like nydus-image', () => {
  const a = new MetaAllocator();
  a.offset = 0;
  // a 32-byte inode without chunks
  let off = a.fromFree(32);
  if (off === 0) {
    off = a.offset;
    a.offset += 32;
  }
  a.align(32);
  assert.equal(off, 0);
  assert.equal(a.offset, 32);
  const step = (size: number, want: { offset: number; layout: Layout; data?: number; end: number }): void => {
    const p = a.withTail(32, size);
    a.align(32);
    assert.equal(p.offset, want.offset, `offset for ${size}`);
    assert.equal(p.layout, want.layout, `layout for ${size}`);
    if (want.data !== undefined) assert.equal(p.dataOffset, want.data, `data offset for ${size}`);
    assert.equal(a.offset, want.end, `end for ${size}`);
  };
  step(4064, { offset: 4096, layout: Layout.FlatInline, end: 8192 });
  step(4096, { offset: 32, layout: Layout.FlatPlain, data: 8192, end: 12288 });
  step(8160, { offset: 12288, layout: Layout.FlatInline, data: 16384, end: 20480 });
  step(8161, { offset: 64, layout: Layout.FlatPlain, data: 20480, end: 28672 });
  step(4096 + 3968, { offset: 96, layout: Layout.FlatInline, data: 28672, end: 32768 });
  step(4096 + 2048, { offset: 32768, layout: Layout.FlatInline, data: 36864, end: 40960 });
  step(1985, { offset: 40960, layout: Layout.FlatInline, end: 43008 });
  step(1984, { offset: 34848, layout: Layout.FlatInline, end: 43008 });
});

function withOut<T>(fn: (out: string) => T): T {
  const out = mkdtempSync(path.join(tmpdir(), 'nydus-writer-'));
  try {
    return fn(out);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

test('root nid 128, file length a multiple of 4K, contiguous files get a power-of-two chunk format', () => {
  withOut((out) => {
    const big = Buffer.alloc(5 * 4096 + 10, 0x41);
    big.fill(0x42, 4096);
    for (let i = 0; i < big.length; i += 4096) big[i] = i / 4096;
    const r = build({ root: dir('/', [file('big', big), file('small', 'abc')]), options: defaultOptions({ chunkSize: 4096 }), outputDir: out });
    const bs = openBootstrap(r.bootstrap);
    assert.equal(bs.superblock.rootIno, 128);
    assert.equal(r.bootstrap.length % 4096, 0);
    const ino = listing(bs).get('/big')!;
    assert.ok(readFileData(bs, ino, out).equals(big));
    // i_u of the file's inode: 0x20 | log2(format size) - 12 ; next_power_of_two(24586) = 32768
    const meta = r.bootstrap.readUInt32LE(1024 + 40) * 4096;
    const iu = r.bootstrap.readUInt32LE(meta + 32 * ino + 16);
    assert.equal(iu, 0x20 | 3);
    const small = listing(bs).get('/small')!;
    assert.equal(r.bootstrap.readUInt32LE(meta + 32 * small + 16), 0x20 | 0);
  });
});

test('chunk table is sorted by digest and every blob block is counted', () => {
  withOut((out) => {
    const files = Array.from({ length: 20 }, (_, i) => file(`f${i}`, `content ${i}`));
    const r = build({ root: dir('/', files), options: defaultOptions(), outputDir: out });
    const b = r.bootstrap;
    const off = Number(b.readBigUInt64LE(1152 + 24));
    const size = Number(b.readBigUInt64LE(1152 + 32));
    assert.equal(size, 20 * 80);
    for (let i = 1; i < 20; i++) assert.ok(Buffer.compare(b.subarray(off + 80 * (i - 1), off + 80 * (i - 1) + 32), b.subarray(off + 80 * i, off + 80 * i + 32)) < 0);
    assert.equal(b.readUInt32LE(1024 + 36), 20, 's_blocks = 20 aligned chunks');
    assert.equal(b.readUInt32LE(1408 + 64), 20, 'devslot blocks');
    assert.equal(b.readUInt32LE(1408 + 68) * 4096 % 0x80000, 0, 'mapped_blkaddr 512K aligned');
  });
});

test('prefetch: table lists the pattern nids and their files are dumped first', () => {
  withOut((out) => {
    const late = dir('zzz', [file('hot', 'hot data')]);
    const root = dir('/', [file('aaa', 'cold data'), late]);
    const r = build({ root, options: defaultOptions({ prefetch: [late] }), outputDir: out });
    const bs = openBootstrap(r.bootstrap);
    const l = listing(bs);
    assert.deepEqual(bs.superblock.prefetch, [l.get('/zzz')]);
    const hot = bs.chunks(l.get('/zzz/hot')!)[0];
    const cold = bs.chunks(l.get('/aaa')!)[0];
    assert.equal(hot.compressedOffset, 0);
    assert.ok(cold.compressedOffset > 0);
    const v5 = build({ root: dir('/', [file('aaa', 'cold data'), dir('zzz', [file('hot', 'hot data')])]), options: defaultOptions({ fsVersion: 5 }), outputDir: out });
    assert.deepEqual(openBootstrap(v5.bootstrap).superblock.prefetch, []);
  });
});

test('a build without file data writes no blob and no blob table entry', () => {
  withOut((out) => {
    const r = build({ root: dir('/', [file('empty', ''), dir('d', [])]), options: defaultOptions(), outputDir: out });
    assert.equal(r.blobId, undefined);
    assert.deepEqual(readdirSync(out), []);
    const bs = openBootstrap(r.bootstrap);
    assert.equal(bs.blobs.length, 0);
    assert.equal(r.bootstrap.readUInt32LE(1024 + 40), 0, 'meta_blkaddr 0 without blobs');
    assert.equal(bs.superblock.rootIno, 128);
  });
});

test('chunks found in the dictionary are referenced, not stored again', () => {
  withOut((out) => {
    const parent = build({ root: dir('/', [file('a', 'shared chunk'), file('b', 'only parent')]), options: defaultOptions(), outputDir: out });
    const pbs = openBootstrap(parent.bootstrap);
    const dict = new Map<string, import('../../src/image-model.js').ChunkInfo>();
    for (const ino of listing(pbs).values()) for (const c of pbs.chunks(ino)) dict.set(c.digest.toString('hex'), c);
    const child = build({ root: dir('/', [file('a2', 'shared chunk'), file('c', 'new')]), options: defaultOptions(), outputDir: out, parentBlobs: pbs.blobs, chunkDict: dict });
    const bs = openBootstrap(child.bootstrap);
    assert.equal(bs.blobs.length, 2);
    const l = listing(bs);
    assert.equal(bs.chunks(l.get('/a2')!)[0].blobIndex, 0);
    assert.equal(bs.chunks(l.get('/c')!)[0].blobIndex, 1);
    assert.equal(bs.blobs[1].chunkCount, 1);
    assert.ok(readFileData(bs, l.get('/a2')!, out).equals(Buffer.from('shared chunk')));
  });
});

test('bad inputs give clear errors', () => {
  withOut((out) => {
    const bad = file('x', 'y', { xattrs: new Map([['foo.bar', Buffer.from('1')]]) });
    assert.throws(() => build({ root: dir('/', [bad]), options: defaultOptions(), outputDir: out }), /namespaces/);
    const unsorted = dir('/', []);
    unsorted.children = [file('b', '1'), file('a', '2')];
    assert.throws(() => build({ root: unsorted, options: defaultOptions(), outputDir: out }), /not sorted/);
    assert.throws(() => defaultOptions({ chunkSize: 5000 }), /chunk size/);
    assert.throws(() => defaultOptions({ fsVersion: 5, blobToc: true }), /blob-toc/);
    const short = file('s', 'abc');
    short.inode.size = 10;
    assert.throws(() => build({ root: dir('/', [short]), options: defaultOptions(), outputDir: out }), /inode size/);
    assert.deepEqual(readdirSync(out), [], 'failed builds leave no temp files');
  });
});

test('file sources are streamed from a byte range of a local file', () => {
  withOut((out) => {
    const src = path.join(out, 'source.bin');
    const data = Buffer.alloc(3 * 4096 + 77);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    writeFileSync(src, Buffer.concat([Buffer.from('prefix'), data, Buffer.from('suffix')]));
    const node = file('f', '');
    node.inode.size = data.length;
    node.inode.source = { kind: 'file', path: src, offset: 6, length: data.length };
    const blobs = path.join(out, 'blobs');
    mkdirSync(blobs);
    const r = build({ root: dir('/', [node]), options: defaultOptions({ chunkSize: 4096 }), outputDir: blobs });
    const bs = openBootstrap(r.bootstrap);
    assert.equal(bs.chunks(listing(bs).get('/f')!).length, 4);
    assert.ok(readFileData(bs, listing(bs).get('/f')!, blobs).equals(data));
    node.inode.chunks = undefined;
    node.inode.source = { kind: 'file', path: src, offset: 6 + 100, length: data.length };
    assert.throws(() => build({ root: dir('/', [node]), options: defaultOptions({ chunkSize: 4096 }), outputDir: blobs }), /file ended/);
  });
});
