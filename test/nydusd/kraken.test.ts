// nydusd reading an image through a REAL Kraken v0.1.4 cluster (issue 11 scope 4; spec p2p-seeds.md 3), on the real
// kernel: the fixture's blob is pushed to Debian's docker-registry, which the cluster's origin and build-index read
// from (test/helpers/kraken.ts), and nydusd reads it from the Kraken agent two ways: the registry backend pointed at
// the agent's registry port unchanged (Distribution API, ranged GETs), and our `kraken` backend on the agent server's
// whole-blob `GET /namespace/<ns>/blobs/<digest>`. Asserted: the md5 of every file is the fixture's either way, the
// kraken backend downloading the blob once; with the agent killed, cold reads of the registry backend are EIO within
// timeout x attempts (bounded generously), while cached files keep reading; the kraken backend keeps answering every
// file from its spool once the blob is in, and a fresh kraken mount fails fast with EIO and a log line naming the
// unhealthy agent; once the agent is back, the same daemons (no remount) serve every file right.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KrakenCluster } from '../helpers/kraken.js';
import { Registry, RegistryClient } from '../helpers/registry.js';
import { cleanupDaemons, Daemon, isMounted, removeDir, requireEnv, tempDir, waitFor } from './helpers.js';
import { assertAllEio, assertAllRight, FIXTURE, fixtureGroups, fixtureSums, pushFixture, readFiles, startFixtureDaemon, startRegistryDaemon } from './registry-helpers.js';

const REPO = 'nydus/kraken';
const TIMEOUT_S = 2;
/** one read that must fail: every attempt (4, spec 7.4) running into the timeout, and much slack */
const FAIL_BOUND_MS = 4 * (TIMEOUT_S + 2) * 1000 + 30_000;

interface KrakenDaemon {
  daemon: Daemon;
  mnt: string;
  spoolDir: string;
}

/** A dedicated nydusd on the fixture with the kraken backend (v1 shape, as a snapshotter would write it). */
async function startKrakenDaemon(dir: string, agent: string): Promise<KrakenDaemon> {
  const workDir = path.join(dir, 'cache');
  const spoolDir = path.join(dir, 'spool');
  for (const d of [workDir, spoolDir]) mkdirSync(d, { recursive: true });
  const cfg = path.join(dir, 'config.json');
  writeFileSync(
    cfg,
    JSON.stringify({
      device: {
        backend: { type: 'kraken', config: { agent, namespace: REPO, timeout: TIMEOUT_S, connect_timeout: 2, check_interval: 1, spool_dir: spoolDir } },
        cache: { type: 'blobcache', config: { work_dir: workDir } },
      },
      mode: 'direct',
      digest_validate: false,
      enable_xattr: true,
      amplify_io: 0,
    }),
  );
  const { daemon, mnt } = await startFixtureDaemon(dir, cfg);
  return { daemon, mnt, spoolDir };
}

/** The bytes of the blob's spool file so far (0 before the download has started). */
function spooled(spoolDir: string): number {
  for (const d of readdirSync(spoolDir)) {
    for (const f of readdirSync(path.join(spoolDir, d))) if (f.startsWith(FIXTURE.blobId)) return statSync(path.join(spoolDir, d, f)).size;
  }
  return 0;
}

const downloads = (d: Daemon) => d.stderr.split('\n').filter((l) => l.includes(`kraken: downloading blob ${FIXTURE.blobId} from`)).length;

describe('nydusd through a real Kraken cluster', { timeout: 900_000 }, () => {
  let work: string;
  let registry: Registry;
  let kraken: KrakenCluster;
  const files = [...fixtureSums().keys()];
  const groups = fixtureGroups();

  before(async () => {
    requireEnv(['docker-registry', 'nginx', 'redis-server']);
    work = tempDir('kraken');
    registry = await Registry.start({ kind: 'anonymous' }, path.join(work, 'registry'));
    await pushFixture(new RegistryClient(registry.url), REPO);
    kraken = await KrakenCluster.start(registry.host);
  });
  after(async () => {
    await cleanupDaemons();
    await kraken?.stop().catch(() => undefined);
    await registry?.destroy().catch(() => undefined);
    removeDir(work);
  });

  const agentRegistryHost = () => `127.0.0.1:${kraken.ports.agentRegistry}`;

  it('registry backend on the agent registry port: every file right', { timeout: 180_000 }, async () => {
    const d = await startRegistryDaemon(path.join(work, 'registry-all'), { host: agentRegistryHost(), repo: REPO, timeout: 30 });
    // the first read waits for the agent to fetch the blob through the cluster: bounded generously
    assertAllRight(await readFiles(d.mnt, files, 120_000), 'registry backend via the Kraken agent');
    await d.daemon.stop();
  });

  it('kraken backend on the agent server: every file right, the blob downloaded once, the spool removed at unmount', { timeout: 180_000 }, async () => {
    const d = await startKrakenDaemon(path.join(work, 'kraken-all'), kraken.serverUrl);
    assertAllRight(await readFiles(d.mnt, files, 120_000), 'kraken backend');
    assert.equal(downloads(d.daemon), 1, 'one whole-blob download for every read');
    assert.equal(spooled(d.spoolDir), FIXTURE.blob.length);
    await d.daemon.stop();
    assert.deepEqual(readdirSync(d.spoolDir), [], 'the spool directory went with the backend');
  });

  it('agent killed: registry backend cold reads EIO in bounded time, cached ones right; kraken backend serves its spool, a fresh one fails fast; back: all right', { timeout: 600_000 }, async (t) => {
    const r = await startRegistryDaemon(path.join(work, 'registry-kill'), { host: agentRegistryHost(), repo: REPO, timeout: TIMEOUT_S });
    const k1 = await startKrakenDaemon(path.join(work, 'kraken-kill-1'), kraken.serverUrl);
    assertAllRight(await readFiles(r.mnt, groups.A, 120_000), 'registry backend, group A, agent up');
    assertAllRight(await readFiles(k1.mnt, groups.A, 120_000), 'kraken backend, group A, agent up');
    // the kraken backend goes on downloading the whole blob after group A: wait until it is all in the spool
    await waitFor(() => spooled(k1.spoolDir) === FIXTURE.blob.length, 120_000, 'the whole blob in the spool');

    await kraken.stopAgent();
    assertAllRight(await readFiles(r.mnt, groups.A, 60_000), 'registry backend, cached group A, agent down');
    const cold = [...groups.B, ...groups.C];
    const failed = await readFiles(r.mnt, cold, cold.length * FAIL_BOUND_MS);
    assertAllEio(failed, 'registry backend, agent down');
    for (const [f, res] of failed) assert.ok(res.ms < FAIL_BOUND_MS, `${f} took ${res.ms} ms`);
    t.diagnostic(`registry backend, agent down: slowest EIO ${Math.max(...[...failed.values()].map((x) => x.ms))} ms`);
    assert.ok(r.daemon.stderr.split('\n').some((l) => l.includes(FIXTURE.blobId) && /ERROR/.test(l)), 'a log line names the blob of the failed read');

    // the whole blob is in k1's spool: every file, cached or not, is answered without the agent
    assertAllRight(await readFiles(k1.mnt, files, 60_000), 'kraken backend from its spool, agent down');
    assert.equal(downloads(k1.daemon), 1);

    // a fresh kraken mount has nothing: its reads fail, and once the agent is known down, they fail at once
    const k2 = await startKrakenDaemon(path.join(work, 'kraken-kill-2'), kraken.serverUrl);
    const k2Failed = await readFiles(k2.mnt, groups.A, groups.A.length * FAIL_BOUND_MS);
    assertAllEio(k2Failed, 'fresh kraken backend, agent down');
    for (const [f, res] of k2Failed) assert.ok(res.ms < FAIL_BOUND_MS, `${f} took ${res.ms} ms`);
    t.diagnostic(`fresh kraken backend, agent down: slowest EIO ${Math.max(...[...k2Failed.values()].map((x) => x.ms))} ms`);
    const lines = k2.daemon.stderr.split('\n');
    assert.ok(lines.some((l) => /ERROR/.test(l) && l.includes(FIXTURE.blobId) && l.includes(`the Kraken agent at ${kraken.serverUrl}`)), 'a log line names the blob and the agent');
    assert.ok(lines.some((l) => l.includes(`kraken: the Kraken agent at ${kraken.serverUrl} is unhealthy`)), 'the agent was marked unhealthy');

    // back: the same daemons serve every file right, no remount
    await kraken.startAgent();
    assertAllRight(await readFiles(r.mnt, files, 120_000), 'registry backend, agent back');
    await waitFor(() => k2.daemon.stderr.includes(`kraken: the Kraken agent at ${kraken.serverUrl} is healthy again`), 60_000, 'the health check to pass');
    assertAllRight(await readFiles(k2.mnt, files, 120_000), 'fresh kraken backend, agent back');
    for (const d of [r, k1, k2]) assert.ok(d.daemon.running && isMounted(d.mnt));
    for (const d of [r, k1, k2]) await d.daemon.stop();
  });
});
