// A work_dir left by nydusd 2.2 (the newest nydus-rs on crates.io) names the chunk map `<blob>.chunk_map`, where
// v2.4 and we write `<blob>.blob.data.chunk_map` in the same format (spec nydusd-runtime.md 6.2). Ours takes such a
// map over by a hard link and serves the cache without the backend. test/differential/daemon-cache.test.ts proves
// it against the real 2.2 daemon; this proves it without the peer, with a backend whose every read fails.
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileDigests } from './tree-listing.js';
import { buildImage, cleanupDaemons, mixedBytes, mountImage, removeDir, requireEnv, tempDir, writeConfig } from './helpers.js';

describe('blob cache: a chunk map under the nydusd 2.2 name is taken over', () => {
  let work: string;
  before(() => {
    requireEnv();
    work = tempDir('cache-legacy-map');
  });
  after(async () => {
    await cleanupDaemons();
    removeDir(work);
  });

  it('served with a dead backend, the map linked under our name, and the log says so', async () => {
    const src = path.join(work, 'src');
    mkdirSync(src);
    for (let i = 0; i < 6; i++) writeFileSync(path.join(src, `f${i}`), mixedBytes(50_000 + i * 70_000, i + 1));
    const img = buildImage(src, path.join(work, 'img'), { version: 6, compressor: 'zstd', chunkSize: '0x10000' });
    const cache = path.join(work, 'cache');
    const mnt = path.join(work, 'mnt');
    const fill = await mountImage(['--config', writeConfig(path.join(work, 'fill.json'), { blobDir: img.blobDir, workDir: cache }), '--bootstrap', img.bootstrap, '--mountpoint', mnt], mnt);
    const want = fileDigests(mnt);
    assert.equal((await fill.stop(10_000)).code, 0);
    const ours = path.join(cache, `${img.blobId}.blob.data.chunk_map`);
    const legacy = path.join(cache, `${img.blobId}.chunk_map`);
    renameSync(ours, legacy);

    // the blob file is there (as the reference's localfs wants it at mount) but empty: every read comes back short
    const dead = path.join(work, 'dead');
    mkdirSync(dead);
    writeFileSync(path.join(dead, img.blobId), '');
    const d = await mountImage(['--config', writeConfig(path.join(work, 'read.json'), { blobDir: dead, workDir: cache }), '--bootstrap', img.bootstrap, '--mountpoint', mnt, '--log-level', 'debug'], mnt);
    assert.deepEqual([...fileDigests(mnt)].sort(), [...want].sort());
    assert.equal((await d.stop(10_000)).code, 0);
    assert.doesNotMatch(d.stderr, /backend \S+: read blob/, 'no backend read');
    assert.match(d.stderr, /chunk_map: taken over from .*\.chunk_map \(the chunk map name of nydusd 2\.2\)/);
    assert.equal(statSync(ours).ino, statSync(legacy).ino, 'one map under both names');
  });
});
