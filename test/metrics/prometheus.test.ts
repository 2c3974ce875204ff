// nydusd --metrics-address (our extension, issue 9): Prometheus text that `promtool check metrics` accepts, with the
// same numbers as the nydus JSON, scraped by a real Prometheus server (Debian's `prometheus`, started here on loopback
// with its own configuration and storage) and read back through its HTTP query API. Also: a malformed address is a
// usage error (exit 2), a taken one fails the start (exit 1) with nothing left mounted.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { cleanupDaemons, Daemon, isMounted, removeDir, requireEnv, sleep, tempDir } from '../nydusd/helpers.js';
import { get, SAMPLES, startMetricsDaemon, type MetricsDaemon, directRead } from './helpers.js';

const dirs: string[] = [];
let prometheus: ChildProcess | undefined;

after(async () => {
  if (prometheus && prometheus.exitCode === null) {
    prometheus.kill('SIGTERM');
    await new Promise((r) => prometheus!.once('close', r));
  }
  await cleanupDaemons();
  for (const d of dirs) removeDir(d);
});

function httpGet(url: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${url}: no answer in 10 s`)));
    req.on('error', reject);
  });
}

/** The endpoint the daemon logged once it served it (it was started on port 0). */
async function metricsUrl(d: MetricsDaemon): Promise<string> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const m = /Prometheus metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(d.daemon.stderr);
    if (m) return m[1]!;
    if (Date.now() > deadline) throw new Error(`no Prometheus endpoint logged: ${d.daemon.stderr}`);
    await sleep(20);
  }
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** The value of the sample `name{labels...}` in exposition text (labels given as they are printed). */
function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('Prometheus endpoint', { timeout: 180_000 }, () => {
  it('serves text promtool accepts, agreeing with the nydus JSON, and a real Prometheus scrapes it', async () => {
    requireEnv(['promtool', 'prometheus']);
    const d = await startMetricsDaemon({ sample: 'v5-none', args: ['--metrics-address', '127.0.0.1:0'] });
    dirs.push(d.dir);
    const url = await metricsUrl(d);
    assert.equal(directRead(path.join(d.mountpoint, 'data', 'big.bin'), 0, 1000), 1000);

    const res = await httpGet(url);
    assert.equal(res.status, 200);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: res.text, encoding: 'utf8', timeout: 30_000 });
    assert.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`);

    // the same numbers as the JSON routes
    const fs = (await get(d.sock, '/api/v1/metrics')).json;
    const backend = (await get(d.sock, '/api/v1/metrics/backend')).json;
    const cache = (await get(d.sock, '/api/v1/metrics/blobcache')).json;
    const inst = 'mountpoint="/"';
    assert.equal(sample(res.text, 'nydusd_fs_read_bytes_total', inst), fs.data_read);
    assert.equal(fs.data_read, 1000);
    assert.equal(sample(res.text, 'nydusd_fs_operations_total', 'operation="read"'), fs.fop_hits[4]);
    assert.equal(sample(res.text, 'nydusd_fs_read_duration_seconds_count', inst), 1);
    assert.equal(sample(res.text, 'nydusd_fs_read_size_bytes_bucket', 'le="1023"'), 1);
    assert.equal(sample(res.text, 'nydusd_backend_reads_total', inst), backend.read_count);
    assert.equal(backend.read_count, 1, 'the one chunk read');
    assert.equal(sample(res.text, 'nydusd_backend_read_bytes_total', inst), backend.read_amount_total);
    assert.equal(sample(res.text, 'nydusd_blobcache_requests_total', `cache_id="${d.configId}"`), cache.total);
    assert.equal(sample(res.text, 'nydusd_blobcache_files', `cache_id="${d.configId}"`), cache.underlying_files.length);
    // the process's RSS and CPU time, by the standard names
    const rss = Number(/^process_resident_memory_bytes (\d+)$/m.exec(res.text)?.[1]);
    assert.ok(rss > 2 ** 20 && rss < 16 * 2 ** 30, `RSS ${rss}`);
    assert.match(res.text, /^process_cpu_seconds_total \d+(\.\d+)?(e[-+]\d+)?$/m);
    assert.equal((await httpGet(url.replace('/metrics', '/other'))).status, 404);

    // a real Prometheus server scrapes it every second; the series comes back through its query API
    const work = tempDir('prometheus');
    dirs.push(work);
    const target = new URL(url).host;
    writeFileSync(path.join(work, 'prometheus.yml'), [
      'global:', '  scrape_interval: 1s', 'scrape_configs:', '  - job_name: nydusd', '    scrape_interval: 1s',
      '    static_configs:', `      - targets: ['${target}']`, '',
    ].join('\n'));
    const port = await freePort();
    let log = '';
    prometheus = spawn('prometheus', [
      `--config.file=${path.join(work, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(work, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    prometheus.stderr!.setEncoding('utf8').on('data', (s: string) => (log = (log + s).slice(-8192)));
    const query = `http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent('nydusd_fs_read_bytes_total{job="nydusd"}')}`;
    const deadline = Date.now() + 90_000;
    let got: { metric: Record<string, string>; value: [number, string] }[] = [];
    while (got.length === 0) {
      if (prometheus.exitCode !== null) throw new Error(`prometheus exited (${prometheus.exitCode}): ${log}`);
      if (Date.now() > deadline) throw new Error(`no series from prometheus within 90 s: ${log}`);
      await sleep(250);
      const r = await httpGet(query).catch(() => undefined);
      if (r?.status === 200) got = (JSON.parse(r.text) as { data: { result: typeof got } }).data.result;
    }
    assert.equal(got.length, 1, JSON.stringify(got));
    assert.equal(got[0]!.metric.mountpoint, '/');
    assert.equal(got[0]!.metric.bootstrap, path.join(SAMPLES, 'v5-none', 'bootstrap'));
    assert.equal(Number(got[0]!.value[1]), 1000);
    prometheus.kill('SIGTERM');
    await new Promise((r) => prometheus!.once('close', r));
  });

  it('refuses a malformed address (usage, exit 2) and a taken one (exit 1, nothing left mounted)', async () => {
    requireEnv();
    const dir = tempDir('metrics-addr');
    dirs.push(dir);
    const mnt = path.join(dir, 'mnt');
    const base = ['--bootstrap', path.join(SAMPLES, 'v5-none', 'bootstrap'), '--localfs-dir', path.join(SAMPLES, 'v5-none', 'blobs'), '--mountpoint', mnt];
    for (const bad of ['9110', 'localhost', 'host:99999', ':9110', 'a b:1']) {
      const r = await new Daemon([...base, '--metrics-address', bad], mnt).waitExit(10_000);
      assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
      assert.match(r.stderr, /^error: invalid value '.*' for '--metrics-address': expected host:port/, bad);
    }
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      spawnSync('mkdir', ['-p', mnt]);
      const cache = tempDir('metrics-addr-cache');
      dirs.push(cache);
      spawnSync('cp', ['-r', `${path.join(SAMPLES, 'v5-none', 'blobs')}/.`, cache]);
      const args = ['--bootstrap', path.join(SAMPLES, 'v5-none', 'bootstrap'), '--localfs-dir', cache, '--mountpoint', mnt, '--metrics-address', `127.0.0.1:${port}`];
      const r = await new Daemon(args, mnt).waitExit(20_000);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`Error: cannot serve metrics on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
      assert.ok(!isMounted(mnt), 'the mount is undone');
    } finally {
      taken.close();
    }
  });
});
