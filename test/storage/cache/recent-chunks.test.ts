// The process-wide budget of recently decoded chunks: oldest out first across every blob cache, each chunk released once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecentChunks } from '../../../src/storage/cache/recent-chunks.js';

const KiB = 1024;

test('one budget for all lists: the oldest chunk of the process goes first, whichever list holds it', () => {
  const budget = new RecentChunks(40 * KiB);
  const released: string[] = [];
  const a = budget.list((b) => released.push(`a:${b.length}`));
  const b = budget.list((buf) => released.push(`b:${buf.length}`));
  a.put(1, Buffer.alloc(10 * KiB));
  b.put(1, Buffer.alloc(10 * KiB + 1));
  a.put(2, Buffer.alloc(10 * KiB + 2));
  assert.deepEqual(released, []);
  b.put(2, Buffer.alloc(10 * KiB + 3));
  assert.deepEqual(released, ['a:10240'], 'over by 6 bytes: the oldest chunk (a:1) went');
  assert.equal(budget.bytes, 30 * KiB + 6);
  assert.equal(a.has(1), false);
  b.put(3, Buffer.alloc(15 * KiB));
  assert.deepEqual(released, ['a:10240', 'b:10241'], 'then b:1, the next oldest');
  assert.equal(a.get(2)!.length, 10 * KiB + 2);
  assert.ok(budget.bytes <= budget.limit);
  assert.equal(b.get(2)!.length, 10 * KiB + 3);
});

test('a replaced chunk is released once; a closed list gives its bytes back; tiny chunks count 1 KiB', () => {
  const budget = new RecentChunks(100 * KiB);
  let released = 0;
  const a = budget.list(() => released++);
  a.put(7, Buffer.alloc(5));
  assert.equal(budget.bytes, KiB);
  a.put(7, Buffer.alloc(2 * KiB));
  assert.equal(released, 1);
  assert.equal(budget.bytes, 2 * KiB);
  a.close();
  assert.equal(released, 2);
  assert.equal(budget.bytes, 0);
  assert.equal(budget.lists.size, 0);
  assert.equal(budget.admits(25 * KiB), true);
  assert.equal(budget.admits(25 * KiB + 1), false, 'no chunk takes more than a quarter of the budget');
});

test('recent chunks nobody asks for within the idle time are let go (their memory released)', async () => {
  // idle 300 ms, steps of 100: a timer late by up to ~200 ms on a loaded machine does not change the outcome
  const budget = new RecentChunks(100 * KiB, 300);
  let released = 0;
  const a = budget.list(() => released++);
  a.put(1, Buffer.alloc(2 * KiB));
  a.put(2, Buffer.alloc(2 * KiB));
  // a read keeps them alive
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(a.get(1));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(released, 0, 'used 100 ms ago: kept');
  const deadline = Date.now() + 5000;
  while (released < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(released, 2);
  assert.equal(budget.bytes, 0);
  assert.equal(a.has(1), false);
});
