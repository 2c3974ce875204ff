// Issue 8, items 4, 7 and 8 (configuration side): durations beyond what a timer can wait, keys in the wrong place,
// a misleading amplify_io message, and a damaged bootstrap chunk table whose EIO left nothing in the log.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { loadImageFile } from '../image/helpers.js';
import { buildImage, cleanupDaemons, fileChunks, md5, mixedBytes, mountImage, removeDir, requireEnv, runNydusd, tempDir, type BuiltImage } from './helpers.js';

/** A v1 configuration as the snapshotter writes it, with `patch` applied to the parsed object. */
function config(file: string, img: BuiltImage, workDir: string, patch: (c: Record<string, any>) => void = () => undefined): string {
  const c: Record<string, any> = {
    device: { backend: { type: 'localfs', config: { dir: img.blobDir } }, cache: { type: 'blobcache', config: { work_dir: workDir } } },
    mode: 'direct',
    enable_xattr: true,
  };
  patch(c);
  writeFileSync(file, JSON.stringify(c));
  return file;
}

describe('nydusd configuration traps', () => {
  let work: string;
  let src: string;
  const images: Record<string, BuiltImage> = {};

  before(() => {
    requireEnv();
    work = tempDir('config-traps');
    src = path.join(work, 'src');
    mkdirSync(src);
    writeFileSync(path.join(src, 'data.bin'), mixedBytes(700_000, 5));
    writeFileSync(path.join(src, 'other.txt'), 'another file\n');
    images.v5 = buildImage(src, path.join(work, 'v5'), { version: 5, compressor: 'zstd', chunkSize: '0x10000' });
    images.v6 = buildImage(src, path.join(work, 'v6'), { version: 6, compressor: 'lz4_block', chunkSize: '0x10000' });
  });
  after(async () => {
    await cleanupDaemons();
    removeDir(work);
  });

  it('a backend timeout longer than a timer can wait is clamped with a warning, and reads work (they all failed at once before)', async () => {
    const img = images.v6!;
    const dir = path.join(work, 'timeout');
    const mnt = path.join(dir, 'mnt');
    const cfg = config(path.join(work, 'timeout.json'), img, path.join(dir, 'cache'), (c) => (c.device.backend.config.timeout = 3_000_000));
    const d = await mountImage(['fuse', '--config', cfg, '--bootstrap', img.bootstrap, '--mountpoint', mnt], mnt);
    assert.equal(md5(readFileSync(path.join(mnt, 'data.bin'))), md5(readFileSync(path.join(src, 'data.bin'))));
    const stop = await d.stop();
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stderr, /WARN configuration .*timeout\.json: backend\.localfs\.timeout: 3000000 s is longer than the longest timer \(2147483 s\); using 2147483 s/);
    assert.doesNotMatch(stop.stderr, /TimeoutOverflowWarning|timed out/);
  });

  it('validate and compressed inside cache.config are named in a warning at start', async () => {
    const img = images.v6!;
    const dir = path.join(work, 'misplaced');
    const mnt = path.join(dir, 'mnt');
    const cfg = config(path.join(work, 'misplaced.json'), img, path.join(dir, 'cache'), (c) => Object.assign(c.device.cache.config, { validate: true, compressed: true }));
    const d = await mountImage(['fuse', '--config', cfg, '--bootstrap', img.bootstrap, '--mountpoint', mnt], mnt);
    assert.equal(readFileSync(path.join(mnt, 'other.txt'), 'utf8'), 'another file\n');
    const stop = await d.stop();
    assert.match(stop.stderr, /WARN configuration .*: device\.cache\.config\.validate is ignored: "validate" belongs in device\.cache/);
    assert.match(stop.stderr, /WARN configuration .*: device\.cache\.config\.compressed is ignored: "compressed" belongs in device\.cache/);
  });

  it('amplify_io: -1 is refused with a message naming amplify_io and its range', async () => {
    const img = images.v6!;
    const mnt = path.join(work, 'amplify', 'mnt');
    mkdirSync(mnt, { recursive: true });
    const cfg = config(path.join(work, 'amplify.json'), img, path.join(work, 'amplify', 'cache'), (c) => (c.amplify_io = -1));
    const r = await runNydusd(['fuse', '--config', cfg, '--bootstrap', img.bootstrap, '--mountpoint', mnt]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /Error: invalid configuration \(JSON\): config\.amplify_io: expected an integer in 0\.\.268435456, got -1/);
  });

  for (const v of ['v5', 'v6'] as const) {
    it(`${v}: a damaged chunk record gives EIO and a WARN naming the cause; other files keep reading`, async () => {
      const img = images[v]!;
      const dir = path.join(work, `damaged-${v}`);
      const mnt = path.join(dir, 'mnt');
      mkdirSync(dir, { recursive: true });
      // the file's first chunk record, found by its digest, gets a flag bit no version defines
      const boot = readFileSync(img.bootstrap);
      const first = fileChunks(loadImageFile(img.bootstrap), 'data.bin')[0]!;
      const at = boot.indexOf(first.digest);
      assert.ok(at > 0 && boot.indexOf(first.digest, at + 1) < 0, `the chunk digest occurs once in the ${v} bootstrap`);
      const damaged = path.join(dir, 'bootstrap');
      writeFileSync(damaged, boot);
      const fd = openSync(damaged, 'r+');
      const flags = Buffer.alloc(4);
      flags.writeUInt32LE((boot.readUInt32LE(at + 36) | 0x8000_0000) >>> 0);
      writeSync(fd, flags, 0, 4, at + 36);
      closeSync(fd);
      const cfg = config(path.join(work, `damaged-${v}.json`), img, path.join(dir, 'cache'));
      const d = await mountImage(['fuse', '--config', cfg, '--bootstrap', damaged, '--mountpoint', mnt, '--log-level', 'info'], mnt);
      assert.throws(() => readFileSync(path.join(mnt, 'data.bin')), (e: NodeJS.ErrnoException) => e.code === 'EIO');
      assert.equal(readFileSync(path.join(mnt, 'other.txt'), 'utf8'), 'another file\n');
      const stop = await d.stop();
      assert.match(stop.stderr, /WARN READ on node \d+: EIO \(.*flags has unknown bits 0x80000000/);
    });
  }
});
