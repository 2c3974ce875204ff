// Acceptance 3: the blob cache on disk. A cold read fills `<blob>.blob.data` and its chunk map (format of
// spec nydusd-runtime §6.2); a restarted daemon serves the same reads with zero backend reads (counted by
// the daemon itself, reported on SIGUSR2); and a daemon SIGKILLed in the middle of a large read leaves a
// cache in which every chunk marked ready holds the right bytes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { ChunkFlag } from '../../src/image-model.js';
import { loadImageFile } from '../image/helpers.js';
import {
  buildImage, checkReadyChunks, cleanupDaemons, fileChunks, daemonMetrics, isMounted, mixedBytes, mountImage, readChunkMap, removeDir, requireEnv, run, tempDir,
  waitFor, waitsOnFuse, writeConfig, type BuiltImage,
} from './helpers.js';

const CHUNK = 0x10000;
const MANY = 3000;
const manyName = (i: number) => `${String(i).padStart(5, '0')}-${'x'.repeat(i % 249)}`;

describe('nydusd blob cache', () => {
  let work: string;
  let src: string;
  const images: Record<string, BuiltImage> = {};

  before(() => {
    requireEnv();
    work = tempDir('cache');
    src = path.join(work, 'src');
    mkdirSync(path.join(src, 'dir'), { recursive: true });
    writeFileSync(path.join(src, 'big.bin'), mixedBytes(24 << 20, 7));
    writeFileSync(path.join(src, 'dir', 'a.bin'), mixedBytes(600_000, 11));
    writeFileSync(path.join(src, 'dir', 'b.bin'), mixedBytes(300_001, 13));
    writeFileSync(path.join(src, 'small.txt'), 'small file\n');
    // more entries than one READDIR reply holds, with names of every length up to 255
    mkdirSync(path.join(src, 'many'));
    for (let i = 0; i < MANY; i++) writeFileSync(path.join(src, 'many', manyName(i)), '');
    images.v6 = buildImage(src, path.join(work, 'v6'), { version: 6, compressor: 'lz4_block', chunkSize: `0x${CHUNK.toString(16)}` });
    images.v5 = buildImage(src, path.join(work, 'v5'), { version: 5, compressor: 'zstd', chunkSize: `0x${CHUNK.toString(16)}` });
  });
  after(async () => {
    await cleanupDaemons();
    removeDir(work);
  });

  for (const [v, compressed] of [['v6', false], ['v5', false], ['v6', true], ['v5', true]] as const) {
    const kind = compressed ? 'compressed cache (.blob.raw)' : 'cache';
    it(`${v}: a cold read fills the ${kind} and chunk map; after a restart the same reads cost zero backend reads`, async () => {
      const img = images[v]!;
      const name = `restart-${v}${compressed ? '-raw' : ''}`;
      const dir = path.join(work, name);
      const workDir = path.join(dir, 'cache');
      const mnt = path.join(dir, 'mnt');
      const cfg = writeConfig(path.join(work, `${name}.json`), { blobDir: img.blobDir, workDir, amplifyIo: 0, compressed });
      const args = ['fuse', '--config', cfg, '--bootstrap', img.bootstrap, '--mountpoint', mnt];
      const files = ['dir/a.bin', 'small.txt'];

      let d = await mountImage(args, mnt);
      for (const f of files) assert.ok(readFileSync(path.join(mnt, f)).equals(readFileSync(path.join(src, f))), f);
      const cold = await daemonMetrics(d);
      assert.ok(cold.backend.reads > 0, 'a cold read must reach the backend');
      assert.equal(cold.backend.errors, 0);
      assert.equal((await d.stop()).code, 0);

      const bs = loadImageFile(img.bootstrap);
      const blob = bs.blobs[0]!;
      const dataFile = path.join(workDir, `${img.blobId}.blob.data`);
      if (compressed) {
        // the chunk data of the blob, which for v6 ends where its CI table starts
        const size = v === 'v6' ? blob.ciOffset : blob.compressedSize;
        assert.equal(statSync(path.join(workDir, `${img.blobId}.blob.raw`)).size, size);
        assert.equal(existsSync(dataFile), false, 'a compressed cache has no .blob.data');
      } else {
        assert.equal(statSync(dataFile).size, blob.uncompressedSize);
      }
      const map = readChunkMap(`${dataFile}.chunk_map`, blob.chunkCount);
      assert.equal(map.magic, 'PAMB');
      assert.equal(map.version, 1);
      assert.equal(map.magic2, 'PAMC');
      assert.equal(map.size, 4096 + Math.ceil(blob.chunkCount / 8));
      assert.equal(map.allReady, false);
      const wanted = files.flatMap((f) => fileChunks(bs, f));
      for (const c of wanted) assert.ok(map.ready(c.index), `chunk ${c.index} was read but is not marked ready`);
      // the fetch may pull neighbouring chunks along (at most 128 KiB worth), never the whole blob
      assert.ok(map.readyCount < blob.chunkCount / 2, `${map.readyCount} of ${blob.chunkCount} chunks ready after reading ${wanted.length}`);
      assert.equal(checkReadyChunks(img, workDir, compressed), map.readyCount);
      if (v === 'v6') assert.ok(existsSync(path.join(workDir, `${img.blobId}.blob.meta`)), 'the CI table is kept as .blob.meta');

      d = await mountImage(args, mnt);
      for (const f of files) assert.ok(readFileSync(path.join(mnt, f)).equals(readFileSync(path.join(src, f))), f);
      const warm = await daemonMetrics(d);
      assert.deepEqual(warm.backend, { type: 'localfs', reads: 0, bytes: 0, errors: 0 });
      assert.ok(warm.cache.cacheHits >= wanted.length);
      // a file not read before still comes from the backend
      assert.ok(readFileSync(path.join(mnt, 'dir/b.bin')).equals(readFileSync(path.join(src, 'dir/b.bin'))));
      assert.ok((await daemonMetrics(d)).backend.reads > 0);
      assert.equal((await d.stop()).code, 0);
    });
  }

  for (const v of ['v6', 'v5'] as const) {
    it(`${v}: a directory of ${MANY} entries lists completely`, async () => {
      const img = images[v]!;
      const dir = path.join(work, `many-${v}`);
      const mnt = path.join(dir, 'mnt');
      const cfg = writeConfig(path.join(work, `many-${v}.json`), { blobDir: img.blobDir, workDir: path.join(dir, 'cache') });
      const d = await mountImage(['fuse', '--config', cfg, '--bootstrap', img.bootstrap, '--mountpoint', mnt], mnt);
      const names = readdirSync(path.join(mnt, 'many'));
      assert.equal(names.length, MANY);
      assert.deepEqual(names.sort(), Array.from({ length: MANY }, (_, i) => manyName(i)).sort());
      const listed = run('ls', ['-f', path.join(mnt, 'many')]).split('\n').filter(Boolean);
      assert.equal(listed.length, MANY + 2);
      assert.equal((await d.stop()).code, 0);
    });
  }

  it('a damaged chunk map, or a cache file larger or shorter than the blob, is started afresh, never served', async () => {
    const img = images.v6!;
    const dir = path.join(work, 'damaged');
    const workDir = path.join(dir, 'cache');
    const mnt = path.join(dir, 'mnt');
    const cfg = writeConfig(path.join(work, 'damaged.json'), { blobDir: img.blobDir, workDir, amplifyIo: 0 });
    const args = ['fuse', '--config', cfg, '--bootstrap', img.bootstrap, '--mountpoint', mnt];
    const blob = loadImageFile(img.bootstrap).blobs[0]!;
    const dataFile = path.join(workDir, `${img.blobId}.blob.data`);
    const mapFile = `${dataFile}.chunk_map`;
    const want = readFileSync(path.join(src, 'dir/a.bin'));
    const damage: Array<[string, () => void]> = [
      ['a truncated chunk map', () => truncateSync(mapFile, 100)],
      ['a chunk map with a foreign header', () => writeFileSync(mapFile, Buffer.alloc(4096 + Math.ceil(blob.chunkCount / 8), 0xff))],
      ['a cache file larger than the blob', () => truncateSync(dataFile, blob.uncompressedSize + 4096)],
      // the chunks of a.bin lie beyond the cut: they would read as zeros
      ['a cache file cut short', () => truncateSync(dataFile, 4096)],
      ['a cache file emptied', () => truncateSync(dataFile, 0)],
    ];
    for (const [what, doDamage] of [['nothing', () => undefined] as [string, () => void], ...damage]) {
      doDamage();
      const d = await mountImage(args, mnt);
      assert.ok(readFileSync(path.join(mnt, 'dir/a.bin')).equals(want), what);
      const m = await daemonMetrics(d);
      assert.equal((await d.stop()).code, 0, what);
      if (what !== 'nothing') {
        assert.ok(m.backend.reads > 0, `${what}: the chunks must be fetched again`);
        assert.match(d.stderr, /starting it afresh/, what);
      }
      assert.equal(statSync(dataFile).size, blob.uncompressedSize, what);
      assert.equal(readChunkMap(mapFile, blob.chunkCount).magic, 'PAMB', what);
      checkReadyChunks(img, workDir);
    }
  });

  it('switching cache.compressed on a cache directory starts it afresh, never serving one layout\'s chunks from the other', async () => {
    const img = images.v6!;
    const dir = path.join(work, 'switch');
    const workDir = path.join(dir, 'cache');
    const mnt = path.join(dir, 'mnt');
    const file = (ext: string) => path.join(workDir, `${img.blobId}.blob.${ext}`);
    // each round reads one file more: the chunk map then marks chunks the round's layout never wrote
    const rounds = [[false, 'small.txt'], [true, 'dir/a.bin'], [false, 'dir/b.bin'], [true, 'big.bin']] as const;
    for (const [i, [compressed]] of rounds.entries()) {
      const cfg = writeConfig(path.join(work, `switch-${i}.json`), { blobDir: img.blobDir, workDir, amplifyIo: 0, compressed });
      const d = await mountImage(['fuse', '--config', cfg, '--bootstrap', img.bootstrap, '--mountpoint', mnt], mnt);
      for (const [, f] of rounds.slice(0, i + 1)) assert.ok(readFileSync(path.join(mnt, f)).equals(readFileSync(path.join(src, f))), `round ${i}: ${f}`);
      assert.equal((await d.stop()).code, 0);
      assert.equal(existsSync(file(compressed ? 'data' : 'raw')), false, `round ${i}: the other layout's file is gone`);
      if (i > 0) assert.match(d.stderr, /left by the other cache layout \(cache\.compressed changed\); removing it and starting afresh/);
      checkReadyChunks(img, workDir, compressed);
    }
  });

  for (const [v, compressed] of [['v6', false], ['v5', false], ['v6', true], ['v5', true]] as const) {
    it(`${v}: with cache.validate a corrupted ${compressed ? 'compressed ' : ''}cache chunk is fetched again and rewritten, never served`, async () => {
      const img = images[v]!;
      const name = `validate-${v}${compressed ? '-raw' : ''}`;
      const dir = path.join(work, name);
      const workDir = path.join(dir, 'cache');
      const mnt = path.join(dir, 'mnt');
      const cfg = writeConfig(path.join(work, `${name}.json`), {
        blobDir: img.blobDir, workDir, amplifyIo: 0, cacheValidate: true, digestValidate: v === 'v5', compressed,
      });
      const args = ['fuse', '--config', cfg, '--bootstrap', img.bootstrap, '--mountpoint', mnt];
      const want = readFileSync(path.join(src, 'dir/a.bin'));
      let d = await mountImage(args, mnt);
      assert.ok(readFileSync(path.join(mnt, 'dir/a.bin')).equals(want));
      assert.equal((await d.stop()).code, 0);

      // flip bytes in every cached chunk of the file
      const bs = loadImageFile(img.bootstrap);
      const fd = openSync(path.join(workDir, `${img.blobId}.blob.${compressed ? 'raw' : 'data'}`), 'r+');
      const chunks = fileChunks(bs, 'dir/a.bin');
      for (const c of chunks) writeSync(fd, Buffer.from('CORRUPT'), 0, 7, (compressed ? c.compressedOffset : c.uncompressedOffset) + 10);
      closeSync(fd);

      d = await mountImage(args, mnt);
      assert.ok(readFileSync(path.join(mnt, 'dir/a.bin')).equals(want), 'corrupted cache data was served');
      const m = await daemonMetrics(d);
      assert.equal(m.backend.errors, 0);
      assert.equal(m.cache.chunksFetched, chunks.length, 'every corrupted chunk comes from the backend again');
      assert.equal((await d.stop()).code, 0);
      // issue 8 item 7: repairs are logged in both layouts, the first 8 of a blob by chunk, the rest only counted
      const named = [...d.stderr.matchAll(/WARN blob cache \S+: chunk (\d+) unusable \(.*\); fetching it again/g)].map((r) => Number(r[1]));
      assert.equal(named.length, Math.min(chunks.length, 8), d.stderr);
      for (const i of named) assert.ok(chunks.some((c) => c.index === i), `chunk ${i} was not corrupted`);
      assert.equal(new Set(named).size, named.length, 'each repair named once');
      // and the good bytes replaced the bad ones
      checkReadyChunks(img, workDir, compressed);
    });
  }

  it('compressed cache: a ready chunk that no longer decodes is fetched again and rewritten, never served', async () => {
    const img = images.v5!; // zstd: zeros are no zstd frame
    const dir = path.join(work, 'raw-zeroed');
    const workDir = path.join(dir, 'cache');
    const mnt = path.join(dir, 'mnt');
    const cfg = writeConfig(path.join(work, 'raw-zeroed.json'), { blobDir: img.blobDir, workDir, amplifyIo: 0, compressed: true });
    const args = ['fuse', '--config', cfg, '--bootstrap', img.bootstrap, '--mountpoint', mnt];
    const want = readFileSync(path.join(src, 'dir/a.bin'));
    let d = await mountImage(args, mnt);
    assert.ok(readFileSync(path.join(mnt, 'dir/a.bin')).equals(want));
    assert.equal((await d.stop()).code, 0);
    // zero the cached bytes of the file's compressed chunks (the builder stores incompressible ones as they are,
    // and without cache.validate nothing can tell those from zeros)
    const zipped = fileChunks(loadImageFile(img.bootstrap), 'dir/a.bin').filter((c) => c.flags & ChunkFlag.COMPRESSED);
    assert.ok(zipped.length > 0, 'the test file needs compressed chunks');
    const fd = openSync(path.join(workDir, `${img.blobId}.blob.raw`), 'r+');
    for (const c of zipped) writeSync(fd, Buffer.alloc(c.compressedSize), 0, c.compressedSize, c.compressedOffset);
    closeSync(fd);

    d = await mountImage(args, mnt);
    assert.ok(readFileSync(path.join(mnt, 'dir/a.bin')).equals(want), 'undecodable cache data was served');
    const m = await daemonMetrics(d);
    assert.equal(m.cache.chunksFetched, zipped.length);
    assert.equal((await d.stop()).code, 0);
    assert.match(d.stderr, /chunk \d+ unusable \(.*\); fetching it again/);
    checkReadyChunks(img, workDir, true);
  });

  for (const compressed of [false, true]) it(`SIGKILL in the middle of a large read: every chunk marked ready holds the right bytes${compressed ? ' (compressed cache)' : ''}`, async () => {
    const img = images.v6!;
    const name = `kill${compressed ? '-raw' : ''}`;
    const dir = path.join(work, name);
    const workDir = path.join(dir, 'cache');
    const mnt = path.join(dir, 'mnt');
    const cfg = writeConfig(path.join(work, `${name}.json`), { blobDir: img.blobDir, workDir, amplifyIo: 0, compressed });
    const args = ['fuse', '--config', cfg, '--bootstrap', img.bootstrap, '--mountpoint', mnt];
    const bs = loadImageFile(img.bootstrap);
    const blob = bs.blobs[0]!;
    const mapFile = path.join(workDir, `${img.blobId}.blob.data.chunk_map`);

    const d = await mountImage(args, mnt);
    const big = path.join(mnt, 'big.bin');
    // the first MiB, then (chunks are marked ready once the cache is quiet for a moment) wait until the chunk map
    // says its chunks are ready
    run('dd', [`if=${big}`, 'of=/dev/null', 'bs=1M', 'count=1', 'status=none']);
    // the daemon creates the map, then sizes it: a file still shorter than its header has nothing ready
    const readyNow = () => (existsSync(mapFile) && statSync(mapFile).size >= 4096 ? readChunkMap(mapFile, blob.chunkCount).readyCount : 0);
    await waitFor(() => readyNow() >= 8, 30_000, 'the chunks of the first MiB to be marked ready');
    // then another process reads the rest, and the daemon is killed while that read waits on it
    const reader = spawn('dd', [`if=${big}`, 'of=/dev/null', 'bs=1M', 'skip=1', 'status=none'], { stdio: 'ignore' });
    const readerDone = new Promise((r) => reader.once('close', r));
    await waitFor(() => waitsOnFuse(reader.pid!) || reader.exitCode !== null, 30_000, 'the reader to wait on the daemon');
    d.signal('SIGKILL');
    const r = await d.waitExit(5_000);
    assert.equal(r.signal, 'SIGKILL');
    await d.kill(); // detaches the dead mount
    await readerDone;
    assert.equal(isMounted(mnt), false);

    const afterKill = checkReadyChunks(img, workDir, compressed);
    const total = fileChunks(bs, 'big.bin').length;
    assert.ok(afterKill < total, `the kill came too late to test anything: ${afterKill} chunks ready, the file has ${total}`);

    // a new daemon trusts those chunks and fetches the rest
    const d2 = await mountImage(args, mnt);
    assert.ok(readFileSync(path.join(mnt, 'big.bin')).equals(readFileSync(path.join(src, 'big.bin'))));
    const m = await daemonMetrics(d2);
    assert.equal(m.backend.errors, 0);
    assert.equal((await d2.stop()).code, 0);
    // nothing that was ready got fetched again: every fetched chunk is a newly ready one
    const final = checkReadyChunks(img, workDir, compressed);
    assert.equal(final, afterKill + m.cache.chunksFetched, `${afterKill} ready after the kill, ${m.cache.chunksFetched} fetched, ${final} ready now`);
    assert.ok(final >= total);
  });
});
