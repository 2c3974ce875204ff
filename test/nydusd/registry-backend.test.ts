// End to end through the kernel: nydusd mounts fixture images whose blobs live in Debian's real `docker-registry`
// (distribution 2.8, started on loopback by test/helpers/registry.ts), with the registry backend, anonymously and with
// htpasswd Basic auth. Asserted: the md5 of every file equals the fixture's expectation (the v5 smoke-test `.result`
// listing; the v6 sample's source tree, its CI table fetched through the registry too); a cold read of one small file
// fetches far less than its blob (the backend byte counters); a wrong credential makes reads fail with EIO, with the
// 401 in the log, within the timeout x attempts bound (no hang).
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { projectRoot, texture } from '../helpers/paths.js';
import { basic, Registry, RegistryClient } from '../helpers/registry.js';
import { cleanupDaemons, daemonMetrics, md5, mountImage, removeDir, requireEnv, runBounded, tempDir } from './helpers.js';
import { fileDigests, smokeResult, splitResult } from './tree-listing.js';

const REPO = 'nydus/fixtures';
const V5_BOOTSTRAP = texture('repeatable', 'sha256-nocompress-repeatable');
const V5_BLOB = '7334a2594e133cf8ae364189c2276b090fc490c627bcc3fb1077f0419a538e00';
const V5_RESULT = texture('repeatable', 'sha256-nocompress-repeatable.result');
const SAMPLE = path.join(projectRoot, 'bootstrap-samples');
const V6_BLOB = '658a9ddec51da29f8557ffe2a8d8dbe3d02eaf12f679a342e7fde271e0c77571';

/** A v1 configuration as nydus-snapshotter writes it, with the registry backend. */
function registryConfig(file: string, registry: Registry, workDir: string, auth?: string): string {
  const backend: Record<string, unknown> = { scheme: 'http', host: registry.host, repo: REPO, timeout: 2, connect_timeout: 2 };
  if (auth) backend.auth = auth;
  writeFileSync(file, JSON.stringify({
    device: { backend: { type: 'registry', config: backend }, cache: { type: 'blobcache', config: { work_dir: workDir } } },
    mode: 'direct',
    enable_xattr: true,
  }));
  return file;
}

/** `md5sum` lines of the .result listing: path (relative, leading '/') -> md5 */
function expectedSums(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of splitResult(readFileSync(V5_RESULT, 'utf8')).sums.split('\n')) {
    const m = /^([0-9a-f]{32})\s+(\/.+)$/.exec(line);
    if (m) out.set(m[2]!, m[1]!);
  }
  return out;
}

describe('nydusd with the registry backend against docker-registry', () => {
  let work: string;
  const registries: Registry[] = [];
  before(() => {
    requireEnv(['docker-registry', 'htpasswd', 'tree', 'md5sum', 'find', 'sort']);
    work = tempDir('registry');
  });
  after(async () => {
    await cleanupDaemons();
    await Promise.all(registries.map((r) => r.destroy()));
    removeDir(work);
  });

  for (const mode of ['anonymous', 'htpasswd Basic auth'] as const) {
    it(`${mode}: every file right, a cold small read fetches a fraction of the blob`, { timeout: 120_000 }, async (t) => {
      const dir = path.join(work, mode.split(' ')[0]!);
      const user = mode === 'anonymous' ? undefined : { user: 'nydus', password: 'pw-e2e' };
      const registry = await Registry.start(user ? { kind: 'htpasswd', users: { [user.user]: user.password } } : { kind: 'anonymous' }, path.join(dir, 'registry'));
      registries.push(registry);
      const auth = user ? basic(user.user, user.password) : undefined;
      const pusher = new RegistryClient(registry.url, user, 'pull,push');
      const v5Blob = readFileSync(texture('repeatable', 'blobs', V5_BLOB));
      assert.equal(await pusher.pushBlob(REPO, v5Blob), `sha256:${V5_BLOB}`);
      assert.equal(await pusher.pushBlob(REPO, readFileSync(path.join(SAMPLE, 'v6-zstd', 'blobs', V6_BLOB))), `sha256:${V6_BLOB}`);

      // v5 fixture: one small file cold, then everything
      const mnt = path.join(dir, 'mnt-v5');
      const cfg = registryConfig(path.join(dir, 'v5.json'), registry, path.join(dir, 'cache-v5'), auth);
      const d = await mountImage(['--config', cfg, '--bootstrap', V5_BOOTSTRAP, '--mountpoint', mnt, '--log-level', 'info'], mnt);
      try {
        const sums = expectedSums();
        // the smallest non-empty file of the listing (stat asks for attributes only, no data)
        const small = [...sums.keys()]
          .map((p) => ({ p, size: statSync(path.join(mnt, p)).size }))
          .filter((f) => f.size > 0)
          .sort((a, b) => a.size - b.size)[0]!;
        const before = await daemonMetrics(d);
        assert.equal(before.backend.bytes, 0, 'nothing fetched before the first read');
        assert.equal(md5(readFileSync(path.join(mnt, small.p))), sums.get(small.p), small.p);
        const cold = await daemonMetrics(d);
        assert.equal(cold.backend.type, 'registry');
        assert.ok(cold.backend.bytes > 0, 'the read went to the registry');
        assert.ok(cold.backend.bytes * 8 < v5Blob.length, `a ${small.size}-byte file cost ${cold.backend.bytes} bytes of a ${v5Blob.length}-byte blob`);
        t.diagnostic(`cold read of ${small.p} (${small.size} bytes): ${cold.backend.reads} backend reads, ${cold.backend.bytes} bytes of the ${v5Blob.length}-byte blob`);
        // every file: the smoke-test listing's md5 sums
        const got = splitResult(smokeResult(mnt)).sums;
        assert.equal(got, splitResult(readFileSync(V5_RESULT, 'utf8')).sums);
        const all = await daemonMetrics(d);
        assert.equal(all.backend.errors, 0);
        t.diagnostic(`whole tree: ${all.backend.reads} backend reads, ${all.backend.bytes} bytes`);
      } finally {
        const r = await d.stop();
        assert.equal(r.code, 0, r.stderr);
      }

      // v6 sample (zstd): its CI table comes through the registry as well
      const mnt6 = path.join(dir, 'mnt-v6');
      const cfg6 = registryConfig(path.join(dir, 'v6.json'), registry, path.join(dir, 'cache-v6'), auth);
      const d6 = await mountImage(['fuse', '--config', cfg6, '--bootstrap', path.join(SAMPLE, 'v6-zstd', 'bootstrap'), '--mountpoint', mnt6, '--log-level', 'info'], mnt6);
      try {
        const sums = fileDigests(mnt6);
        const want = fileDigests(path.join(SAMPLE, 'tree'));
        assert.ok(want.size > 5);
        for (const [rel, sum] of want) assert.equal(sums.get(rel), sum, rel);
        assert.equal(sums.get('data/readme-hardlink'), want.get('docs/readme.txt'));
        assert.equal(statSync(path.join(mnt6, 'data/big.bin')).size, 0x100000 + 1000);
        assert.equal((await daemonMetrics(d6)).backend.errors, 0);
      } finally {
        const r = await d6.stop();
        assert.equal(r.code, 0, r.stderr);
      }

      if (mode === 'anonymous') return;
      // a wrong credential: the mount comes up (blobs open lazily), reads fail with EIO and the log says why
      const mntBad = path.join(dir, 'mnt-bad');
      const cfgBad = registryConfig(path.join(dir, 'bad.json'), registry, path.join(dir, 'cache-bad'), Buffer.from('nydus:wrong').toString('base64'));
      const bad = await mountImage(['--config', cfgBad, '--bootstrap', V5_BOOTSTRAP, '--mountpoint', mntBad, '--log-level', 'info'], mntBad);
      try {
        const file = path.join(mntBad, [...expectedSums().keys()][0]!);
        // bounded: 4 attempts of at most timeout (2 s) each plus the limiter's second; 60 s only guards a hang
        await assert.rejects(runBounded('cat', [file], 60_000), /Input\/output error/);
        assert.match(bad.stderr, /registry: reading blob 7334a259\S* \[\d+, \+\d+\) failed after 4 attempts: the registry answered 401/);
        assert.ok(!bad.stderr.includes('nydus:wrong') && !bad.stderr.includes(Buffer.from('nydus:wrong').toString('base64')), 'no credential in the log');
      } finally {
        const r = await bad.stop();
        assert.equal(r.code, 0, r.stderr);
      }
    });
  }
});
