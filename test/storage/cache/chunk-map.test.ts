import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ChunkMap, ChunkMapError } from '../../../src/storage/cache/chunk-map.js';

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'chunkmap-'));
}

test('chunk map file has the reference layout and survives reopening', () => {
  const p = path.join(tmp(), 'b.blob.data.chunk_map');
  const m = ChunkMap.open(p, 20);
  assert.equal(fs.statSync(p).size, 4096 + 3);
  m.markReady([0, 9, 19]);
  m.close();
  const raw = fs.readFileSync(p);
  assert.deepEqual([...raw.subarray(0, 16)], [0x50, 0x41, 0x4d, 0x42, 1, 0, 0, 0, 0x50, 0x41, 0x4d, 0x43, 0, 0, 0, 0]);
  // chunk 0 -> byte 0 mask 0x80; chunk 9 -> byte 1 mask 0x40; chunk 19 -> byte 2 mask 0x10
  assert.deepEqual([...raw.subarray(4096)], [0x80, 0x40, 0x10]);
  const again = ChunkMap.open(p, 20);
  assert.equal(again.ready, 3);
  assert.ok(again.isReady(9) && !again.isReady(8));
  again.close();
});

test('all_ready is written on the open that finds every bit set', () => {
  const p = path.join(tmp(), 'm');
  const m = ChunkMap.open(p, 9);
  m.markReady([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.ok(m.allReady());
  m.close();
  ChunkMap.open(p, 9).close();
  assert.equal(fs.readFileSync(p).readUInt32LE(12), 0x4d4d4150);
  const m2 = ChunkMap.open(p, 9);
  assert.ok(m2.isReady(8));
  m2.close();
});

test('a size mismatch or foreign header is refused with a message; an all-zero file is repaired', () => {
  const dir = tmp();
  const wrong = path.join(dir, 'wrong');
  fs.writeFileSync(wrong, Buffer.alloc(4096 + 5));
  assert.throws(() => ChunkMap.open(wrong, 20), (e: unknown) => e instanceof ChunkMapError && /size 4101 does not match 4099/.test(e.message));
  const garbage = path.join(dir, 'garbage');
  fs.writeFileSync(garbage, Buffer.alloc(4099, 7));
  assert.throws(() => ChunkMap.open(garbage, 20), /bad magic/);
  const zeros = path.join(dir, 'zeros');
  fs.writeFileSync(zeros, Buffer.alloc(4099));
  const m = ChunkMap.open(zeros, 20);
  assert.equal(m.ready, 0);
  m.close();
  assert.equal(fs.readFileSync(zeros).readUInt32LE(0), 0x424d4150);
});

test('refresh sees bits set by another process sharing the file', () => {
  const p = path.join(tmp(), 'shared');
  const a = ChunkMap.open(p, 16);
  const b = ChunkMap.open(p, 16);
  b.markReady([12]);
  assert.equal(a.isReady(12), false);
  assert.equal(a.refresh(12), true);
  assert.equal(a.ready, 1);
  assert.throws(() => a.isReady(16), /out of range/);
  a.close();
  b.close();
});
