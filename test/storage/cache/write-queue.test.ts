// The cache file's write queue (src/storage/cache/write-queue.ts): aligned blocks go out with O_DIRECT (adjacent ones
// batched), and a file that refuses O_DIRECT (tmpfs) gets the same bytes through the page cache.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { native } from '../../../src/native/index.js';
import { CacheWriteQueue } from '../../../src/storage/cache/write-queue.js';

function aligned(bytes: number, fill: number): Buffer {
  const b = native.alignedBuffer(bytes);
  b.fill(fill);
  return b;
}

/** A file on `root` with a buffered and (where the filesystem allows it) a direct descriptor. */
function open(root: string): { file: string; fd: number; direct: number; close: () => void } {
  const dir = fs.mkdtempSync(path.join(root, 'write-queue-'));
  const file = path.join(dir, 'data');
  const fd = fs.openSync(file, 'w+');
  fs.ftruncateSync(fd, 64 * 1024);
  let direct = -1;
  try {
    direct = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_DIRECT);
  } catch {
    // tmpfs refuses O_DIRECT at open on some kernels, at write on others
  }
  return { file, fd, direct, close: () => { fs.closeSync(fd); if (direct >= 0) fs.closeSync(direct); fs.rmSync(dir, { recursive: true }); } };
}

describe('cache write queue', () => {
  for (const [where, root] of [['ext4 (O_DIRECT)', '/var/tmp'], ['tmpfs (no O_DIRECT)', '/dev/shm']] as const) {
    it(`${where}: concurrent aligned blocks and a buffered write land byte-exact`, async () => {
      const f = open(root);
      const q = new CacheWriteQueue(f.fd, f.direct, f.file);
      const blocks = [0, 1, 2, 5, 6].map((i) => ({ offset: i * 4096, data: aligned(4096, i + 1) }));
      await Promise.all([
        ...blocks.map((b) => (q.acceptsDirect(b.data.length) ? q.writeDirect(b.offset, b.data) : q.writeBuffered(b.offset, b.data))),
        q.writeBuffered(3 * 4096 + 10, Buffer.from('buffered')),
      ]);
      const got = fs.readFileSync(f.file);
      for (const b of blocks) assert.ok(got.subarray(b.offset, b.offset + 4096).equals(b.data), `block at ${b.offset}`);
      assert.equal(got.subarray(3 * 4096 + 10, 3 * 4096 + 18).toString(), 'buffered');
      assert.ok(got.subarray(7 * 4096).every((x) => x === 0));
      f.close();
    });
  }

  it('a descriptor that refuses an aligned direct write (EINVAL) turns direct writes off and still writes the bytes', async () => {
    const f = open('/var/tmp');
    // a direct write at an unaligned offset is refused with EINVAL by the kernel: the queue falls back for good
    const q = new CacheWriteQueue(f.fd, f.direct, f.file);
    assert.ok(f.direct >= 0, '/var/tmp (ext4) takes O_DIRECT');
    await q.writeDirect(100, aligned(4096, 3));
    assert.ok(fs.readFileSync(f.file).subarray(100, 4196).every((x) => x === 3));
    assert.equal(q.acceptsDirect(4096), false);
    f.close();
  });
});
