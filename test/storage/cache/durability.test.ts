// Durability batching (src/storage/cache/durability.ts) on a real file: written chunks become durable in batches (one
// fdatasync for many), at once on flush and close, and a failing fdatasync leaves its chunks unready.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DurabilityBatcher } from '../../../src/storage/cache/durability.js';

function tempFd(): { fd: number; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'durability-'));
  return { fd: fs.openSync(path.join(dir, 'data'), 'w+'), dir };
}

describe('durability batching', () => {
  it('chunks written close together become durable in one batch; has() is true until then', async () => {
    const { fd, dir } = tempFd();
    const batches: number[][] = [];
    const d = new DurabilityBatcher({ fd, durable: (k) => batches.push([...k]), failed: () => assert.fail('no failure expected') });
    for (const k of [1, 2, 3]) d.add(k);
    assert.ok(d.has(2));
    for (const deadline = Date.now() + 10_000; batches.length === 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(batches, [[1, 2, 3]]);
    assert.ok(!d.has(2));
    await d.close();
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true });
  });

  it('flush makes everything durable now, after what `settle` still waits for', async () => {
    const { fd, dir } = tempFd();
    const batches: number[][] = [];
    const d = new DurabilityBatcher({ fd, durable: (k) => batches.push([...k]), failed: () => assert.fail('no failure expected') });
    d.add(7);
    let late = true;
    await d.flush(async () => {
      if (!late) return false;
      late = false;
      d.add(8); // a fetch in flight finishing its write
      return true;
    });
    assert.deepEqual(batches.flat().sort(), [7, 8]);
    await d.close();
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true });
  });

  it('a failing fdatasync marks nothing and reports the batch', async () => {
    const [r, w] = pipeFds();
    const failures: { keys: number[]; code: string }[] = [];
    const d = new DurabilityBatcher({ fd: r, durable: () => assert.fail('nothing is durable on a pipe'), failed: (keys, err) => failures.push({ keys: [...keys], code: (err as NodeJS.ErrnoException).code! }) });
    d.add(1);
    d.add(2);
    await d.close();
    assert.deepEqual(failures, [{ keys: [1, 2], code: 'EINVAL' }]);
    assert.ok(!d.has(1) && !d.has(2));
    fs.closeSync(r);
    fs.closeSync(w);
  });
});

/** Two descriptors of a FIFO (opened read-write, so neither blocks): fdatasync on one fails with EINVAL, a stand-in for a failing disk. */
function pipeFds(): [number, number] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'durability-fifo-'));
  const p = path.join(dir, 'fifo');
  const made = spawnSync('mkfifo', [p], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`mkfifo ${p} failed: ${made.stderr}`);
  const r = fs.openSync(p, fs.constants.O_RDWR);
  const w = fs.openSync(p, fs.constants.O_RDWR);
  fs.rmSync(dir, { recursive: true });
  return [r, w];
}
