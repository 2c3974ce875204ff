// Reads through the RAFS filesystem with chunk memory recycled by a deliberately tiny arena (8 slots) and no
// `recent` list, so that slots are reused all the time: data handed to a READ must stay unchanged until its lease is released, however
// long the reply takes and whatever other reads run meanwhile. With cache.compressed every read of a cached chunk
// decodes it again from `.blob.raw` into a fresh slot, which is the same promise to keep.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { FuseError } from '../../../src/fuse/filesystem.js';
import { loadBootstrap } from '../../../src/rafs/bootstrap.js';
import { RafsFs } from '../../../src/rafs/fs.js';
import { ChunkArena } from '../../../src/storage/cache/chunk-arena.js';
import { BlobDevice } from '../../../src/storage/device.js';
import { localfsDirConfig } from '../../../src/config/parse.js';
import { createBackend } from '../../../src/storage/backend/factory.js';
import { prng } from '../../helpers/prng.js';
import { buildImage, mixedBytes, tempDir, type BuiltImage } from '../../nydusd/helpers.js';

const CHUNK = 0x10000;
const SIZE = 3 * 1024 * 1024 + 12345;

describe('leased reads over a small chunk arena', () => {
  let work: string;
  let img: BuiltImage;
  let data: Buffer;

  before(() => {
    work = tempDir('leases');
    const src = path.join(work, 'src');
    data = mixedBytes(SIZE, 5);
    mkdirSync(src, { recursive: true });
    writeFileSync(path.join(src, 'file'), data);
    img = buildImage(src, path.join(work, 'image'), { version: 6, compressor: 'zstd', chunkSize: `0x${CHUNK.toString(16)}` });
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  for (const compressed of [false, true]) it(`keeps every leased byte until release while slots are reused underneath${compressed ? ' (compressed cache)' : ''}`, async () => {
    const bootstrap = loadBootstrap(img.bootstrap);
    const backend = await createBackend(localfsDirConfig(img.blobDir).backend);
    const arena = new ChunkArena(CHUNK, 8 * CHUNK);
    const device = new BlobDevice(bootstrap.blobs, {
      backend, arena, recentBytes: 0, workDir: path.join(work, compressed ? 'cache-raw' : 'cache'), useBlobMeta: true, amplifyIo: 2 * CHUNK,
      validateFetch: false, validateCache: false, digester: bootstrap.superblock.digester, compressed,
    });
    const fs = new RafsFs(bootstrap, device, { amplifyIo: 2 * CHUNK });
    const node = (await fs.lookup(1n, Buffer.from('file'))).nodeId;
    const rand = prng(42);
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    let checked = 0;
    // 200 reads in waves of 20: each holds its data for a while before checking it, as a slow reply would
    for (let wave = 0; wave < 10; wave++) {
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          const offset = Math.floor(rand() * SIZE);
          const size = 1 + Math.floor(rand() * 3 * CHUNK);
          const got = await fs.read(node, 0n, BigInt(offset), size);
          assert.ok(!Array.isArray(got) && 'release' in got, 'RAFS reads hand out leased data');
          try {
            await sleep(Math.floor(rand() * 5));
            const bytes = Buffer.concat(got.data);
            assert.ok(bytes.equals(data.subarray(offset, offset + size)), `[${offset}, +${size}) changed before its release`);
            checked++;
          } finally {
            got.release();
          }
        }),
      );
    }
    assert.equal(checked, 200);
    assert.ok(arena.used <= 8);
    const hits = (await device.stats()).cacheHits;
    assert.ok(hits > 50, `only ${hits} reads came from the cache`);
    await device.close();
    assert.equal(arena.used, 0, 'every slot is free once the reads and the cache writes are done');
    // reading beyond the end is empty, and a failed read leaves nothing held
    assert.deepEqual(await fs.read(node, 0n, BigInt(SIZE), 10), []);
    await assert.rejects(fs.read(node, 0n, -1n, 10), FuseError);
    assert.equal(arena.used, 0);
  });

  it('without a lease the device hands out copies, never arena memory', async () => {
    const bootstrap = loadBootstrap(img.bootstrap);
    const backend = await createBackend(localfsDirConfig(img.blobDir).backend);
    const arena = new ChunkArena(CHUNK, 8 * CHUNK);
    const device = new BlobDevice(bootstrap.blobs, {
      backend, arena, workDir: path.join(work, 'cache2'), useBlobMeta: true, amplifyIo: 0,
      validateFetch: false, validateCache: false, digester: bootstrap.superblock.digester,
    });
    const file = bootstrap.lookup(bootstrap.superblock.rootIno, Buffer.from('file'))!;
    const slices = bootstrap.chunks(file.ino).slice(0, 3).map((chunk) => ({ chunk, start: 0, end: CHUNK }));
    const out = await device.read(slices);
    for (const b of out) assert.equal(arena.owns(b), false);
    assert.ok(Buffer.concat(out).equals(data.subarray(0, 3 * CHUNK)));
    await device.close();
  });
});
