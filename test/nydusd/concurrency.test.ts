// Acceptance 4: 16 processes read overlapping files of a cold mount at the same time. Every one gets the
// right bytes, and every chunk is fetched from the backend once: the backend reads the daemon logs at debug
// level never overlap.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadImageFile } from '../image/helpers.js';
import {
  backendReads, buildImage, checkReadyChunks, cleanupDaemons, daemonMetrics, md5, mixedBytes, mountImage, readChunkMap, removeDir, requireEnv, tempDir,
  writeConfig, type BuiltImage,
} from './helpers.js';

const FILES = ['f0.bin', 'f1.bin', 'f2.bin', 'sub/f3.bin', 'sub/f4.bin', 'sub/f5.bin'];
const READERS = 16;

function md5sumAll(files: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn('md5sum', files, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    p.once('close', (code) => resolve({ code, out, err }));
  });
}

/** A child process doing `count` random O_DIRECT preads of the mounted files, each compared with the source. */
function randomReads(mnt: string, src: string, files: string[], count: number, seed: number): Promise<{ code: number | null; err: string }> {
  const script = `
    const fs = require('fs');
    const [mnt, src, files, count, seed] = JSON.parse(process.argv[1]);
    let x = seed;
    const rnd = (n) => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return x % n; };
    for (let i = 0; i < count; i++) {
      const f = files[rnd(files.length)];
      const want = fs.readFileSync(src + '/' + f);
      const off = rnd(want.length + 100);
      const len = 1 + rnd(200000);
      const fd = fs.openSync(mnt + '/' + f, fs.constants.O_RDONLY | fs.constants.O_DIRECT);
      const buf = Buffer.alloc(len);
      let n = 0;
      for (;;) { const k = fs.readSync(fd, buf, n, len - n, off + n); if (k === 0) break; n += k; if (n === len) break; }
      fs.closeSync(fd);
      const exp = want.subarray(Math.min(off, want.length), Math.min(off + len, want.length));
      if (n !== exp.length || !buf.subarray(0, n).equals(exp)) { console.error(f + ' [' + off + ', +' + len + '): got ' + n + ' bytes, wrong'); process.exit(1); }
    }`;
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['-e', script, JSON.stringify([mnt, src, files, count, seed])], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    p.once('close', (code) => resolve({ code, err }));
  });
}

describe('nydusd under 16 parallel readers', () => {
  let work: string;
  let src: string;
  const images: Record<string, BuiltImage> = {};
  const want = new Map<string, string>();

  before(() => {
    requireEnv(['md5sum']);
    work = tempDir('concurrency');
    src = path.join(work, 'src');
    mkdirSync(path.join(src, 'sub'), { recursive: true });
    FILES.forEach((f, i) => {
      const data = mixedBytes(700_000 + i * 450_001, 100 + i);
      writeFileSync(path.join(src, f), data);
      want.set(f, md5(data));
    });
    images.v6 = buildImage(src, path.join(work, 'v6'), { version: 6, compressor: 'zstd', chunkSize: '0x10000' });
    images.v5 = buildImage(src, path.join(work, 'v5'), { version: 5, compressor: 'lz4_block', chunkSize: '0x10000' });
  });
  after(async () => {
    await cleanupDaemons();
    removeDir(work);
  });

  /** 16 md5sum readers of overlapping files, and 6 processes of random O_DIRECT reads, all at once. */
  async function readEverything(mnt: string): Promise<void> {
    // meanwhile, exact byte ranges across chunk boundaries: O_DIRECT sends each read to the daemon as it is
    const ranges = Promise.all(Array.from({ length: 6 }, (_, k) => randomReads(mnt, src, FILES, 150, k + 1)));
    // reader k reads four files starting at file k, some backwards: every file is read by ~10 readers at once
    const jobs = Array.from({ length: READERS }, (_, k) => {
      const mine = [0, 1, 2, 3].map((j) => FILES[(k + j) % FILES.length]!);
      if (k % 2) mine.reverse();
      return md5sumAll(mine.map((f) => path.join(mnt, f))).then((r) => ({ k, mine, ...r }));
    });
    for (const r of await Promise.all(jobs)) {
      assert.equal(r.code, 0, `reader ${r.k}: ${r.err}`);
      const got = new Map(r.out.trim().split('\n').map((l) => [path.relative(mnt, l.slice(34)), l.slice(0, 32)]));
      for (const f of r.mine) assert.equal(got.get(f), want.get(f), `reader ${r.k}, ${f}`);
    }
    for (const r of await ranges) assert.equal(r.code, 0, r.err);
  }

  for (const [v, compressed] of [['v6', false], ['v5', false], ['v6', true]] as const) {
    const kind = compressed ? ' (compressed cache, then again after a restart on it)' : '';
    it(`${v}: correct bytes for every reader, each chunk fetched once${kind}`, async () => {
      const img = images[v]!;
      const name = `${v}${compressed ? '-raw' : ''}`;
      const dir = path.join(work, name);
      const mnt = path.join(dir, 'mnt');
      const workDir = path.join(dir, 'cache');
      const cfg = writeConfig(path.join(work, `${name}.json`), { blobDir: img.blobDir, workDir, compressed });
      const args = ['fuse', '--config', cfg, '--bootstrap', img.bootstrap, '--mountpoint', mnt, '--log-level', 'debug', '--thread-num', '4'];
      let d = await mountImage(args, mnt);
      await readEverything(mnt);

      const m = await daemonMetrics(d);
      assert.equal((await d.stop()).code, 0);
      assert.equal(m.backend.errors, 0);
      const reads = backendReads(d.stderr).sort((a, b) => a.offset - b.offset);
      assert.equal(reads.length, m.backend.reads, 'one debug line per backend read');
      for (let i = 1; i < reads.length; i++) {
        const prev = reads[i - 1]!;
        assert.ok(reads[i]!.offset >= prev.offset + prev.length, `backend reads overlap: [${prev.offset}, +${prev.length}) and [${reads[i]!.offset}, +${reads[i]!.length})`);
      }
      const blob = loadImageFile(img.bootstrap).blobs[0]!;
      const ready = readChunkMap(path.join(workDir, `${img.blobId}.blob.data.chunk_map`), blob.chunkCount).readyCount;
      assert.equal(ready, blob.chunkCount, 'every chunk was read');
      assert.equal(m.cache.chunksFetched, blob.chunkCount, 'each chunk fetched exactly once');
      if (!compressed) return;

      // every chunk now decodes from .blob.raw, many readers wanting it at once
      checkReadyChunks(img, workDir, true);
      d = await mountImage(args, mnt);
      await readEverything(mnt);
      const again = await daemonMetrics(d);
      assert.equal((await d.stop()).code, 0);
      assert.deepEqual(again.backend, { type: 'localfs', reads: 0, bytes: 0, errors: 0 });
      assert.ok(again.cache.cacheHits >= blob.chunkCount, `${again.cache.cacheHits} cache hits for ${blob.chunkCount} chunks`);
    });
  }

  it('two daemons sharing one cache directory both read correctly and leave a correct cache', async () => {
    const img = images.v6!;
    const dir = path.join(work, 'shared');
    const workDir = path.join(dir, 'cache');
    const cfg = writeConfig(path.join(work, 'shared.json'), { blobDir: img.blobDir, workDir });
    const mnts = [path.join(dir, 'a'), path.join(dir, 'b')];
    const daemons = await Promise.all(mnts.map((m) => mountImage(['fuse', '--config', cfg, '--bootstrap', img.bootstrap, '--mountpoint', m], m)));
    const jobs = mnts.flatMap((m, i) =>
      [0, 1, 2].map((k) => {
        const mine = FILES.map((_, j) => FILES[(j + k + i) % FILES.length]!);
        return md5sumAll(mine.map((f) => path.join(m, f))).then((r) => ({ m, mine, ...r }));
      }),
    );
    for (const r of await Promise.all(jobs)) {
      assert.equal(r.code, 0, r.err);
      const got = new Map(r.out.trim().split('\n').map((l) => [path.relative(r.m, l.slice(34)), l.slice(0, 32)]));
      for (const f of r.mine) assert.equal(got.get(f), want.get(f), `${r.m}: ${f}`);
    }
    for (const d of daemons) assert.equal((await d.stop()).code, 0);
    assert.ok(checkReadyChunks(img, workDir) > 0);
    // and a third daemon serves everything from that cache
    const d = await mountImage(['fuse', '--config', cfg, '--bootstrap', img.bootstrap, '--mountpoint', mnts[0]!], mnts[0]!);
    const r = await md5sumAll(FILES.map((f) => path.join(mnts[0]!, f)));
    assert.equal(r.code, 0, r.err);
    const m = await daemonMetrics(d);
    assert.equal((await d.stop()).code, 0);
    assert.equal(m.backend.reads, 0);
  });
});
