// Metrics of a shared daemon (issue 9: "metrics are per instance"; spec nydusd-runtime.md 3.5.7): each instance attached
// over the API has its own filesystem and backend counters under its mountpoint and its blob cache under its
// configuration id, as nydus-snapshotter queries them (`?id=%2F<snapshot>`); without an id the answer is a 404 once
// there are several (or none); after DELETE the filesystem object stays (quirk Q4) while backend and blob cache go.
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { request, waitForSocket } from '../api/helpers.js';
import { cleanupDaemons, Daemon, removeDir, requireEnv, tempDir } from '../nydusd/helpers.js';
import { get, SAMPLES, directRead } from './helpers.js';

const dirs: string[] = [];
after(async () => {
  await cleanupDaemons();
  for (const d of dirs) removeDir(d);
});

it('each attached instance has its own metrics, found by its mountpoint or config id; none without id', { timeout: 120_000 }, async () => {
  requireEnv();
  const dir = tempDir('metrics-shared');
  dirs.push(dir);
  const mnt = path.join(dir, 'mnt');
  mkdirSync(mnt);
  const sock = path.join(dir, 'api.sock');
  const daemon = new Daemon(['fuse', '--mountpoint', mnt, '--apisock', sock], mnt);
  await waitForSocket(daemon, sock);

  // nothing attached: no object of any kind, and no request in flight
  for (const route of ['/api/v1/metrics', '/api/v1/metrics/backend', '/api/v1/metrics/blobcache']) {
    assert.equal((await get(sock, route)).status, 404, route);
  }
  assert.equal((await get(sock, '/api/v1/metrics/inflight')).status, 204);

  const attach = async (at: string, sample: string) => {
    const workDir = path.join(dir, `cache${at.replace('/', '-')}`);
    const config = JSON.stringify({
      device: { id: at, backend: { type: 'localfs', config: { dir: path.join(SAMPLES, sample, 'blobs') } }, cache: { type: 'blobcache', config: { work_dir: workDir } } },
      mode: 'direct', amplify_io: 0,
    });
    const body = JSON.stringify({ fs_type: 'rafs', source: path.join(SAMPLES, sample, 'bootstrap'), config });
    const r = await request(sock, 'POST', `/api/v1/mount?mountpoint=${encodeURIComponent(at)}`, { body });
    assert.equal(r.status, 204, r.text);
    return workDir;
  };
  const cacheA = await attach('/a', 'v5-none');
  const cacheB = await attach('/b', 'v6-zstd');

  assert.equal(directRead(path.join(mnt, 'a', 'data', 'big.bin'), 0, 1000), 1000);
  assert.equal(directRead(path.join(mnt, 'b', 'data', 'big.bin'), 0, 1000), 1000);
  assert.equal(directRead(path.join(mnt, 'b', 'data', 'big.bin'), 1 << 20, 1000), 1000);

  // two of each: the no-id form is a 404, as the reference answers
  for (const route of ['/api/v1/metrics', '/api/v1/metrics/files', '/api/v1/metrics/backend', '/api/v1/metrics/blobcache']) {
    const r = await get(sock, route);
    assert.equal(r.status, 404, `${route}: ${r.text}`);
    assert.match(r.json.message, /NoCounter/);
  }
  const a = (await get(sock, '/api/v1/metrics?id=%2Fa')).json;
  const b = (await get(sock, '/api/v1/metrics?id=%2Fb')).json;
  assert.deepEqual([a.id, a.data_read, a.fop_hits[4]], ['/a', 1000, 1]);
  assert.deepEqual([b.id, b.data_read, b.fop_hits[4]], ['/b', 2000, 2]);
  // v5 without amplify_io: exactly the first chunk; v6 also fetched its blob's chunk table
  const ba = (await get(sock, '/api/v1/metrics/backend?id=%2Fa')).json;
  assert.deepEqual([ba.read_count, ba.read_amount_total], [1, 1 << 20]);
  assert.ok((await get(sock, '/api/v1/metrics/backend?id=%2Fb')).json.read_count >= 2);
  const ca = (await get(sock, '/api/v1/metrics/blobcache?id=%2Fa')).json;
  const cb = (await get(sock, '/api/v1/metrics/blobcache?id=%2Fb')).json;
  assert.equal(ca.store_path, cacheA);
  assert.equal(cb.store_path, cacheB);
  assert.equal(ca.total, 1);
  assert.equal(cb.total, 2);
  assert.ok(ca.underlying_files.every((f: string) => !cb.underlying_files.includes(f)), 'each lists its own blobs');

  // detach /b: its filesystem object stays (Q4), its backend and blob cache go; /a is now the only one
  const del = await request(sock, 'DELETE', '/api/v1/mount?mountpoint=%2Fb');
  assert.equal(del.status, 204, del.text);
  assert.equal((await get(sock, '/api/v1/metrics?id=%2Fb')).json.data_read, 2000);
  assert.equal((await get(sock, '/api/v1/metrics/backend?id=%2Fb')).status, 404);
  assert.equal((await get(sock, '/api/v1/metrics/blobcache?id=%2Fb')).status, 404);
  assert.equal((await get(sock, '/api/v1/metrics/backend')).json.read_count, 1);
  assert.equal((await get(sock, '/api/v1/metrics/blobcache')).json.store_path, cacheA);
  assert.equal((await get(sock, '/api/v1/metrics')).status, 404, 'two filesystem objects remain registered (Q4)');
  await daemon.stop(10_000);
});
