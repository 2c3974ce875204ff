// A v6 blob's CI table fetched from the backend is served at once and written to work_dir while reads go on
// (`written`); the next open finds it there and asks the backend nothing; a work_dir that cannot take it leaves the
// table in memory with a warning.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadBootstrap } from '../../../src/rafs/bootstrap.js';
import type { BlobInfo } from '../../../src/image-model.js';
import { BlobMeta } from '../../../src/storage/cache/blob-meta.js';
import { FakeBackend } from '../fake-backend.js';
import { buildImage, mixedBytes, tempDir, type BuiltImage } from '../../nydusd/helpers.js';

describe('blob meta (the CI table of a v6 blob)', () => {
  let work: string;
  let img: BuiltImage;
  let blob: BlobInfo;
  let blobBytes: Buffer;

  before(() => {
    work = tempDir('blob-meta');
    const src = path.join(work, 'src');
    mkdirSync(src, { recursive: true });
    writeFileSync(path.join(src, 'file'), mixedBytes(300_000, 5));
    img = buildImage(src, path.join(work, 'image'), { version: 6, compressor: 'zstd', chunkSize: '0x10000' });
    blob = loadBootstrap(img.bootstrap).blobs[0]!;
    blobBytes = readFileSync(path.join(img.blobDir, img.blobId));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('is served from the backend at once, written to work_dir by `written`, and read from there by the next open', async () => {
    const workDir = path.join(work, 'cache');
    const backend = new FakeBackend(blobBytes);
    const meta = await BlobMeta.open(blob, workDir, backend);
    assert.equal(backend.reads, 1);
    assert.equal(meta.count, blob.chunkCount);
    const first = meta.chunk(0)!;
    assert.ok(first.compressedSize > 0 && first.uncompressedSize > 0);
    await meta.written;
    assert.ok(existsSync(meta.path), `${meta.path} written`);
    const dead = new FakeBackend(blobBytes);
    dead.pick = () => 'fail';
    const again = await BlobMeta.open(blob, workDir, dead);
    assert.equal(dead.reads, 0, 'the next open reads work_dir only');
    assert.deepEqual(again.chunk(blob.chunkCount - 1), meta.chunk(blob.chunkCount - 1));
  });

  it('is written under its own name only (no temporary file for the GC to take), over an invalid longer file', async () => {
    const workDir = path.join(work, 'cache-stale');
    mkdirSync(workDir, { recursive: true });
    const file = path.join(workDir, `${blob.blobId}.blob.meta`);
    // a damaged file longer than a valid one: refused, then overwritten and cut to length
    writeFileSync(file, Buffer.alloc(1 << 20, 0xab));
    const names = new Set<string>();
    const watch = setInterval(() => readdirSync(workDir).forEach((n) => names.add(n)), 0);
    const backend = new FakeBackend(blobBytes);
    const meta = await BlobMeta.open(blob, workDir, backend);
    await meta.written;
    clearInterval(watch);
    readdirSync(workDir).forEach((n) => names.add(n));
    assert.equal(backend.reads, 1, 'the damaged file was not used');
    assert.deepEqual([...names], [`${blob.blobId}.blob.meta`]);
    assert.equal(statSync(file).size, Math.ceil(blob.ciUncompressedSize / 4096) * 4096 + 4096);
    const dead = new FakeBackend(blobBytes);
    dead.pick = () => 'fail';
    const again = await BlobMeta.open(blob, workDir, dead);
    assert.equal(dead.reads, 0, 'the rewritten file is valid');
    assert.deepEqual(again.chunk(0), meta.chunk(0));
  });

  it('a FIFO planted as the .blob.meta is neither read nor written: the table stays in memory, with a warning', async () => {
    const workDir = path.join(work, 'cache-fifo');
    mkdirSync(workDir, { recursive: true });
    const file = path.join(workDir, `${blob.blobId}.blob.meta`);
    const made = spawnSync('mkfifo', [file], { encoding: 'utf8' });
    assert.equal(made.status, 0, `mkfifo: ${made.stderr}`);
    const logs: string[] = [];
    const meta = await BlobMeta.open(blob, workDir, new FakeBackend(blobBytes), (level, msg) => logs.push(`${level} ${msg}`));
    assert.equal(meta.count, blob.chunkCount);
    // opening a FIFO for writing would wait for a reader forever (and close() waits for `written`)
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      meta.written.then(() => 'settled'),
      new Promise<string>((r) => (timer = setTimeout(() => r('still waiting after 5 s'), 5000))),
    ]);
    clearTimeout(timer);
    assert.equal(outcome, 'settled');
    assert.equal(logs.length, 1, logs.join('\n'));
    assert.match(logs[0]!, /^warn blob meta .*\.blob\.meta: cannot be written \(.*\); the chunk table is kept in memory for this run$/);
  });

  it('a work_dir that cannot be created leaves the table in memory, with a warning naming the file', async () => {
    const notDir = path.join(work, 'a-file');
    writeFileSync(notDir, 'x');
    const logs: string[] = [];
    const meta = await BlobMeta.open(blob, path.join(notDir, 'cache'), new FakeBackend(blobBytes), (level, msg) => logs.push(`${level} ${msg}`));
    assert.equal(meta.chunk(0)!.uncompressedOffset, 0);
    await meta.written;
    assert.equal(logs.length, 1, logs.join('\n'));
    assert.match(logs[0]!, /^warn blob meta .*\.blob\.meta: cannot be written \(.*\); the chunk table is kept in memory for this run$/);
  });
});
