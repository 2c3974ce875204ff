// The bytes between chunks in `.blob.data` stay zero (found by test/differential/daemon-cache.test.ts: the reference
// leaves them zero, ours once wrote whatever followed a small chunk in Node's shared Buffer pool there, because a
// chunk at a 4 KiB pool offset was taken for page-aligned memory with zero padding and written out padded).
// RAFS v6 places every chunk at a 4 KiB boundary of the uncompressed layout, so a blob of many sub-4 KiB files is
// mostly padding; hundreds of them of varied sizes put a chunk at a fresh pool's offset 0 many times over.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadImageFile } from '../image/helpers.js';
import { buildImage, cleanupDaemons, mixedBytes, mountImage, removeDir, requireEnv, tempDir, writeConfig } from './helpers.js';

const FILES = 300;

describe('blob cache: nothing but chunk bytes reaches .blob.data', () => {
  let work: string;
  before(() => {
    requireEnv();
    work = tempDir('cache-padding');
  });
  after(async () => {
    await cleanupDaemons();
    removeDir(work);
  });

  for (const compressor of ['none', 'zstd']) {
    it(`v6 ${compressor}: ${FILES} small files read, every byte outside the chunks is zero`, async () => {
      const src = path.join(work, `src-${compressor}`);
      mkdirSync(src, { recursive: true });
      // sizes that leave the Buffer pool at ever different offsets
      for (let i = 0; i < FILES; i++) writeFileSync(path.join(src, `f${String(i).padStart(3, '0')}`), mixedBytes(700 + ((i * 37) % 3000), i + 1));
      const img = buildImage(src, path.join(work, `img-${compressor}`), { version: 6, compressor, chunkSize: '0x100000' });
      const cache = path.join(work, `cache-${compressor}`);
      const config = writeConfig(path.join(work, `config-${compressor}.json`), { blobDir: img.blobDir, workDir: cache });
      const mnt = path.join(work, `mnt-${compressor}`);
      const d = await mountImage(['--config', config, '--bootstrap', img.bootstrap, '--mountpoint', mnt], mnt);
      for (let i = 0; i < FILES; i++) {
        const name = `f${String(i).padStart(3, '0')}`;
        assert.ok(readFileSync(path.join(mnt, name)).equals(readFileSync(path.join(src, name))), name);
      }
      assert.equal((await d.stop(10_000)).code, 0);

      const bs = loadImageFile(img.bootstrap);
      const data = readFileSync(path.join(cache, `${img.blobId}.blob.data`));
      const inChunk = new Uint8Array(data.length);
      let chunks = 0;
      for (const e of bs.readdir(bs.superblock.rootIno)) {
        for (const c of bs.chunks(e.ino)) {
          inChunk.fill(1, c.uncompressedOffset, c.uncompressedOffset + c.uncompressedSize);
          chunks++;
        }
      }
      assert.equal(chunks, FILES);
      const stray: number[] = [];
      for (let i = 0; i < data.length && stray.length < 5; i++) if (!inChunk[i] && data[i] !== 0) stray.push(i);
      assert.deepEqual(stray, [], `non-zero bytes between the chunks of ${img.blobId}.blob.data`);
    });
  }
});
