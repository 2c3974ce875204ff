// Corruption fuzz: random byte flips, planted extreme integers and truncations of the fixture bootstraps and
// the blob-meta file. Every case must either work or fail with an Error that is not a Buffer/type accident.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { texture, fixture } from '../helpers/paths.js';
import { openBootstrap } from '../../src/rafs/bootstrap.js';
import { walk } from '../../src/rafs/walk.js';
import { parseBlobMetaFile } from '../../src/blob/meta-file.js';
import { extractBootstrap } from '../../src/blob/inline.js';
import { readTrailer } from '../../src/blob/trailer.js';
import { buildMiniV5, buildMiniV6 } from './helpers/mini-images.js';
import { prng } from '../helpers/prng.js';


const EXTREMES = [0, 1, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 12, 128, 4096];

/** A corrupted copy: a few random bytes, or an extreme u32 at an aligned offset, or a truncation. */
function mutate(src: Buffer, rnd: () => number, hot: number): Buffer {
  const kind = rnd();
  // 'hot' biases edits towards the metadata region where every byte is structural
  const pos = (): number => Math.floor((rnd() < 0.7 ? Math.min(hot, src.length) : src.length) * rnd());
  if (kind < 0.1) return Buffer.from(src.subarray(0, Math.floor(src.length * rnd())));
  const b = Buffer.from(src);
  if (kind < 0.55) {
    const n = 1 + Math.floor(rnd() * 4);
    for (let i = 0; i < n; i++) b[pos()] = Math.floor(rnd() * 256);
  } else {
    const off = Math.min(pos() & ~3, b.length - 4);
    b.writeUInt32LE(EXTREMES[Math.floor(rnd() * EXTREMES.length)], off);
  }
  return b;
}

const S_IFMT = 0o170000;
const TYPES = new Set([0o010000, 0o020000, 0o040000, 0o060000, 0o100000, 0o120000, 0o140000]);

/**
 * Opens and walks an image, reading everything the daemon would, and checks what a successful parse yields: a
 * reader that accepts corrupt data must still hand out only self-consistent values (types.ts: "none of them returns
 * data it did not check"), since the filesystem and the storage layer trust them.
 */
function exercise(data: Buffer): void {
  const bs = openBootstrap(data, { fileName: 'fuzz.boot' });
  const sb = bs.superblock;
  assert.equal(bs.size, data.length, 'bootstrap size');
  assert.ok(sb.chunkSize > 0 && (sb.chunkSize & (sb.chunkSize - 1)) === 0, `chunk size ${sb.chunkSize} is not a power of two`);
  bs.blobs.forEach((b, i) => {
    assert.equal(b.index, i, `blob ${i} index`);
    // the id names files (backend blob, cache files): it must be one safe file name
    assert.ok(b.blobId.length > 0 && !/[/\0]/.test(b.blobId) && b.blobId !== "." && b.blobId !== "..", `blob ${i} id ${JSON.stringify(b.blobId)} is not a file name`);
  });
  const root = bs.getInode(sb.rootIno);
  assert.equal(root.ino, sb.rootIno);
  assert.equal(root.mode & S_IFMT, 0o040000, 'the root is a directory');
  walk(bs, (p, inode, parent) => {
    const where = p.toString();
    const type = inode.mode & S_IFMT;
    assert.ok(TYPES.has(type), `${where}: file type 0o${type.toString(8)}`);
    assert.ok(Number.isSafeInteger(inode.ino) && inode.ino >= 0, `${where}: inode number ${inode.ino}`);
    assert.ok(Number.isSafeInteger(inode.size) && inode.size >= 0, `${where}: size ${inode.size}`);
    for (const [name] of bs.xattrs(inode.ino)) assert.ok(name.length > 0, `${where}: an xattr without a name`);
    if (type === 0o120000) assert.ok(bs.readlink(inode.ino).length > 0, `${where}: empty symlink target`);
    if (type === 0o100000) checkChunks(bs, inode.ino, inode.size, where);
    if (type === 0o040000) {
      const up = bs.parentOf(inode.ino);
      assert.equal(bs.getInode(up).mode & S_IFMT, 0o040000, `${where}: parent ${up} is not a directory`);
      const names = bs.readdir(inode.ino);
      for (let i = 0; i < names.length; i++) {
        const n = names[i]!;
        assert.ok(n.name.length > 0 && !n.name.includes(0x2f) && !n.name.includes(0), `${where}: entry name ${JSON.stringify(n.name.toString('latin1'))}`);
        assert.ok(!['.', '..'].includes(n.name.toString('latin1')), `${where}: lists ${n.name.toString()}`);
        if (i > 0) assert.ok(Buffer.compare(names[i - 1]!.name, n.name) < 0, `${where}: entries out of order or repeated at ${i}`);
      }
    }
    if (p.length > 1) {
      const name = p.subarray(p.lastIndexOf(0x2f) + 1);
      const found = bs.lookup(parent, name);
      assert.equal(found?.ino, inode.ino, `${where}: lookup finds another inode`);
    }
  });
}

/** A file's chunks: in file order without overlap, inside the file, each inside its blob. */
function checkChunks(bs: ReturnType<typeof openBootstrap>, ino: number, size: number, where: string): void {
  let end = 0;
  for (const c of bs.chunks(ino)) {
    const blob = bs.blobs[c.blobIndex];
    assert.ok(blob, `${where}: chunk names blob ${c.blobIndex} of ${bs.blobs.length}`);
    assert.ok(c.uncompressedSize > 0 && c.uncompressedSize <= bs.superblock.chunkSize, `${where}: chunk size ${c.uncompressedSize}`);
    assert.ok(c.fileOffset >= end, `${where}: chunk at file offset ${c.fileOffset} overlaps the previous one (ends at ${end})`);
    end = c.fileOffset + c.uncompressedSize;
    assert.ok(end <= size, `${where}: chunk ends at ${end}, beyond the file size ${size}`);
    if (blob.chunkCount > 0) assert.ok(c.index < blob.chunkCount, `${where}: chunk index ${c.index} beyond the blob's ${blob.chunkCount}`);
    if (blob.compressedSize > 0 && c.compressedSize > 0) {
      assert.ok(c.compressedOffset + c.compressedSize <= blob.compressedSize, `${where}: compressed range ${c.compressedOffset}+${c.compressedSize} beyond the blob (${blob.compressedSize})`);
    }
    if (blob.uncompressedSize > 0) {
      assert.ok(c.uncompressedOffset + c.uncompressedSize <= blob.uncompressedSize, `${where}: uncompressed range ${c.uncompressedOffset}+${c.uncompressedSize} beyond the blob (${blob.uncompressedSize})`);
    }
  }
}

function checkOutcome(fn: () => void, label: string): 'ok' | 'error' {
  try {
    fn();
    return 'ok';
  } catch (e) {
    // a broken invariant is the failure this fuzz exists to find, not an acceptable outcome
    if (e instanceof assert.AssertionError) throw new assert.AssertionError({ message: `${label}: ${e.message}` });
    assert.ok(e instanceof Error, `${label}: threw a non-Error`);
    assert.ok(!(e instanceof TypeError) && !(e instanceof RangeError), `${label}: ${e.name}: ${e.message}\n${e.stack}`);
    assert.ok(e.message.length > 0, `${label}: empty message`);
    return 'error';
  }
}

/** What a successfully parsed blob-meta file promises its users: every declared entry, each a real chunk, in order. */
function checkMeta(m: ReturnType<typeof parseBlobMetaFile>): void {
  assert.equal(m.table.count, m.header.ciEntries, 'entry count');
  let end = 0;
  for (let i = 0; i < m.table.count; i++) {
    const e = m.table.entry(i);
    assert.ok(e.uncompressedSize > 0 && e.uncompressedSize <= 0x100_0000, `ci entry ${i}: uncompressed size ${e.uncompressedSize}`);
    assert.ok(Number.isSafeInteger(e.compressedOffset) && Number.isSafeInteger(e.uncompressedOffset), `ci entry ${i}: offsets`);
    assert.ok(e.uncompressedOffset >= end, `ci entry ${i}: uncompressed range overlaps the previous entry`);
    end = e.uncompressedOffset + e.uncompressedSize;
  }
}

const OLD = 'nydus-at-5be153feb0c08571e88934e9020c208d85aefeb0';
const toc = readFileSync(texture('toc', '2fa78cad554b75ac91a4a125ed148d0ddeb25efa4aaa8bd80e5dc292690a4dca'));
const bootstraps: [string, Buffer, number][] = [
  ['v5 sha256', readFileSync(texture('repeatable', 'sha256-nocompress-repeatable')), 18648],
  ['v5 lz4 (old)', readFileSync(fixture(OLD, 'tests', 'texture', 'repeatable', 'blake3-lz4_block-non_repeatable')), 18584],
  ['v6 2.2', readFileSync(texture('bootstrap', 'rafs-v6-2.2.boot')), 12288],
  ['v6 inlined', extractBootstrap(toc), 12288],
  ['v6 mini', buildMiniV6(), 1 << 20],
  ['v5 mini', buildMiniV5(), 1 << 20],
];

test('fuzz: corrupted bootstraps open, walk and read or fail with a clear Error', () => {
  const tally = { ok: 0, error: 0 };
  for (const [name, data, hot] of bootstraps) {
    assert.equal(checkOutcome(() => exercise(data), name), 'ok');
    const rnd = prng(0x5eed + data.length);
    for (let i = 0; i < 600; i++) tally[checkOutcome(() => exercise(mutate(data, rnd, hot)), `${name} case ${i}`)]++;
  }
  assert.ok(tally.error > 400 && tally.ok > 100, JSON.stringify(tally));
});

test('fuzz: corrupted blob-meta file and toc blob', () => {
  const meta = readFileSync(texture('zran', '233c72f2b6b698c07021c4da367cfe2dff4f049efbaa885ca0ff760ea297865a.blob.meta'));
  const rnd = prng(42);
  const tally = { ok: 0, error: 0 };
  for (let i = 0; i < 300; i++) {
    // edits go to the CI entries, the context array or the header at the end
    const region = rnd();
    const b = Buffer.from(meta);
    const at = region < 0.4 ? Math.floor(rnd() * 163 * 24) : region < 0.7 ? 3912 + Math.floor(rnd() * 840) : meta.length - 4096 + Math.floor(rnd() * 64);
    if (rnd() < 0.5) b[at] = Math.floor(rnd() * 256);
    else b.writeUInt32LE(EXTREMES[Math.floor(rnd() * EXTREMES.length)], Math.min(at & ~3, b.length - 4));
    tally[checkOutcome(() => checkMeta(parseBlobMetaFile(rnd() < 0.05 ? b.subarray(0, Math.floor(b.length * rnd())) : b)), `meta case ${i}`)]++;
  }
  for (let i = 0; i < 300; i++) {
    const b = mutate(toc, rnd, toc.length);
    tally[checkOutcome(() => {
      readTrailer(b);
      exercise(extractBootstrap(b));
    }, `toc case ${i}`)]++;
  }
  assert.ok(tally.error > 100, JSON.stringify(tally));
});
