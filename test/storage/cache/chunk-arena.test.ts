// The recycled chunk memory: a slot is reused only after every holder let go, views are page-aligned with zero
// padding, and misuse (a hold after the last release, releasing twice) is an error rather than shared bytes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ChunkArena } from '../../../src/storage/cache/chunk-arena.js';

describe('ChunkArena', () => {
  it('hands out page-aligned slots with zero padding, up to its budget', () => {
    const arena = new ChunkArena(10_000, 8 * 1024 * 1024);
    assert.equal(arena.slotSize, 12288);
    const a = arena.take(5000)!;
    assert.equal(a.length, 5000);
    assert.equal(a.byteOffset % 4096, 0);
    assert.ok(Buffer.from(a.buffer, a.byteOffset + 5000, 8192 - 5000).every((x) => x === 0));
    assert.equal(arena.take(12289), undefined, 'a chunk larger than a slot gets no slot');
    const all = [a];
    for (let b = arena.take(12288); b; b = arena.take(12288)) all.push(b);
    assert.equal(all.length, Math.floor((8 * 1024 * 1024) / 12288));
    assert.equal(arena.used, all.length);
    // no two views share memory: no two start at the same address of one block, and within a block each view's
    // slot ends before the next one starts
    const blocks = new Map<ArrayBufferLike, number>();
    const blockOf = (v: Buffer) => blocks.get(v.buffer) ?? blocks.set(v.buffer, blocks.size).get(v.buffer)!;
    const slots = all.map((v) => ({ block: blockOf(v), start: v.byteOffset, end: v.byteOffset + arena.slotSize }));
    assert.equal(new Set(slots.map((s) => `${s.block}:${s.start}`)).size, all.length, 'two slots were handed out at the same address');
    slots.sort((x, y) => x.block - y.block || x.start - y.start);
    for (let i = 1; i < slots.length; i++) {
      const [prev, cur] = [slots[i - 1]!, slots[i]!];
      if (cur.block === prev.block) assert.ok(cur.start >= prev.end, `slot at ${cur.start} overlaps the one at ${prev.start}`);
    }
    for (let i = 1; i < all.length; i++) all[i]!.fill(i & 0xff);
    for (let i = 1; i < all.length; i++) assert.ok(all[i]!.every((x) => x === (i & 0xff)), `slot ${i} was overwritten`);
  });

  it('reuses a slot only when its last holder releases it', () => {
    const arena = new ChunkArena(4096, 4096 * 2);
    const a = arena.take(4096)!;
    const b = arena.take(4096)!;
    assert.equal(arena.take(4096), undefined);
    a.fill(0xaa);
    const lease = arena.lease();
    const view = lease.keep(a.subarray(100, 200));
    arena.release(a); // the fetch lets go; the lease still holds it
    assert.equal(arena.take(4096), undefined);
    assert.ok(view.every((x) => x === 0xaa));
    lease.release();
    lease.release(); // a second release of the same lease does nothing
    const c = arena.take(1000)!;
    assert.equal(c.byteOffset, a.byteOffset, 'the freed slot is the one handed out again');
    assert.ok(Buffer.from(c.buffer, c.byteOffset + 1000, 3096).every((x) => x === 0), 'the padding is zeroed again on reuse');
    arena.release(b);
    arena.release(c);
    assert.equal(arena.used, 0);
  });

  it('leaves memory from elsewhere alone and refuses holds on freed slots', () => {
    const arena = new ChunkArena(4096, 4096);
    const outside = Buffer.alloc(4096);
    assert.equal(arena.owns(outside), false);
    assert.equal(arena.hold(outside), false);
    arena.release(outside); // no effect
    const lease = arena.lease();
    assert.equal(lease.keep(outside), outside);
    lease.release();
    const a = arena.take(4096)!;
    assert.equal(arena.owns(a.subarray(10)), true);
    arena.release(a);
    assert.throws(() => arena.hold(a), /held after it was freed/);
    assert.throws(() => arena.release(a), /released more often than held/);
  });

  it('gives the pages of blocks with no held slot back to the kernel: they read as zeros and serve again', () => {
    const arena = new ChunkArena(1 << 20, 16 * 1024 * 1024);
    const held = Array.from({ length: 16 }, () => arena.take(1 << 20)!);
    for (const b of held) b.fill(0xab);
    // nothing is given back while slots are held
    assert.equal(arena.discardIdle(), 0);
    const blockOfFirst = held[0]!.buffer;
    const sameBlock = held.filter((b) => b.buffer === blockOfFirst);
    for (const b of sameBlock) arena.release(b);
    const given = arena.discardIdle();
    assert.equal(given, sameBlock.length << 20, 'exactly the emptied block');
    assert.equal(arena.discardIdle(), 0, 'a block is given back once until written again');
    // the others kept their bytes; the emptied block's slots serve again, from zeroed pages
    for (const b of held.filter((x) => x.buffer !== blockOfFirst)) assert.ok(b.every((x) => x === 0xab));
    const again = arena.take(1 << 20)!;
    assert.equal(again.buffer, blockOfFirst);
    assert.ok(again.every((x) => x === 0));
    again.fill(1);
    assert.ok(again.every((x) => x === 1));
  });

  it('calls its owner once a quiet arena has given its pages back, and not while a slot is held', async () => {
    let quiet = 0;
    let resolveQuiet!: () => void;
    const called = new Promise<void>((r) => (resolveQuiet = r));
    const arena = new ChunkArena(1 << 20, 8 * 1024 * 1024, () => {
      quiet++;
      resolveQuiet();
    });
    // the arena's timers do not keep a process alive; this test's wait has to
    const alive = setInterval(() => undefined, 1000);
    const a = arena.take(1 << 20)!;
    const b = arena.take(1 << 20)!;
    a.fill(1);
    b.fill(2);
    arena.release(a);
    // b still holds the block: the quiet timer (2 s after a slot was let go) finds nothing to give back, so the owner
    // is not called
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(quiet, 0);
    arena.release(b);
    await called.finally(() => clearInterval(alive));
    assert.equal(quiet, 1);
    assert.ok(arena.discarded >= 2 << 20, `given back: ${arena.discarded}`);
  });
});
