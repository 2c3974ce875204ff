// Proxy mode of the registry backend (src/storage/backend/http/proxy.ts, nydusd-runtime.md 7.5, 7.4's proxy rows,
// DECISIONS.md rows 5 and 10) against in-process fakes: a forward proxy on loopback that records what reaches it and
// can fail, die and come back (fake-proxy.ts), in front of the fake registry. Asserted: what goes through the proxy and
// how (absolute-form, the Dragonfly headers, CONNECT for https, use_http), what never does (token requests), where
// credentials go, fallback on a dead proxy or a 5xx and none when it is off, the health check deciding the route,
// the Dragonfly 403/429 rows of the retry table, and live re-routing through setProxyUrl.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import type { ProxyConfig } from '../../../src/config/model.js';
import type { LogLevel } from '../../../src/log.js';
import { BackendError } from '../../../src/storage/backend/errors.js';
import { MeteredBackend } from '../../../src/storage/backend/metered.js';
import { RegistryBackend } from '../../../src/storage/backend/registry/registry.js';
import { NETWORK_RETRY_POLICY, RateLimiter, RetryBackend } from '../../../src/storage/backend/retry.js';
import { FakeProxy } from './fake-proxy.js';
import { FakeObjectStore, FakeRegistry, registryConfigFor, selfSignedCert, type FakeAuth } from './fake-registry.js';

const BLOB = crypto.randomBytes(300_000);
const b64 = (s: string) => Buffer.from(s).toString('base64');
const PROXY_DEFAULTS: ProxyConfig = { url: '', ping_url: '', fallback: true, check_interval: 5, use_http: false, check_pause_elapsed: 300, dragonfly_scheduler_endpoint: '' };

/** Requests the registry saw through the proxy (they carry the Dragonfly headers) and directly (they do not). */
function split(registry: FakeRegistry, prefix: string) {
  const blobGets = registry.requests.filter((r) => r.url.startsWith(prefix) && r.method === 'GET');
  return { viaProxy: blobGets.filter((r) => r.headers['x-dragonfly-use-p2p'] === 'true').length, direct: blobGets.filter((r) => r.headers['x-dragonfly-use-p2p'] === undefined).length };
}

describe('proxy mode (registry backend through a forward proxy)', () => {
  const open: { close(): Promise<void> }[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    while (open.length) await open.pop()!.close();
    while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
  });

  async function setUp(opts: { auth?: FakeAuth; proxy?: Partial<ProxyConfig>; credential?: string; withPing?: boolean } = {}) {
    const registry = await FakeRegistry.start({ auth: opts.auth });
    const proxy = await FakeProxy.start();
    open.push(registry, proxy);
    const id = registry.addBlob(BLOB);
    const logs: { level: LogLevel; message: string }[] = [];
    const backend = new RegistryBackend(
      registryConfigFor(registry, { timeout: 3, connect_timeout: 2, auth: opts.credential ?? null, proxy: { ...PROXY_DEFAULTS, url: proxy.url, ping_url: opts.withPing ? proxy.pingUrl : '', ...opts.proxy } }),
      { log: (level, message) => logs.push({ level, message }) },
    );
    open.push(backend);
    const blobPath = `/v2/${registry.repo}/blobs/sha256:${id}`;
    return { registry, proxy, backend, id, logs, blobPath };
  }

  it('sends blob reads to the proxy in absolute-form with the Dragonfly headers; prefetch reads at priority 3', async () => {
    const { registry, proxy, backend, id, blobPath } = await setUp();
    assert.ok((await backend.read(id, 1000, 50_000)).equals(BLOB.subarray(1000, 51_000)));
    assert.ok((await backend.read(id, 200_000, 10_000, undefined, undefined, 'prefetch')).equals(BLOB.subarray(200_000, 210_000)));
    const [onDemand, prefetch] = proxy.forwarded;
    assert.equal(proxy.forwarded.length, 2);
    assert.equal(onDemand!.url, `${registry.url}${blobPath}`, 'absolute-form request target');
    assert.equal(onDemand!.headers.host, registry.host, 'Host names the registry, not the proxy');
    assert.equal(onDemand!.headers.range, 'bytes=1000-50999');
    assert.equal(onDemand!.headers['x-dragonfly-priority'], '6');
    assert.equal(prefetch!.headers['x-dragonfly-priority'], '3');
    for (const r of proxy.forwarded) {
      assert.equal(r.headers['x-dragonfly-use-p2p'], 'true');
      assert.equal(r.headers['x-dragonfly-prefetch'], 'true');
      assert.equal(r.headers['user-agent'], 'nydusd/1.0.0');
    }
    assert.deepEqual(split(registry, blobPath), { viaProxy: 2, direct: 0 });
    assert.deepEqual(backend.proxy!.counts, { proxied: 2, fallbacks: 0, direct: 0 });
  });

  it('never sends token requests through the proxy; Authorization only on requests to the registry host, never to a redirect target', async () => {
    const { registry, proxy, backend, id, blobPath } = await setUp({ auth: { kind: 'bearer', user: 'u', password: 'p' }, credential: b64('u:p') });
    const store = await FakeObjectStore.start(registry.blobs);
    open.push(store);
    registry.redirectTo = store;
    assert.ok((await backend.read(id, 0, 4096)).equals(BLOB.subarray(0, 4096)));
    assert.ok((await backend.read(id, 4096, 4096)).equals(BLOB.subarray(4096, 8192)));
    const tokenReqs = registry.requests.filter((r) => r.url.startsWith('/token'));
    assert.ok(tokenReqs.length >= 1, 'a token was fetched');
    assert.ok(tokenReqs.every((r) => r.headers['x-dragonfly-use-p2p'] === undefined), 'token requests went directly');
    assert.ok(proxy.forwarded.every((r) => !new URL(r.url).pathname.startsWith('/token')), 'no token request reached the proxy');
    // registry blob GETs through the proxy: the 401, then the authorized one; then the redirect target, twice
    const toRegistry = proxy.forwarded.filter((r) => r.url.startsWith(registry.url));
    const toStore = proxy.forwarded.filter((r) => r.url.startsWith(store.url));
    assert.equal(toRegistry.length, 2);
    assert.equal(toRegistry[0]!.headers.authorization, undefined);
    assert.match(String(toRegistry[1]!.headers.authorization), /^Bearer /, 'the proxy forwards the registry its token');
    assert.equal(toStore.length, 2, 'redirected object-storage GETs go through the proxy too');
    assert.ok(toStore.every((r) => r.headers.authorization === undefined && r.headers['x-dragonfly-use-p2p'] === 'true'));
    assert.ok(store.requests.every((r) => r.headers.authorization === undefined));
    assert.equal(split(registry, blobPath).direct, 0);
  });

  it('falls back to the registry when the proxy is dead or answers >= 500, logging the spell once, and returns to it', async () => {
    const { registry, proxy, backend, id, logs, blobPath } = await setUp();
    proxy.faults.push({ status: 502 });
    assert.ok((await backend.read(id, 0, 1000)).equals(BLOB.subarray(0, 1000)));
    await proxy.stop();
    for (let i = 1; i <= 3; i++) assert.ok((await backend.read(id, i * 1000, 1000)).equals(BLOB.subarray(i * 1000, (i + 1) * 1000)));
    assert.deepEqual(split(registry, blobPath), { viaProxy: 0, direct: 4 });
    assert.equal(backend.proxy!.counts.fallbacks, 4);
    const warns = logs.filter((l) => l.level === 'warn' && /falling back to/.test(l.message));
    assert.equal(warns.length, 1, `one warning for the spell: ${JSON.stringify(logs)}`);
    assert.match(warns[0]!.message, new RegExp(`proxy ${proxy.url} answered 502; falling back to ${registry.url}`));
    await proxy.restart();
    assert.ok((await backend.read(id, 9000, 1000)).equals(BLOB.subarray(9000, 10_000)));
    assert.deepEqual(split(registry, blobPath), { viaProxy: 1, direct: 4 });
    assert.ok(logs.some((l) => l.level === 'info' && /answers again/.test(l.message)));
  });

  it('with fallback off, a dead proxy or its 5xx is the answer: the read fails naming the proxy, the registry is not asked', async () => {
    const { registry, proxy, backend, id, blobPath } = await setUp({ proxy: { fallback: false } });
    proxy.faults.push({ status: 500 });
    await assert.rejects(backend.read(id, 0, 100), (e: BackendError) => {
      assert.match(e.message, /answered 500/);
      assert.equal(e.code, 'ND_ERR_STATUS');
      return true;
    });
    await proxy.stop();
    await assert.rejects(backend.read(id, 0, 100), (e: BackendError) => {
      assert.match(e.message, new RegExp(`proxy ${proxy.url}: cannot connect to ${proxy.url}`));
      assert.equal(e.code, 'ND_ERR_CONNECT');
      return true;
    });
    assert.deepEqual(split(registry, blobPath), { viaProxy: 0, direct: 0 });
  });

  it('health check: an unhealthy proxy is skipped (fallback) or refused (no fallback); a passing ping brings it back', async () => {
    for (const fallback of [true, false]) {
      const { registry, proxy, backend: withPing, id, logs, blobPath } = await setUp({ withPing: true, proxy: { fallback } });
      const health = withPing.proxy!.checker!;
      assert.ok(withPing.proxy!.healthy, 'starts out healthy');
      assert.ok((await withPing.read(id, 0, 100)).equals(BLOB.subarray(0, 100)));
      proxy.pingStatus = 503;
      await health.check();
      assert.equal(withPing.proxy!.healthy, false);
      assert.ok(logs.some((l) => l.level === 'warn' && l.message.includes(`proxy ${proxy.url} is not healthy (ping ${proxy.pingUrl} answered 503)`)));
      const forwarded = proxy.forwarded.length;
      if (fallback) {
        assert.ok((await withPing.read(id, 100, 100)).equals(BLOB.subarray(100, 200)));
        assert.deepEqual(split(registry, blobPath), { viaProxy: 1, direct: 1 });
      } else {
        await assert.rejects(withPing.read(id, 100, 100), (e: BackendError) => {
          assert.match(e.message, /proxy is not healthy and fallback is disabled/);
          assert.equal(e.code, 'ND_ERR_PROXY');
          return true;
        });
        assert.deepEqual(split(registry, blobPath), { viaProxy: 1, direct: 0 });
      }
      assert.equal(proxy.forwarded.length, forwarded, 'an unhealthy proxy is not asked');
      // a dead proxy is unhealthy too; back and answering its ping, it is used again
      await proxy.stop();
      proxy.pingStatus = 200;
      await health.check();
      assert.equal(withPing.proxy!.healthy, false);
      await proxy.restart();
      await health.check();
      assert.equal(withPing.proxy!.healthy, true);
      assert.ok(logs.some((l) => l.level === 'info' && /is healthy again/.test(l.message)));
      assert.ok((await withPing.read(id, 500, 100)).equals(BLOB.subarray(500, 600)));
      assert.equal(proxy.forwarded.length, forwarded + 1);
      while (open.length) await open.pop()!.close();
    }
  });

  it('retry table: a Dragonfly 403 is not retried; a 429 is retried at once around the proxy (on-demand) or not at all (prefetch)', async () => {
    const { registry, proxy, backend, id, blobPath } = await setUp();
    const metered = new MeteredBackend(backend);
    const retry = new RetryBackend(metered, NETWORK_RETRY_POLICY, new RateLimiter(0));
    proxy.faults.push({ status: 403, dragonfly: true });
    await assert.rejects(retry.read(id, 0, 100), (e: BackendError) => {
      assert.equal(e.code, 'ND_ERR_PROXY_FORBIDDEN');
      assert.match(e.message, /failed after 1 attempt: proxy .* forbade the request \(403\)/);
      return true;
    });
    assert.equal(metered.stats.reads, 1);
    proxy.faults.push({ status: 429, dragonfly: true });
    assert.ok((await retry.read(id, 0, 100)).equals(BLOB.subarray(0, 100)));
    assert.equal(metered.stats.reads, 3);
    assert.deepEqual(split(registry, blobPath), { viaProxy: 0, direct: 1 }, 'the retry after the 429 went around the proxy');
    proxy.faults.push({ status: 429, dragonfly: true });
    await assert.rejects(retry.read(id, 0, 100, undefined, undefined, 'prefetch'), (e: BackendError) => e.code === 'ND_ERR_PROXY_RATE_LIMITED');
    assert.equal(metered.stats.reads, 4);
    // a 429 without the Dragonfly mark is the registry's: an ordinary retry through the proxy
    proxy.faults.push({ status: 429 });
    assert.ok((await retry.read(id, 0, 100)).equals(BLOB.subarray(0, 100)));
    assert.deepEqual(split(registry, blobPath), { viaProxy: 1, direct: 1 });
  });

  it('the last on-demand retry bypasses the proxy when fallback is on; with fallback off nothing goes around it', async () => {
    {
      // a 404 is below 500: no fallback for it, the retries go through the proxy until the last
      const { registry, proxy, backend, id, blobPath } = await setUp();
      const retry = new RetryBackend(new MeteredBackend(backend), NETWORK_RETRY_POLICY, new RateLimiter(0));
      proxy.faults.push({ status: 404 }, { status: 404 }, { status: 404 }, { status: 404 });
      assert.ok((await retry.read(id, 7, 70)).equals(BLOB.subarray(7, 77)));
      assert.equal(proxy.forwarded.length, 3, 'three attempts through the proxy');
      assert.deepEqual(split(registry, blobPath), { viaProxy: 0, direct: 1 }, 'the fourth went to the registry directly');
    }
    {
      const { registry, proxy, backend, id, blobPath } = await setUp({ proxy: { fallback: false } });
      const retry = new RetryBackend(new MeteredBackend(backend), NETWORK_RETRY_POLICY, new RateLimiter(0));
      proxy.faults.push({ status: 500 }, { status: 500 }, { status: 500 }, { status: 500 });
      await assert.rejects(retry.read(id, 7, 70), /failed after 4 attempts: the registry answered 500: injected 500/);
      assert.equal(proxy.forwarded.length, 4, 'every attempt through the proxy');
      assert.deepEqual(split(registry, blobPath), { viaProxy: 0, direct: 0 });
    }
  });

  it('https registry: tunnelled with CONNECT, TLS verified end to end; use_http rewrites it to http from the first request on', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'nydus-proxy-tls-'));
    dirs.push(dir);
    const tls = await selfSignedCert(dir);
    const registry = await FakeRegistry.start({ tls });
    const proxy = await FakeProxy.start();
    open.push(registry, proxy);
    const id = registry.addBlob(BLOB);
    const cfg = (use_http: boolean) => registryConfigFor(registry, { ca_cert_files: [tls.certFile], timeout: 3, connect_timeout: 2, proxy: { ...PROXY_DEFAULTS, url: proxy.url, use_http } });
    const tunnelled = new RegistryBackend(cfg(false));
    open.push(tunnelled);
    assert.ok((await tunnelled.read(id, 10, 1000)).equals(BLOB.subarray(10, 1010)));
    assert.deepEqual(proxy.connects.map((c) => c.url), [registry.host]);
    assert.equal(proxy.forwarded.length, 0);
    // use_http: sent to the proxy as http:// (which this https-only registry cannot answer, so the fake proxy's 502
    // falls back to the original https URL directly)
    const rewritten = new RegistryBackend(cfg(true));
    open.push(rewritten);
    assert.ok((await rewritten.read(id, 20, 1000)).equals(BLOB.subarray(20, 1020)));
    assert.equal(proxy.forwarded.length, 1);
    assert.equal(proxy.forwarded[0]!.url, `http://${registry.host}/v2/${registry.repo}/blobs/sha256:${id}`);
    assert.equal(proxy.connects.length, 1, 'no CONNECT for the rewritten request');
    assert.equal(rewritten.proxy!.counts.fallbacks, 1);
  });

  it('re-routes live: setProxyUrl turns the proxy on, moves it, turns it off; a bad URL is refused and the route kept', async () => {
    const registry = await FakeRegistry.start();
    const a = await FakeProxy.start();
    const b = await FakeProxy.start();
    open.push(registry, a, b);
    const id = registry.addBlob(BLOB);
    const logs: string[] = [];
    const backend = new RegistryBackend(registryConfigFor(registry, { proxy: { ...PROXY_DEFAULTS, dragonfly_scheduler_endpoint: 'http://127.0.0.1:8002' } }), { log: (_l, m) => logs.push(m) });
    open.push(backend);
    const read = async (off: number) => assert.ok((await backend.read(id, off, 100)).equals(BLOB.subarray(off, off + 100)));
    await read(0);
    backend.setProxyUrl(a.url);
    await read(100);
    backend.setProxyUrl(b.url);
    await read(200);
    backend.setProxyUrl('ftp://nowhere');
    await read(300);
    backend.setProxyUrl('');
    await read(400);
    assert.deepEqual(a.forwarded.map((r) => r.headers.range), ['bytes=100-199']);
    assert.deepEqual(b.forwarded.map((r) => r.headers.range), ['bytes=200-299', 'bytes=300-399']);
    assert.ok(logs.some((m) => m.includes('proxy_url "ftp://nowhere" refused') && m.includes(`(${b.url}) stays`)), logs.join('\n'));
    assert.ok(logs.some((m) => /proxy turned off/.test(m)));
    // SDK mode is out of scope (DECISIONS.md row 5): said once, however often the endpoint is set
    backend.setSchedulerEndpoint('http://127.0.0.1:8003');
    assert.equal(logs.filter((m) => /SDK mode is not supported/.test(m)).length, 1);
  });
});
