// The nydus JSON metrics of a real daemon on the real kernel FUSE reflect what was read (issue 9 acceptance; spec
// nydusd-runtime.md section 8, snapshotter-contract.md section 8 items 23 and 24). A fresh daemon and cache, reads with
// O_DIRECT (no page cache, no readahead: each read is exactly one FUSE READ of the bytes asked), amplify_io 0 (a
// backend read is exactly the chunk read), on the uncompressed v5 sample, whose chunk sizes the bootstrap gives:
// every counter below is deterministic and asserted exactly. Also: every answer conforms to its schema in
// api/v1.yaml (full-length arrays, non-negative integers), the `id` rule, and `underlying_files` covering every file
// the daemon created in its cache directory.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { loadImageFile } from '../image/helpers.js';
import { cleanupDaemons, fileChunks, removeDir, requireEnv, sleep } from '../nydusd/helpers.js';
import { blobIdOfCacheFile, get, SAMPLES, startMetricsDaemon, type MetricsDaemon, directRead } from './helpers.js';
import { responseSchema, schemaErrors } from './schema.js';

const READ = 4;
const LOOKUP = 9;
const N = 1000;
const MiB = 1 << 20;

/** The class of a request size (spec 8.1). */
function sizeClassOf(n: number): number {
  return [1024, 4096, 16384, 65536, 131072, 524288, MiB].filter((limit) => n >= limit).length;
}

const ROUTE_OF: Record<string, string> = {
  '': '/api/v1/metrics',
  files: '/api/v1/metrics/files',
  pattern: '/api/v1/metrics/pattern',
  backend: '/api/v1/metrics/backend',
  blobcache: '/api/v1/metrics/blobcache',
};

/** GET a metrics route, asserting 200 and that the body is exactly what api/v1.yaml describes. */
async function metrics(d: MetricsDaemon, kind: string, query = ''): Promise<any> {
  const route = ROUTE_OF[kind]!;
  const r = await get(d.sock, `${route}${query}`);
  assert.equal(r.status, 200, `${route}${query}: ${r.text}`);
  assert.deepEqual(schemaErrors(r.json, responseSchema(route, 200)), [], `${route}${query} does not match api/v1.yaml: ${r.text}`);
  return r.json;
}

async function poll<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(v)}`);
    await sleep(50);
  }
}

const sum = (a: number[]) => a.reduce((x, y) => x + y, 0);
const dirs: string[] = [];

after(async () => {
  await cleanupDaemons();
  for (const dir of dirs) removeDir(dir);
});

describe('nydus JSON metrics of a dedicated daemon', { timeout: 120_000 }, () => {
  it('count exactly what was read: filesystem, per-file, latest, pattern, backend and blob cache', async () => {
    requireEnv();
    const d = await startMetricsDaemon({ sample: 'v5-none' });
    dirs.push(d.dir);
    const bs = loadImageFile(path.join(SAMPLES, 'v5-none', 'bootstrap'));
    const chunks = fileChunks(bs, 'data/big.bin');
    assert.equal(chunks.length, 2, 'big.bin is a 1 MiB chunk and a 1000-byte one (bootstrap-samples/README.md)');

    const before = await metrics(d, '');
    assert.equal(before.data_read, 0);
    assert.deepEqual(before.block_count_read, [0, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(before.id, '/');
    assert.deepEqual(
      [before.files_account_enabled, before.access_pattern_enabled, before.record_latest_read_files_enabled, before.measure_latency],
      [true, true, true, true],
    );

    const file = path.join(d.mountpoint, 'data', 'big.bin');
    const t0 = Math.floor(Date.now() / 1000);
    // one byte range in each chunk
    assert.equal(directRead(file, 0, N), N);
    assert.equal(directRead(file, MiB, N), N);
    const ino = statSync(file).ino;

    const g = await metrics(d, '');
    assert.equal(g.data_read, 2 * N);
    assert.equal(g.fop_hits[READ], 2);
    assert.ok(g.fop_hits[LOOKUP] >= 2, `the lookups of data and big.bin: ${g.fop_hits}`);
    assert.deepEqual(g.fop_errors, new Array(15).fill(0));
    assert.deepEqual(g.block_count_read, [2, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(sum(g.read_latency_dist), 2);
    g.fop_cumulative_latency_total.forEach((v: number, i: number) => i !== READ && assert.equal(v, 0, `latency slot ${i}`));
    assert.equal(g.nr_opens, 0);

    // per-file counters, keyed by the instance's inode numbers (st_ino of the file on the mount)
    const files = await metrics(d, 'files');
    const f = files[String(ino)];
    assert.ok(f, `no counters for inode ${ino}: ${JSON.stringify(Object.keys(files))}`);
    assert.equal(f.data_read, 2 * N);
    assert.equal(f.fop_hits[READ], 2);
    assert.equal(f.total_fops, 2);
    assert.deepEqual(f.block_count_read, [2, 0, 0, 0, 0, 0, 0, 0]);

    // the inodes read since the last query, once
    assert.deepEqual(await metrics(d, 'files', '?latest=true'), [[ino]]);
    assert.deepEqual(await metrics(d, 'files', '?latest=true'), []);
    assert.deepEqual(Object.keys(await metrics(d, 'files', '?latest=yes')).includes(String(ino)), true, 'latest=yes is false: the per-file form');

    const pattern = await metrics(d, 'pattern');
    assert.equal(pattern.length, 1, JSON.stringify(pattern));
    assert.equal(pattern[0].ino, ino);
    assert.equal(pattern[0].nr_read, 2);
    assert.ok(pattern[0].first_access_time_secs >= t0 && pattern[0].first_access_time_secs <= Date.now() / 1000, JSON.stringify(pattern));
    assert.ok(pattern[0].first_access_time_nanos < 1e9);

    // the backend read exactly the two chunks (uncompressed image: their sizes are the file's)
    const b = await metrics(d, 'backend');
    assert.equal(b.backend_type, 'localfs');
    assert.equal(b.read_count, 2);
    assert.equal(b.read_errors, 0);
    assert.equal(b.read_amount_total, chunks[0]!.compressedSize + chunks[1]!.compressedSize);
    assert.equal(b.read_amount_total, MiB + N);
    const classes = new Array(8).fill(0);
    for (const c of chunks) classes[sizeClassOf(c.compressedSize)]++;
    assert.deepEqual(b.read_count_block_size_dist, classes);
    b.read_latency_sizes_dist.forEach((row: number[], i: number) => assert.equal(sum(row), classes[i], `size class ${i}`));
    assert.equal(sum(b.read_cumulative_latency_millis_dist), b.read_cumulative_latency_millis_total);

    // the cold reads waited for their fetch (no hit); reading again is a hit and no backend read
    let c = await metrics(d, 'blobcache');
    assert.equal(c.total, 2);
    assert.equal(c.partial_hits + c.whole_hits, 0);
    assert.equal(directRead(file, 0, N), N);
    c = await metrics(d, 'blobcache');
    assert.equal(c.total, 3);
    assert.equal(c.partial_hits, 1);
    assert.equal(c.whole_hits, 0);
    assert.equal(c.store_path, d.cache);
    assert.equal((await metrics(d, 'backend')).read_count, 2);
    assert.equal((await metrics(d, '')).data_read, 3 * N);
    // both chunks become ready once durable
    c = await poll('both chunks ready', () => metrics(d, 'blobcache'), (v) => v.entries_count === 2);
    assert.ok(c.prefetch_end_time_secs >= c.prefetch_begin_time_secs || (c.prefetch_end_time_secs === 0 && c.prefetch_begin_time_secs === 0));

    // item 24: every file the daemon created in its cache directory is listed (and so is its blob id)
    const created = readdirSync(d.cache).sort();
    assert.ok(created.length >= 2, `cache directory: ${created}`);
    for (const name of created) assert.ok(c.underlying_files.includes(name), `${name} is not in underlying_files ${JSON.stringify(c.underlying_files)}`);
    const ids = new Set((c.underlying_files as string[]).map(blobIdOfCacheFile));
    for (const name of created) assert.ok(ids.has(blobIdOfCacheFile(name)), `the snapshotter would delete ${name}`);
  });

  it('follow the id rule: the only object without id, the instance mountpoint or config id with it, 404 JSON otherwise', async () => {
    requireEnv();
    const d = await startMetricsDaemon({ sample: 'v5-none', configId: '/42' });
    dirs.push(d.dir);
    // one instance: no id is fine; filesystem and backend objects are keyed by the mountpoint, sent encoded or raw
    for (const kind of ['', 'files', 'pattern', 'backend']) {
      await metrics(d, kind);
      await metrics(d, kind, '?id=%2F');
      await metrics(d, kind, '?id=/');
    }
    // the blob cache by the configuration id (device.id), as nydus-snapshotter queries it
    await metrics(d, 'blobcache');
    await metrics(d, 'blobcache', '?id=%2F42');
    const wrappers: Record<string, string> = { '': 'GlobalMetrics', files: 'FsFilesMetrics', pattern: 'Pattern', backend: 'BackendMetrics', blobcache: 'BlobcacheMetrics' };
    const misses: [string, string][] = [
      ['', '?id=%2Fnope'], ['files', '?id=%2Fnope&latest=true'], ['pattern', '?id=%2F42'], ['backend', '?id=%2F42'], ['blobcache', '?id=%2F'],
    ];
    for (const [kind, query] of misses) {
      const url = `${ROUTE_OF[kind]}${query}`;
      const r = await get(d.sock, url);
      assert.equal(r.status, 404, `${url}: ${r.text}`);
      assert.deepEqual(Object.keys(r.json).sort(), ['code', 'message'], url);
      assert.equal(r.json.code, 'UNDEFINED');
      assert.match(r.json.message, new RegExp(`^${wrappers[kind]}: Metrics\\(Stats\\(NoCounter\\)\\)`), url);
      assert.deepEqual(schemaErrors(r.json, responseSchema(ROUTE_OF[kind]!, 404)), [], url);
    }
  });

  it('list every cache file of every blob from RUNNING on, before anything is read (v6: the blob meta too)', async () => {
    requireEnv();
    const d = await startMetricsDaemon({ sample: 'v6-zstd' });
    dirs.push(d.dir);
    const bs = loadImageFile(path.join(SAMPLES, 'v6-zstd', 'bootstrap'));
    const c = await metrics(d, 'blobcache');
    for (const blob of bs.blobs) {
      for (const suffix of ['.blob.data', '.blob.data.chunk_map', '.blob.meta']) {
        assert.ok(c.underlying_files.includes(`${blob.blobId}${suffix}`), `${blob.blobId}${suffix} missing from ${JSON.stringify(c.underlying_files)}`);
      }
    }
    // read every file, then every file in the cache directory is listed
    const walk = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(path.join(dir, e.name)) : e.isFile() ? [path.join(dir, e.name)] : []);
    for (const file of walk(d.mountpoint)) directRead(file, 0, 4096);
    const meta = `${bs.blobs[0]!.blobId}.blob.meta`;
    await poll('the blob meta in the cache directory', async () => readdirSync(d.cache), (names) => names.includes(meta));
    const after = await metrics(d, 'blobcache');
    for (const name of readdirSync(d.cache)) assert.ok(after.underlying_files.includes(name), `${name} is not in ${JSON.stringify(after.underlying_files)}`);
    assert.ok((await metrics(d, '')).fop_hits[READ] > 0);
  });
});
