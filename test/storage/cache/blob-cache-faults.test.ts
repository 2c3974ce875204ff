// BlobCache (src/storage/cache/blob-cache.ts) against the in-memory fake BlobBackend (../fake-backend.ts) that is slow, fails, answers short
// (fewer bytes than asked) or corrupts bytes on demand, chosen per read by a seeded PRNG: many fast cases of the
// fault-injection class that test/nydusd/backend-faults.test.ts proves end to end on the kernel. Chunks come from
// real RAFS v5 images (one per compressor) built by our nydus-image.
// Asserted for every case: a read resolves to exactly the source's bytes or rejects, never other bytes (with
// validation on, corruption included; with it off only faults the cache can see: failures and short answers);
// once the backend is healthy every read is right; and nothing wrong is cached: every chunk the map marks ready
// holds its source bytes, and a new cache on the same directory serves every chunk right.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Bootstrap, ChunkInfo } from '../../../src/image-model.js';
import { BlobCache, type FetchOptions } from '../../../src/storage/cache/blob-cache.js';
import { loadImageFile } from '../../image/helpers.js';
import { prng } from '../../helpers/prng.js';
import { FakeBackend, type Fault } from '../fake-backend.js';
import { buildImage, checkReadyChunks, chunkSources, mixedBytes, removeDir, tempDir, type BuiltImage } from '../../nydusd/helpers.js';

const CHUNK = 0x4000;

describe('BlobCache against a faulty in-memory backend', () => {
  let work: string;
  const images: Record<string, { img: BuiltImage; bs: Bootstrap; blob: Buffer; chunks: { chunk: ChunkInfo; want: Buffer }[] }> = {};

  before(() => {
    work = tempDir('blob-cache-faults');
    const src = path.join(work, 'src');
    mkdirSync(src, { recursive: true });
    for (let i = 0; i < 4; i++) writeFileSync(path.join(src, `f${i}`), mixedBytes(5 * CHUNK + 777 * i, 60 + i));
    for (const compressor of ['none', 'lz4_block', 'zstd']) {
      const img = buildImage(src, path.join(work, compressor), { version: 5, compressor, chunkSize: `0x${CHUNK.toString(16)}` });
      const bs = loadImageFile(img.bootstrap);
      const chunks = [...chunkSources(bs, src).values()].map(({ file, chunk }) => ({
        chunk,
        want: readFileSync(file).subarray(chunk.fileOffset, chunk.fileOffset + chunk.uncompressedSize),
      }));
      images[compressor] = { img, bs, blob: readFileSync(path.join(img.blobDir, img.blobId)), chunks };
    }
  });
  after(() => removeDir(work));

  for (const compressor of ['none', 'lz4_block', 'zstd']) {
    for (const validate of [true, false]) {
      it(`${compressor}, validation ${validate ? 'on' : 'off'}: 40 seeded cases of slow, failing, short, long${validate ? ' and corrupt' : ''} answers`, async () => {
        const { img, bs, blob, chunks } = images[compressor]!;
        // without validation a corrupt uncompressed byte cannot be told from data: only faults the cache can see
        const faults: Fault[] = validate ? ['ok', 'slow', 'fail', 'short', 'long', 'corrupt'] : ['ok', 'slow', 'fail', 'short', 'long'];
        let served = 0;
        let refused = 0;
        for (let seed = 1; seed <= 40; seed++) {
          const rand = prng(seed * 7919 + (validate ? 1 : 0));
          const workDir = path.join(work, `${compressor}-${validate}-${seed}`);
          const backend = new FakeBackend(blob, rand);
          // cache.validate alone (as on RAFS v6, which refuses digest_validate) must guard fetched chunks too
          const f: FetchOptions = { backend, amplifyIo: Math.floor(rand() * 4) * CHUNK, validateFetch: false, validateCache: validate };
          const open = () => new BlobCache(bs.blobs[0]!, { workDir, digester: bs.superblock.digester, recentBytes: Math.floor(rand() * 3) * CHUNK });
          let cache = open();
          const faultRate = 0.2 + rand() * 0.6;
          backend.pick = () => (rand() < faultRate ? faults[Math.floor(rand() * faults.length)]! : 'ok');
          // waves of concurrent reads of random slices (some of several chunks), checked as they settle
          for (let wave = 0; wave < 6; wave++) {
            await Promise.all(
              Array.from({ length: 1 + Math.floor(rand() * 6) }, async () => {
                const picked = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => chunks[Math.floor(rand() * chunks.length)]!);
                const slices = picked.map(({ chunk }) => {
                  const start = Math.floor(rand() * chunk.uncompressedSize);
                  return { chunk, start, end: start + 1 + Math.floor(rand() * (chunk.uncompressedSize - start)) };
                });
                try {
                  const got = await cache.read(f, slices, chunks.slice(0, 4).map((c) => c.chunk));
                  got.forEach((b, k) => {
                    const s = slices[k]!;
                    assert.ok(b.equals(picked[k]!.want.subarray(s.start, s.end)), `seed ${seed}: chunk ${s.chunk.index} [${s.start}, ${s.end}) WRONG BYTES`);
                  });
                  served++;
                } catch (err) {
                  if (err instanceof assert.AssertionError) throw err;
                  refused++;
                }
              }),
            );
          }
          // healthy again (after the fetches still in flight, e.g. readahead nobody waited for, have settled):
          // every chunk reads right from the same cache
          await cache.flush();
          backend.pick = () => 'ok';
          const all = await cache.read(f, chunks.map(({ chunk }) => ({ chunk, start: 0, end: chunk.uncompressedSize })));
          all.forEach((b, k) => assert.ok(b.equals(chunks[k]!.want), `seed ${seed}: chunk ${chunks[k]!.chunk.index} wrong once healthy`));
          await cache.flush();
          await cache.close();
          // nothing wrong was cached, and a new cache on the same directory serves every chunk without the backend
          assert.equal(checkReadyChunks(img, workDir), bs.blobs[0]!.chunkCount, `seed ${seed}: every chunk ready after the healthy pass`);
          cache = open();
          const readsBefore = backend.reads;
          backend.pick = () => 'fail';
          const again = await cache.read(f, chunks.map(({ chunk }) => ({ chunk, start: 0, end: chunk.uncompressedSize })));
          again.forEach((b, k) => assert.ok(b.equals(chunks[k]!.want), `seed ${seed}: chunk ${chunks[k]!.chunk.index} wrong from the cache`));
          assert.equal(backend.reads, readsBefore, `seed ${seed}: a warm cache needs no backend`);
          await cache.close();
        }
        // the cases exercised both outcomes
        assert.ok(served > 0 && refused > 0, `served ${served}, refused ${refused}`);
      });
    }
  }

  it('an answer of another length than asked is refused, never cached', async () => {
    const { bs, blob, chunks } = images.zstd!;
    for (const fault of ['short', 'long'] as const) {
      const backend = new FakeBackend(blob, prng(3));
      backend.pick = () => fault;
      const f: FetchOptions = { backend, amplifyIo: 0, validateFetch: false, validateCache: false };
      const cache = new BlobCache(bs.blobs[0]!, { workDir: path.join(work, `length-${fault}`), digester: bs.superblock.digester });
      const { chunk } = chunks[2]!;
      await assert.rejects(cache.read(f, [{ chunk, start: 0, end: chunk.uncompressedSize }]), /answered with \d+ bytes|truncated|stored size|lz4|zstd/);
      backend.pick = () => 'ok';
      const [got] = await cache.read(f, [{ chunk, start: 0, end: chunk.uncompressedSize }]);
      assert.ok(got!.equals(chunks[2]!.want));
      await cache.close();
    }
  });
});
