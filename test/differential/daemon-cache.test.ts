// Differential conformance of the blob cache on disk (issue 10, scope 3, part 4; spec nydusd-runtime.md 6): one
// daemon fills a work_dir by reading every file, the other starts on that work_dir with a backend that fails every
// read (the blob file is there, as the reference's localfs opens it at mount, but empty: any read comes back short)
// and must serve every file, byte-exact, with zero backend reads. Both directions, RAFS v5 and v6.
//
// KNOWN DIFFERENCES of the reference 2.2.0 (the newest nydus-rs on crates.io) from v2.4 and us:
// * it names the chunk map `<blob>.chunk_map`, where v2.4 and we write `<blob>.blob.data.chunk_map`; data file,
//   map format and `.blob.meta` are the same. Ours takes a 2.2 map over (blob-cache.ts, adoptLegacyMap), so its
//   cache is served at once; 2.2 does not know our name, so on our work_dir it starts a map of its own with nothing
//   ready and goes to the backend (asserted below: EIO with the dead backend), and once given the map under its
//   name it serves our cache with zero backend reads (also asserted: nothing else differs).
// * `"compressed": true` (`<blob>.blob.raw`) is a layout of ours only; the reference never reads or writes it.
import assert from 'node:assert/strict';
import { cpSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { requirePeers } from '../helpers/peers.js';
import { request } from '../api/helpers.js';
import { cleanupDaemons, removeDir, requireEnv, tempDir, tryReadRange } from '../nydusd/helpers.js';
import { fileDigests } from '../nydusd/tree-listing.js';
import { sample } from './images.js';
import { mountImage, type Image, type Side, type Which } from './peer-daemons.js';

const IMAGES = [sample('v5-zstd'), sample('v6-zstd'), sample('v6-none')];

async function backendReads(s: Side): Promise<{ read_count: number; read_errors: number }> {
  const r = await request(s.sock, 'GET', '/api/v1/metrics/backend');
  assert.equal(r.status, 200, `${s.which}: GET /api/v1/metrics/backend: ${r.text}`);
  return r.json as { read_count: number; read_errors: number };
}

/** A blob directory whose blob files exist but are empty: every backend read fails (short read). */
function deadBackend(dir: string, image: Image): string {
  const dead = path.join(dir, 'dead-blobs');
  mkdirSync(dead, { recursive: true });
  for (const id of readdirSync(image.blobDir)) writeFileSync(path.join(dead, id), '');
  return dead;
}

/** `which` reads every file of `image` into `workDir` from a working copy of the blobs; returns the digests. */
async function fill(which: Which, dir: string, image: Image, workDir: string): Promise<Map<string, string>> {
  const blobs = path.join(dir, 'blobs');
  cpSync(image.blobDir, blobs, { recursive: true });
  const s = await mountImage(which, path.join(dir, `fill-${which}`), { ...image, blobDir: blobs }, { workDir });
  const digests = fileDigests(s.mountpoint);
  assert.ok((await backendReads(s)).read_count > 0, `${which} filled ${workDir} from its backend`);
  assert.equal((await s.daemon.stop(10_000)).code, 0);
  return digests;
}

describe('a work_dir one daemon filled is served by the other with zero backend reads', () => {
  const dirs: string[] = [];
  before(() => {
    requireEnv();
    requirePeers();
  });
  after(async () => {
    await cleanupDaemons();
    for (const d of dirs) removeDir(d);
  });
  const scratch = () => {
    const d = tempDir('diff-cache');
    dirs.push(d);
    return d;
  };

  for (const image of IMAGES) {
    test(`${image.name}: the reference fills, ours serves`, async () => {
      const dir = scratch();
      const workDir = path.join(dir, 'cache');
      const filled = await fill('ref', dir, image, workDir);
      const blob = readdirSync(image.blobDir)[0]!;
      assert.ok(existsSync(path.join(workDir, `${blob}.chunk_map`)), 'the 2.2 chunk map name');
      const ours = await mountImage('ours', path.join(dir, 'read'), { ...image, blobDir: deadBackend(dir, image) }, { workDir });
      assert.deepEqual([...fileDigests(ours.mountpoint)].sort(), [...filled].sort());
      const m = await backendReads(ours);
      assert.deepEqual([m.read_count, m.read_errors], [0, 0], 'backend reads by ours');
      assert.equal((await ours.daemon.stop(10_000)).code, 0);
    });

    test(`${image.name}: ours fills, the reference serves (once the chunk map has its 2.2 name)`, async () => {
      const dir = scratch();
      const workDir = path.join(dir, 'cache');
      const filled = await fill('ours', dir, image, workDir);
      const blob = readdirSync(image.blobDir)[0]!;
      const dead = deadBackend(dir, image);
      // as left by us: 2.2 does not find its map name, so it fetches, and the dead backend fails the read
      const bare = path.join(dir, 'bare');
      cpSync(workDir, bare, { recursive: true });
      const first = await mountImage('ref', path.join(dir, 'read-bare'), { ...image, blobDir: dead }, { workDir: bare });
      const big = [...filled.keys()].find((f) => f.endsWith('big.bin') || f.endsWith('.txt'))!;
      assert.equal(tryReadRange(path.join(first.mountpoint, big), 0, 4096), 'EIO', 'the reference on our work_dir as we leave it');
      assert.equal((await first.daemon.stop(10_000)).code, 0);
      // the same bytes and bitmap under the name 2.2 looks for: everything is served from the cache
      linkSync(path.join(workDir, `${blob}.blob.data.chunk_map`), path.join(workDir, `${blob}.chunk_map`));
      const ref = await mountImage('ref', path.join(dir, 'read'), { ...image, blobDir: dead }, { workDir });
      assert.deepEqual([...fileDigests(ref.mountpoint)].sort(), [...filled].sort());
      const m = await backendReads(ref);
      assert.deepEqual([m.read_count, m.read_errors], [0, 0], 'backend reads by the reference');
      assert.equal((await ref.daemon.stop(10_000)).code, 0);
    });

    test(`${image.name}: after reading every file both work_dirs hold the same bytes`, async () => {
      const dir = scratch();
      const work = { ref: path.join(dir, 'cache-ref'), ours: path.join(dir, 'cache-ours') };
      for (const which of ['ref', 'ours'] as const) await fill(which, path.join(dir, which), image, work[which]);
      const blob = readdirSync(image.blobDir)[0]!;
      const file = (which: 'ref' | 'ours', name: string) => readFileSync(path.join(work[which], name));
      // data file: every chunk at its uncompressed offset and zeros between (no bytes of anything else)
      assert.ok(file('ours', `${blob}.blob.data`).equals(file('ref', `${blob}.blob.data`)), '.blob.data');
      assert.ok(file('ours', `${blob}.blob.data.chunk_map`).equals(file('ref', `${blob}.chunk_map`)), 'chunk map (header and bitmap)');
      const meta = `${blob}.blob.meta`;
      assert.equal(existsSync(path.join(work.ours, meta)), existsSync(path.join(work.ref, meta)), '.blob.meta present in both or neither');
      if (existsSync(path.join(work.ref, meta))) assert.ok(file('ours', meta).equals(file('ref', meta)), '.blob.meta');
      const names = (w: string) => readdirSync(w).map((n) => n.replace(`${blob}.blob.data.chunk_map`, `${blob}.chunk_map`)).sort();
      assert.deepEqual(names(work.ours), names(work.ref), 'the files in work_dir, but for the chunk map name');
    });
  }
});
