// One blob cache per (work_dir, blob id) for the whole process: images that share a layer fetch and cache it once,
// and the cache lives until the last of them lets go.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { localfsDirConfig } from '../../../src/config/parse.js';
import { loadBootstrap } from '../../../src/rafs/bootstrap.js';
import type { Bootstrap, ChunkInfo } from '../../../src/image-model.js';
import { BlobDevice } from '../../../src/storage/device.js';
import { createBackend } from '../../../src/storage/backend/factory.js';
import { StorageShare } from '../../../src/storage/cache/share.js';
import { buildImage, fileChunks, mixedBytes, tempDir, type BuiltImage } from '../../nydusd/helpers.js';

describe('storage shared by the images of a process', () => {
  let work: string;
  let img: BuiltImage;
  let bs: Bootstrap;
  let data: Buffer;

  before(() => {
    work = tempDir('share');
    const src = path.join(work, 'src');
    mkdirSync(src, { recursive: true });
    data = mixedBytes(600_000, 9);
    writeFileSync(path.join(src, 'file'), data);
    img = buildImage(src, path.join(work, 'image'), { version: 6, compressor: 'zstd', chunkSize: '0x10000' });
    bs = loadBootstrap(img.bootstrap);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  const device = async (share: StorageShare, workDir: string, compressed = false) =>
    new BlobDevice(bs.blobs, {
      backend: await createBackend(localfsDirConfig(img.blobDir).backend), workDir, useBlobMeta: true, amplifyIo: 0, validateFetch: false,
      validateCache: false, digester: bs.superblock.digester, compressed, share,
    });
  const whole = (chunks: ChunkInfo[]) => chunks.map((chunk) => ({ chunk, start: 0, end: chunk.uncompressedSize }));

  it('two images reading the same blob fetch each chunk once, and the cache outlives the first to close', async () => {
    const share = new StorageShare();
    const workDir = path.join(work, 'cache');
    const a = await device(share, workDir);
    const b = await device(share, workDir);
    const chunks = fileChunks(bs, 'file');
    const [fromA, fromB] = await Promise.all([a.read(whole(chunks)), b.read(whole(chunks))]);
    assert.ok(Buffer.concat(fromA).equals(data));
    assert.ok(Buffer.concat(fromB).equals(data));
    assert.equal(share.openBlobs, 1);
    // each chunk came from one backend or the other, once (the CI table is one more read, by the first opener)
    const reads = a.backend.stats.bytes + b.backend.stats.bytes;
    const chunkBytes = chunks.reduce((n, c) => n + c.compressedSize, 0);
    assert.ok(reads >= chunkBytes && reads < chunkBytes + 64 * 1024, `${reads} backend bytes for ${chunkBytes} bytes of chunks`);
    assert.equal((await a.stats()).chunksFetched, chunks.length);
    await a.close();
    assert.equal(share.openBlobs, 1, 'b still holds the blob');
    const before = b.backend.stats.reads;
    assert.ok(Buffer.concat(await b.read(whole(chunks))).equals(data));
    assert.equal(b.backend.stats.reads, before, 'served from the shared cache');
    await b.close();
    assert.equal(share.openBlobs, 0, 'the last image closed the cache');
  });

  it('a second image asking for the other cache layout in the same work_dir is refused, not allowed to wipe it', async () => {
    const share = new StorageShare();
    const workDir = path.join(work, 'layouts');
    const plain = await device(share, workDir, false);
    const raw = await device(share, workDir, true);
    const chunks = fileChunks(bs, 'file').slice(0, 2);
    assert.ok(Buffer.concat(await plain.read(whole(chunks))).equals(data.subarray(0, 2 * 0x10000)));
    await assert.rejects(raw.read(whole(chunks)), /cached in .* with cache\.compressed false by another mounted image/);
    await raw.close();
    await plain.close();
    assert.equal(share.openBlobs, 0);
  });
});
