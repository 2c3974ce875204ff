// nydusd's proxy mode through the kernel (issue 11 acceptance, Proxy; spec nydusd-runtime.md 7.5, DECISIONS.md row 10)
// with the REAL Dragonfly v2.0.9 cluster (test/helpers/dragonfly.ts: manager, scheduler, seed peer, one dfdaemon
// whose proxy port is `proxy.url` and whose health endpoint is `proxy.ping_url`) in front of Debian's docker-registry,
// with a counting front end between them. Asserted, every file byte-exact against the fixture's md5 listing:
// - reads flow through the proxy: the peer counts one request via Dragonfly for every backend read of nydusd;
// - the proxy killed: the health check says so in the log, and reads fall back to the registry (each backend read is
//   one GET at the registry, the peer being dead); started again: once its ping passes (logged), the reads go through
//   it again (its counter grows by the backend reads);
// - `fallback: false` with the proxy down: reads fail with EIO in bounded time, the log says "proxy is not healthy
//   and fallback is disabled", and the registry is never asked;
// - `proxy_url` set through PUT /api/v1/config re-routes a daemon that had no proxy, live.
// Every wait is a poll with a generous deadline; no sleep synchronises anything.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { request } from '../api/helpers.js';
import { DragonflyCluster, type DragonflyPeer } from '../helpers/dragonfly.js';
import { FrontEnd, Registry, RegistryClient } from '../helpers/registry.js';
import { backendReads, cleanupDaemons, removeDir, requireEnv, tempDir, waitFor, type Daemon } from './helpers.js';
import { assertAllEio, assertAllRight, backendCounters, fixtureGroups, pushFixture, readFiles, startRegistryDaemon } from './registry-helpers.js';

const REPO = 'nydus/proxied';
const VIA_DRAGONFLY = 'dragonfly_dfdaemon_proxy_request_via_dragonfly_total';
/** generous bounds against hangs, not expectations */
const READ_BOUND_MS = 120_000;
const HEALTH_BOUND_MS = 60_000;

describe('nydusd through a real Dragonfly dfdaemon proxy', { timeout: 900_000 }, () => {
  let work: string;
  let reg: Registry;
  let front: FrontEnd;
  let cluster: DragonflyCluster;
  let peer: DragonflyPeer;
  const groups = fixtureGroups();

  before(async () => {
    requireEnv(['docker-registry']);
    work = tempDir('registry-proxy');
    reg = await Registry.start({ kind: 'anonymous' }, path.join(work, 'registry'));
    await pushFixture(new RegistryClient(reg.url), REPO);
    front = await FrontEnd.start(reg);
    cluster = await DragonflyCluster.start({ peers: 1 });
    peer = cluster.peers[0]!;
  });
  after(async () => {
    await cleanupDaemons();
    await cluster?.stop().catch(() => undefined);
    await front?.close().catch(() => undefined);
    await reg?.destroy().catch(() => undefined);
    removeDir(work);
  });

  const viaDragonfly = async () => (await peer.metrics()).get(VIA_DRAGONFLY) ?? 0;
  const proxyConfig = (over: Record<string, unknown> = {}) => ({ url: peer.proxyUrl, ping_url: peer.pingUrl, fallback: true, check_interval: 1, ...over });
  /** the daemon's log has a line matching `re`, polled within HEALTH_BOUND_MS */
  const logShows = (d: Daemon, re: RegExp, what: string) => waitFor(() => re.test(d.stderr), HEALTH_BOUND_MS, what);
  const count = (re: RegExp, s: string) => s.split('\n').filter((l) => re.test(l)).length;

  it('reads flow through the proxy; killed, reads fall back to the registry; back, traffic returns once its ping passes', async () => {
    const d = await startRegistryDaemon(path.join(work, 'fallback'), { host: front.host, repo: REPO, timeout: 10, connectTimeout: 2, proxy: proxyConfig() });
    assert.match(d.daemon.stderr, new RegExp(`requests go through proxy ${peer.proxyUrl} \\(fallback on, health check ${peer.pingUrl} every 1 s\\)`));

    // through the proxy: every backend read is a request the peer served via Dragonfly
    let via = await viaDragonfly();
    let reads = (await backendCounters(d.daemon)).reads;
    assertAllRight(await readFiles(d.mnt, groups.A, READ_BOUND_MS), 'through the proxy');
    const readsA = (await backendCounters(d.daemon)).reads - reads;
    assert.ok(readsA > 0, 'group A needed backend reads');
    assert.equal((await viaDragonfly()) - via, readsA, 'each backend read went through the peer, via Dragonfly');
    assert.doesNotMatch(d.daemon.stderr, /falling back|not healthy/);

    // the proxy dies: the ping fails, reads go to the registry directly (nothing else can reach it now)
    await peer.stop();
    await logShows(d.daemon, new RegExp(`proxy ${peer.proxyUrl} is not healthy \\(ping ${peer.pingUrl} `), 'the health check to notice the dead proxy');
    const gets = front.blobGets.length;
    const logged = backendReads(d.daemon.stderr).length;
    reads = (await backendCounters(d.daemon)).reads;
    assertAllRight(await readFiles(d.mnt, groups.B, READ_BOUND_MS), 'proxy dead, fallback');
    const readsB = (await backendCounters(d.daemon)).reads - reads;
    assert.ok(readsB > 0, 'group B needed backend reads');
    // the seed peer may still fetch ranges of earlier tasks from the registry: count the GETs of B's ranges only
    const rangesB = backendReads(d.daemon.stderr).slice(logged).map((r) => `bytes=${r.offset}-${r.offset + r.length - 1}`);
    assert.equal(rangesB.length, readsB);
    const direct = front.blobGets.slice(gets).filter((g) => rangesB.includes(g.range ?? ''));
    assert.deepEqual(direct.map((g) => g.range).sort(), [...rangesB].sort(), 'each backend read was one GET at the registry');
    assert.ok(direct.every((g) => g.action === 'forward' && g.status === 206));

    // back: once a ping passes, the traffic returns to the proxy
    await peer.start();
    await logShows(d.daemon, new RegExp(`proxy ${peer.proxyUrl} is healthy again`), 'the health check to see the proxy back');
    via = await viaDragonfly();
    reads = (await backendCounters(d.daemon)).reads;
    assertAllRight(await readFiles(d.mnt, groups.C, READ_BOUND_MS), 'proxy back');
    const readsC = (await backendCounters(d.daemon)).reads - reads;
    assert.ok(readsC > 0, 'group C needed backend reads');
    assert.equal((await viaDragonfly()) - via, readsC, 'each backend read went through the peer again');
    // each transition was logged once, not once per request
    assert.equal(count(/is not healthy/, d.daemon.stderr), 1);
    assert.equal(count(/is healthy again/, d.daemon.stderr), 1);
    // everything read stays readable from the cache
    assertAllRight(await readFiles(d.mnt, [...groups.A, ...groups.B, ...groups.C], READ_BOUND_MS), 'all, cached');
    await d.daemon.kill();
  });

  it('fallback: false with the proxy down: EIO in bounded time with the reason in the log, the registry never asked', async () => {
    // a front end of its own: the seed peer may still fetch earlier tasks' ranges through the shared one
    const own = await FrontEnd.start(reg);
    const d = await startRegistryDaemon(path.join(work, 'no-fallback'), { host: own.host, repo: REPO, timeout: 10, connectTimeout: 2, proxy: proxyConfig({ fallback: false }) });
    let stopped = false;
    try {
      await peer.stop();
      stopped = true;
      await logShows(d.daemon, /is not healthy/, 'the health check to notice the dead proxy');
      assert.equal(own.blobGets.length, 0);
      assertAllEio(await readFiles(d.mnt, groups.A, READ_BOUND_MS), 'proxy dead, no fallback');
      assert.match(d.daemon.stderr, /failed after 4 attempts: proxy is not healthy and fallback is disabled \(proxy http:\/\/127\.0\.0\.1:\d+\)/);
      assert.deepEqual(own.blobGets, [], 'no read went around the proxy');
      // back: the same daemon reads right through it, no remount
      await peer.start();
      stopped = false;
      await logShows(d.daemon, /is healthy again/, 'the health check to see the proxy back');
      const via = await viaDragonfly();
      assertAllRight(await readFiles(d.mnt, groups.A, READ_BOUND_MS), 'proxy back, no fallback');
      assert.ok((await viaDragonfly()) > via);
    } finally {
      await d.daemon.kill();
      // the next test needs the peer
      if (stopped) await peer.start();
      await own.close();
    }
  });

  it('proxy_url through PUT /api/v1/config re-routes a running daemon that had no proxy, and "" turns it off', async () => {
    const d = await startRegistryDaemon(path.join(work, 'live'), { host: front.host, repo: REPO, timeout: 10, connectTimeout: 2 });
    try {
      let via = await viaDragonfly();
      let gets = front.blobGets.length;
      assertAllRight(await readFiles(d.mnt, groups.A, READ_BOUND_MS), 'no proxy');
      assert.equal(await viaDragonfly(), via, 'nothing through the proxy yet');
      assert.ok(front.blobGets.length > gets);

      const put = await request(d.sock, 'PUT', '/api/v1/config?id=%2F', { body: JSON.stringify({ proxy_url: peer.proxyUrl }) });
      assert.equal(put.status, 204, put.text);
      via = await viaDragonfly();
      const reads = (await backendCounters(d.daemon)).reads;
      assertAllRight(await readFiles(d.mnt, groups.B, READ_BOUND_MS), 'proxy set live');
      const readsB = (await backendCounters(d.daemon)).reads - reads;
      assert.ok(readsB > 0);
      assert.equal((await viaDragonfly()) - via, readsB, 'every read after the PUT went through the proxy');

      const off = await request(d.sock, 'PUT', '/api/v1/config?id=%2F', { body: JSON.stringify({ proxy_url: '' }) });
      assert.equal(off.status, 204, off.text);
      via = await viaDragonfly();
      gets = front.blobGets.length;
      assertAllRight(await readFiles(d.mnt, groups.C, READ_BOUND_MS), 'proxy turned off');
      assert.equal(await viaDragonfly(), via, 'nothing through the proxy after it was turned off');
      assert.ok(front.blobGets.length > gets);
    } finally {
      await d.daemon.kill();
    }
  });
});
