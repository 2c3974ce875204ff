// The blob cache's write path: page-aligned chunk memory (alignedBuffer) written with pwritev on the libuv pool,
// through O_DIRECT where the filesystem allows it. The scratch files live on the project's own filesystem
// (os.tmpdir()), where the blob caches of the tests live too.
import assert from 'node:assert/strict';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { native } from '../../src/native/index.js';
import { prng } from '../helpers/prng.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'nydus-direct-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function randomBytes(n: number, seed: number): Buffer {
  const r = prng(seed);
  return Buffer.from(Array.from({ length: n }, () => Math.floor(r() * 256)));
}

function openDirect(file: string): number {
  try {
    return openSync(file, constants.O_WRONLY | constants.O_DIRECT);
  } catch (e) {
    assert.fail(`O_DIRECT is not available on ${scratch} (${(e as Error).message}): the blob cache would write through the page cache`);
  }
}

describe('alignedBuffer', () => {
  it('rounds the length up to 4 KiB and zeroes the padding', () => {
    for (const [size, cap] of [[0, 4096], [1, 4096], [4096, 4096], [4097, 8192], [1048576, 1048576], [700001, 700416]] as const) {
      const b = native.alignedBuffer(size);
      assert.equal(b.length, cap, `size ${size}`);
      assert.equal(b.byteOffset, 0);
      assert.ok(b.subarray(size).every((x) => x === 0), `padding of ${size} is not zero`);
    }
  });

  it('memory that V8 collected and malloc hands out again still comes with zero padding', () => {
    // dirty many buffers of one size, drop them, and ask again: whatever comes back has zero padding
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 64; i++) native.alignedBuffer(8192).fill(0xff);
      (globalThis as { gc?: () => void }).gc?.();
      const b = native.alignedBuffer(5000);
      assert.ok(b.subarray(5000).every((x) => x === 0));
    }
  });

  it('refuses sizes that are not byte counts', () => {
    assert.throws(() => native.alignedBuffer(-1), /size/);
    assert.throws(() => native.alignedBuffer(1.5), /size/);
    assert.throws(() => native.alignedBuffer(2 ** 40), /size/);
    assert.throws(() => (native.alignedBuffer as (x: unknown) => Buffer)('4096'), /size/);
  });
});

describe('pwritevAsync', () => {
  it('writes aligned buffers through an O_DIRECT fd, in order, at the offset', async () => {
    const file = path.join(scratch, 'direct');
    writeFileSync(file, Buffer.alloc(64 * 1024, 0x55));
    const a = native.alignedBuffer(8192);
    const b = native.alignedBuffer(4096);
    randomBytes(8192, 1).copy(a);
    randomBytes(4096, 2).copy(b);
    const fd = openDirect(file);
    try {
      assert.equal(await native.pwritevAsync(fd, [a, b], 16384, true), 12288);
      assert.equal(await native.pwritevAsync(fd, [], 0), 0);
    } finally {
      closeSync(fd);
    }
    const got = readFileSync(file);
    assert.equal(got.length, 64 * 1024);
    assert.ok(got.subarray(0, 16384).every((x) => x === 0x55));
    assert.ok(got.subarray(16384, 24576).equals(a));
    assert.ok(got.subarray(24576, 28672).equals(b));
    assert.ok(got.subarray(28672).every((x) => x === 0x55));
  });

  it('writes any buffers through a plain fd, extending the file', async () => {
    const file = path.join(scratch, 'plain');
    writeFileSync(file, '');
    const fd = openSync(file, 'r+');
    try {
      const parts = [Buffer.from('hello, '), Buffer.alloc(0), Buffer.from('world')];
      assert.equal(await native.pwritevAsync(fd, parts, 3), 12);
    } finally {
      closeSync(fd);
    }
    assert.deepEqual(readFileSync(file), Buffer.concat([Buffer.alloc(3), Buffer.from('hello, world')]));
  });

  it('rejects with the errno name: misaligned direct writes (EINVAL), a bad fd (EBADF)', async () => {
    const file = path.join(scratch, 'misaligned');
    writeFileSync(file, Buffer.alloc(8192));
    const fd = openDirect(file);
    try {
      // a Node Buffer's address is not page-aligned, and 100 bytes is not a block
      await assert.rejects(native.pwritevAsync(fd, [Buffer.alloc(100)], 0), (e: Error & { code?: string }) => e.code === 'EINVAL' && /pwritev/.test(e.message));
      await assert.rejects(native.pwritevAsync(fd, [native.alignedBuffer(4096)], 100), (e: Error & { code?: string }) => e.code === 'EINVAL');
    } finally {
      closeSync(fd);
    }
    assert.equal(statSync(file).size, 8192);
    const closed = openSync(file, 'r');
    closeSync(closed);
    await assert.rejects(native.pwritevAsync(closed, [Buffer.from('x')], 0), (e: Error & { code?: string }) => e.code === 'EBADF');
  });

  it('refuses bad arguments synchronously', () => {
    assert.throws(() => (native.pwritevAsync as (...a: unknown[]) => unknown)(1, 'not an array', 0), /array of Buffers/);
    assert.throws(() => (native.pwritevAsync as (...a: unknown[]) => unknown)(1, [1, 2], 0), /buffers/);
    assert.throws(() => (native.pwritevAsync as (...a: unknown[]) => unknown)(1, [], -1), /offset/);
    assert.throws(() => (native.pwritevAsync as (...a: unknown[]) => unknown)(1, [], 0, 'yes'), /background.*boolean/);
  });
});
