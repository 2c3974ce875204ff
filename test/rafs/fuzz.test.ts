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

function exercise(data: Buffer): void {
  const bs = openBootstrap(data, { fileName: 'fuzz.boot' });
  walk(bs, (p, inode, parent) => {
    const type = inode.mode & 0o170000;
    bs.xattrs(inode.ino);
    if (type === 0o120000) bs.readlink(inode.ino);
    if (type === 0o100000) bs.chunks(inode.ino);
    if (type === 0o040000) bs.parentOf(inode.ino);
    if (p.length > 1) bs.lookup(parent, p.subarray(p.lastIndexOf(0x2f) + 1));
  });
}

function checkOutcome(fn: () => void, label: string): 'ok' | 'error' {
  try {
    fn();
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof Error, `${label}: threw a non-Error`);
    assert.ok(!(e instanceof TypeError) && !(e instanceof RangeError), `${label}: ${e.name}: ${e.message}\n${e.stack}`);
    assert.ok(e.message.length > 0, `${label}: empty message`);
    return 'error';
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
  const started = Date.now();
  const tally = { ok: 0, error: 0 };
  for (const [name, data, hot] of bootstraps) {
    assert.equal(checkOutcome(() => exercise(data), name), 'ok');
    const rnd = prng(0x5eed + data.length);
    for (let i = 0; i < 600; i++) tally[checkOutcome(() => exercise(mutate(data, rnd, hot)), `${name} case ${i}`)]++;
  }
  assert.ok(tally.error > 400 && tally.ok > 100, JSON.stringify(tally));
  assert.ok(Date.now() - started < 20_000, 'fuzz took too long');
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
    tally[checkOutcome(() => parseBlobMetaFile(rnd() < 0.05 ? b.subarray(0, Math.floor(b.length * rnd())) : b), `meta case ${i}`)]++;
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
