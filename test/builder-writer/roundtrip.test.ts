// Builds small in-memory trees as v5 and v6 images with every compressor and digester, then reads
// them back through the bootstrap reader and the blob files: same tree, attributes, xattrs, links
// and contents; blob id rule; CI entries agree with the chunk table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { build } from '../../src/builder/build.js';
import { defaultOptions, type BuildOptions } from '../../src/builder/context.js';
import type { TreeNode } from '../../src/builder/tree.js';
import { openBootstrap } from '../../src/rafs/bootstrap.js';
import { BlobFeature, ChunkFlag, Compressor, Digester, SuperFlag, type Bootstrap } from '../../src/image-model.js';
import { parseMetaHeader, parseCiTable, META_HEADER_SIZE } from '../../src/blob/meta.js';
import { readTrailer } from '../../src/blob/trailer.js';
import { extractBootstrap } from '../../src/blob/inline.js';
import { decompress } from '../../src/compress.js';
import { crc32c, digest } from '../../src/digest.js';
import { dir, file, inode, listing, readFileData, symlink } from './helpers.js';

const CHUNK = 0x1000;

function pseudoRandom(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** A tree touching every object kind the writers handle. */
function sampleTree(): TreeNode {
  const shared = file('hard-a', 'hardlinked content\n', { uid: 1000, gid: 100, mtime: 1_700_000_000, mtimeNsec: 5 });
  const hardB: TreeNode = { name: Buffer.from('hard-b'), inode: shared.inode };
  const hardC: TreeNode = { name: Buffer.from('hard-c'), inode: shared.inode };
  const text = Buffer.from('hello world, '.repeat(1000)); // compressible, 3 chunks
  const random = pseudoRandom(3 * CHUNK + 100, 7); // incompressible: stored raw
  const many = Array.from({ length: 300 }, (_, i) => file(`entry-with-a-long-name-${String(i).padStart(4, '0')}`, `f${i % 3}`));
  return dir('/', [
    file('empty', ''),
    file('text.txt', text, { mtime: 1234, uid: 70000, gid: 80000 }),
    file('random.bin', random),
    file('dup-of-text', text),
    file('xattrs', 'x', {
      xattrs: new Map([
        ['user.comment', Buffer.from('hi')],
        ['security.capability', Buffer.from([1, 0, 0, 2, 0, 0, 0, 0])],
        ['trusted.overlay.opaque', Buffer.from('y')],
        ['system.posix_acl_access', Buffer.from([2, 0, 0, 0])],
      ]),
    }),
    shared,
    symlink('link', 'text.txt'),
    symlink('long-link', 'a/'.repeat(600)),
    { name: Buffer.from('chr'), inode: inode(0o020644, { rdev: (1 << 8) | 3 }) },
    { name: Buffer.from('blk'), inode: inode(0o060600, { rdev: (8 << 8) | 1 }) },
    { name: Buffer.from('fifo'), inode: inode(0o010644) },
    { name: Buffer.from('sock'), inode: inode(0o140755) },
    dir('sub', [hardB, dir('deeper', [hardC, file('leaf', 'leaf data')]), dir('empty-dir', [])], { mode: 0o040700 } as never),
    dir('big', many),
  ]);
}

interface Expect {
  mode: number;
  size?: number;
  data?: Buffer;
  target?: Buffer;
  xattrs: Map<string, Buffer>;
  nlink?: number;
  uid: number;
  gid: number;
  mtime: number;
  rdev: number;
}

function expectations(root: TreeNode): Map<string, Expect> {
  const out = new Map<string, Expect>();
  const walk = (n: TreeNode, prefix: string): void => {
    for (const c of n.children ?? []) {
      const p = `${prefix}/${c.name.toString()}`;
      const i = c.inode;
      const src = i.source?.kind === 'buffer' ? i.source.data : undefined;
      out.set(p, { mode: i.mode, size: (i.mode & 0o170000) === 0o040000 ? undefined : i.size, data: src, target: i.symlink, xattrs: i.xattrs, uid: i.uid, gid: i.gid, mtime: i.mtime, rdev: i.rdev });
      if (c.children) walk(c, p);
    }
  };
  walk(root, '');
  return out;
}

function checkImage(bs: Bootstrap, exp: Map<string, Expect>, blobDir: string, explicit: boolean): void {
  const got = listing(bs);
  assert.deepEqual([...got.keys()].sort(), [...exp.keys()].sort());
  const linkIno = new Map<string, number>();
  for (const [p, e] of exp) {
    const ino = got.get(p)!;
    const i = bs.getInode(ino);
    assert.equal(i.mode, e.mode, `${p} mode`);
    if (e.size !== undefined) assert.equal(i.size, e.size, `${p} size`);
    if (explicit) {
      assert.equal(i.uid, e.uid, `${p} uid`);
      assert.equal(i.gid, e.gid, `${p} gid`);
    }
    assert.equal(i.mtime, e.mtime, `${p} mtime`);
    const fmt = e.mode & 0o170000;
    if (fmt === 0o020000 || fmt === 0o060000) assert.equal(i.rdev, e.rdev, `${p} rdev`);
    if (e.data) assert.ok(readFileData(bs, ino, blobDir).equals(e.data), `${p} content`);
    if (e.target) assert.ok(bs.readlink(ino).equals(e.target), `${p} target`);
    assert.deepEqual(bs.xattrs(ino), e.xattrs, `${p} xattrs`);
    if (p.endsWith('/hard-a') || p.endsWith('/hard-b') || p.endsWith('/hard-c')) {
      assert.equal(i.nlink, 3, `${p} nlink`);
      linkIno.set(p, i.linkIno);
    }
  }
  assert.equal(new Set(linkIno.values()).size, 1, 'hardlinks share one inode number');
  const sub = bs.getInode(got.get('/sub')!);
  if (bs.superblock.version === 6) assert.equal(sub.nlink, 4, 'dir nlink = 2 + subdirs');
}

/** Parses the CI table of a v6 blob and checks it against the bootstrap's chunks. */
function checkBlob(bs: Bootstrap, blobPath: string, opts: BuildOptions): void {
  const blob = readFileSync(blobPath);
  const info = bs.blobs[bs.blobs.length - 1];
  // Blob id: sha256 of the file, minus the blob.digest payload.
  const records = opts.blobToc || opts.blobInlineMeta ? readTrailer(blob) : [];
  const dg = records.find((r) => r.name === 'blob.digest');
  const h = createHash('sha256');
  if (dg) h.update(blob.subarray(0, dg.offset)).update(blob.subarray(dg.offset + dg.size));
  else h.update(blob);
  assert.equal(h.digest('hex'), path.basename(blobPath), 'blob id rule');
  if (!opts.blobInlineMeta) assert.equal(info.blobId, path.basename(blobPath));
  if (opts.fsVersion !== 6) return;
  const header = parseMetaHeader(blob.subarray(info.ciOffset + info.ciCompressedSize, info.ciOffset + info.ciCompressedSize + META_HEADER_SIZE));
  assert.equal(header.features, info.features);
  assert.equal(header.ciEntries, info.chunkCount);
  const ciRaw = blob.subarray(info.ciOffset, info.ciOffset + info.ciCompressedSize);
  const ci = parseCiTable(header.ciCompressor === Compressor.None ? ciRaw : decompress(header.ciCompressor, ciRaw, header.ciUncompressedSize), header.ciEntries, false);
  const seen = new Set<number>();
  const walk = (ino: number): void => {
    for (const e of bs.readdir(ino)) {
      if ((e.type & 0o170000) === 0o040000) walk(e.ino);
      if ((e.type & 0o170000) !== 0o100000) continue;
      for (const c of bs.chunks(e.ino)) {
        const x = ci[c.index];
        assert.equal(x.compressedOffset, c.compressedOffset);
        assert.equal(x.compressedSize, c.compressedSize);
        assert.equal(x.uncompressedOffset, c.uncompressedOffset);
        assert.equal(x.uncompressedSize, c.uncompressedSize);
        assert.equal(x.compressed, (c.flags & ChunkFlag.COMPRESSED) !== 0);
        assert.ok(c.flags & ChunkFlag.HAS_CRC32);
        seen.add(c.index);
      }
    }
  };
  walk(bs.superblock.rootIno);
  assert.equal(seen.size, ci.length, 'every CI entry is used by some file');
  if (dg) {
    const arr = blob.subarray(dg.offset, dg.offset + dg.size);
    assert.equal(arr.length, 32 * ci.length);
  }
}

const combos: Array<[5 | 6, Compressor, Digester]> = [];
for (const v of [5, 6] as const) for (const c of [Compressor.None, Compressor.Lz4Block, Compressor.Zstd, Compressor.Gzip]) for (const d of [Digester.Blake3, Digester.Sha256]) combos.push([v, c, d]);

for (const [version, compressor, digester] of combos) {
  test(`v${version} ${Compressor[compressor]} ${Digester[digester]}: tree reads back`, () => {
    const out = mkdtempSync(path.join(tmpdir(), 'nydus-writer-'));
    try {
      const root = sampleTree();
      const exp = expectations(root);
      const opts = defaultOptions({ fsVersion: version, compressor, digester, chunkSize: CHUNK, blobToc: version === 6 });
      const r = build({ root, options: opts, outputDir: out });
      assert.ok(r.blobId && r.blobPath);
      assert.equal(readdirSync(out).length, 1, 'only the blob is left in the output dir');
      const bs = openBootstrap(r.bootstrap);
      assert.equal(bs.superblock.version, version);
      assert.equal(bs.superblock.compressor, compressor);
      assert.equal(bs.superblock.digester, digester);
      assert.ok(bs.superblock.flags & SuperFlag.HAS_XATTR);
      if (version === 6) assert.equal(r.bootstrap.length % 4096, 0);
      checkImage(bs, exp, out, true);
      checkBlob(bs, r.blobPath, opts);
      // Chunk digests and CRCs describe the uncompressed bytes.
      const got = listing(bs);
      for (const c of bs.chunks(got.get('/text.txt')!)) {
        const data = readFileData(bs, got.get('/text.txt')!, out).subarray(c.fileOffset, c.fileOffset + c.uncompressedSize);
        assert.ok(digest(digester, data).equals(c.digest));
        assert.equal(c.crc32, crc32c(data) >>> 0);
      }
      // Dedup: the duplicate file references the same chunks.
      assert.deepEqual(bs.chunks(got.get('/dup-of-text')!).map((c) => c.index), bs.chunks(got.get('/text.txt')!).map((c) => c.index));
      if (compressor !== Compressor.None) {
        assert.ok(bs.chunks(got.get('/text.txt')!).some((c) => c.flags & ChunkFlag.COMPRESSED), 'compressible chunks are compressed');
        assert.ok(bs.chunks(got.get('/random.bin')!).every((c) => !(c.flags & ChunkFlag.COMPRESSED)), 'incompressible chunks stay raw');
      }
      if (version === 5) {
        // v5 inode digests follow the merkle rule.
        const t = bs.getInode(got.get('/text.txt')!);
        assert.ok(t.digest!.equals(digest(digester, Buffer.concat(bs.chunks(got.get('/text.txt')!).map((c) => c.digest)))));
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
}

test('repeatable build: uid/gid flag cleared and output is deterministic', () => {
  const out1 = mkdtempSync(path.join(tmpdir(), 'nydus-writer-'));
  const out2 = mkdtempSync(path.join(tmpdir(), 'nydus-writer-'));
  try {
    const opts = defaultOptions({ explicitUidGid: false, chunkSize: CHUNK, blobToc: true });
    const a = build({ root: sampleTree(), options: opts, outputDir: out1 });
    const b = build({ root: sampleTree(), options: opts, outputDir: out2 });
    assert.ok(a.bootstrap.equals(b.bootstrap));
    assert.equal(a.blobId, b.blobId);
    assert.equal(openBootstrap(a.bootstrap).superblock.explicitUidGid, false);
  } finally {
    rmSync(out1, { recursive: true, force: true });
    rmSync(out2, { recursive: true, force: true });
  }
});

for (const blobToc of [false, true]) {
  test(`inline meta${blobToc ? ' with blob-toc' : ''}: bootstrap is inside the blob`, () => {
    const out = mkdtempSync(path.join(tmpdir(), 'nydus-writer-'));
    try {
      const opts = defaultOptions({ chunkSize: CHUNK, blobToc, blobInlineMeta: true });
      const r = build({ root: sampleTree(), options: opts, outputDir: out });
      const blob = readFileSync(r.blobPath!);
      const inner = extractBootstrap(blob);
      assert.ok(inner.equals(r.bootstrap));
      const bs = openBootstrap(inner, { fileName: path.basename(r.blobPath!) });
      assert.equal(bs.blobs[0].blobId, r.blobId, 'placeholder id replaced by the file name');
      assert.ok(bs.blobs[0].features & BlobFeature.INLINED_FS_META);
      checkBlob(bs, r.blobPath!, opts);
      checkImage(bs, expectations(sampleTree()), out, true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
}
