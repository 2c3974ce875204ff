// snapshotter-contract.md section 8, E (items 23-25): the metrics the snapshotter polls (5.1-5.4), read the way it
// reads them. 23: FsMetrics arrays long enough for its unchecked fop_hits[4] (a short one kills the snapshotter,
// DECISIONS.md 12) and counters that follow a real 1 MiB read. 24: underlying_files, which decides what its cache GC
// deletes, names every file the daemon keeps in CACHE, from RUNNING on. 25: inflight, 204 when idle, the stalled
// READ while the backend hangs (test/nydusd/hung-blob-server.ts, a FUSE blob dir whose reads never answer).
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterEach, test } from 'node:test';
import { cleanupDaemons, isMounted, requireEnv, sleep, startHungBlobServer as startHungBlobServerAt } from '../nydusd/helpers.js';
import {
  assertErrorBody, dedicatedArgv, exchange, goRequest, localfsConfig, mountBody, SAMPLE, sharedArgv, SID, snapshotterRoot, spawnDaemon,
  waitUntilState, writeAtomically, type RawResponse,
} from './harness.js';

requireEnv(['dd']);
const children: ChildProcess[] = [];
const hungMounts: string[] = [];
afterEach(async () => {
  // release stalled reads first, so that the daemon can stop; then the children, then any mount they left
  for (const c of children) c.kill('SIGUSR1');
  await cleanupDaemons();
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await new Promise((res) => c.once('close', res));
    }
  }
  for (const m of hungMounts.splice(0)) if (isMounted(m)) spawnSync('umount', ['-l', m]);
});

const BIG = 'data/big.bin';
const MiB = 1 << 20;

interface FsMetrics {
  data_read: number;
  nr_opens: number;
  fop_hits: number[];
  fop_errors: number[];
  block_count_read: number[];
  read_latency_dist: number[];
  fop_cumulative_latency_total: number[];
}

async function get(sock: string, target: string): Promise<RawResponse> {
  return exchange(sock, goRequest('GET', target));
}

/** What the snapshotter's collector needs of FsMetrics (5.2). */
async function fsMetrics(sock: string, query = ''): Promise<FsMetrics> {
  const r = await get(sock, `/api/v1/metrics${query}`);
  assert.equal(r.status, 200, r.body);
  const m = r.json as FsMetrics;
  // fop_hits[4] is read without a bounds check: at least 5; the reference's (and DECISIONS.md 12) 15
  assert.equal(m.fop_hits.length, 15);
  assert.equal(m.fop_errors.length, 15);
  // the histograms are skipped unless exactly 8 long
  assert.equal(m.block_count_read.length, 8);
  assert.equal(m.read_latency_dist.length, 8);
  for (const k of ['files_account_enabled', 'access_pattern_enabled', 'measure_latency']) assert.equal(typeof (m as unknown as Record<string, unknown>)[k], 'boolean', k);
  for (const v of [m.data_read, m.nr_opens, ...m.fop_hits, ...m.fop_errors, ...m.block_count_read, ...m.read_latency_dist, ...m.fop_cumulative_latency_total]) {
    assert.ok(Number.isSafeInteger(v) && v >= 0, `a metric value that is not a non-negative integer: ${v} in ${r.body}`);
  }
  return m;
}

/** The snapshotter's GC mapping of a cache file name to a blob id (5.3): strip one known suffix, or take the name. */
function blobIdOf(name: string): string {
  for (const suffix of ['.blob.data.chunk_map', '.blob.data', '.chunk_map', '.blob.meta', '.image.disk', '.layer.disk']) {
    if (name.endsWith(suffix)) return name.slice(0, -suffix.length);
  }
  return name;
}

/** Blobcache metrics as the GC reads them: 200, a non-empty underlying_files, sane prefetch times (5.3). */
async function underlyingIds(sock: string, query = ''): Promise<Set<string>> {
  const r = await get(sock, `/api/v1/metrics/blobcache${query}`);
  assert.equal(r.status, 200, r.body);
  const m = r.json as { underlying_files: string[]; prefetch_begin_time_secs: number; prefetch_end_time_secs: number };
  assert.ok(Array.isArray(m.underlying_files) && m.underlying_files.length > 0, `underlying_files is empty: ${r.body}`);
  // end < begin (an unfinished prefetch) wraps the snapshotter's unsigned duration to ~1.8e19 (9.8)
  const { prefetch_begin_time_secs: begin, prefetch_end_time_secs: end } = m;
  assert.ok(end >= begin || (begin === 0 && end === 0), `prefetch end ${end} before begin ${begin}`);
  return new Set(m.underlying_files.map((f) => blobIdOf(path.basename(f))));
}

/** Every blob id the GC would derive from CACHE's files is listed: otherwise it deletes a live blob. */
function assertCovers(ids: Set<string>, cache: string, when: string): void {
  const files = readdirSync(cache);
  assert.ok(files.length > 0);
  for (const f of files) assert.ok(ids.has(blobIdOf(f)), `${when}: CACHE/${f} (blob ${blobIdOf(f)}) is not in underlying_files [${[...ids].join(', ')}]`);
}

test('items 23 and 24 (dedicated): FsMetrics arrays and counters after a 1 MiB read; underlying_files covers CACHE', async () => {
  const r = snapshotterRoot();
  await spawnDaemon(dedicatedArgv(r), r.mnt, r.sock);
  await waitUntilState(r.sock, 'RUNNING');
  // 5.3: the list is sampled right after the mount and never refreshed while non-empty: complete from RUNNING on
  const blobIds = readdirSync(path.join(SAMPLE, 'blobs'));
  const atStart = await underlyingIds(r.sock);
  for (const id of blobIds) assert.ok(atStart.has(id), `blob ${id} of the bootstrap is missing from underlying_files at RUNNING`);

  const before = await fsMetrics(r.sock);
  const data = readFileSync(path.join(r.mnt, BIG));
  assert.equal(data.length, MiB + 1000, 'bootstrap-samples/README.md: big.bin is 1 MiB + 1000 bytes');
  const afterRead = await fsMetrics(r.sock);
  assert.ok(afterRead.data_read - before.data_read >= MiB, `data_read grew by ${afterRead.data_read - before.data_read} after reading ${data.length} bytes`);
  assert.ok(afterRead.fop_hits[4]! > before.fop_hits[4]!, 'fop_hits[4] (Read) did not grow');
  assert.equal(afterRead.fop_errors[4], 0);

  assertCovers(await underlyingIds(r.sock), r.cache, 'after the read');
});

test('items 23 and 24 (shared): ?id=%2F42 answers for the instance, ?id=%2Fnope is a 404 error body', async () => {
  const r = snapshotterRoot();
  await spawnDaemon(sharedArgv(r), r.sharedMnt, r.sock);
  await waitUntilState(r.sock, 'RUNNING');
  const cfgFile = path.join(r.R, 'config', 'shared-42.json');
  writeAtomically(cfgFile, localfsConfig(r, SID));
  const posted = await exchange(r.sock, goRequest('POST', `/api/v1/mount?mountpoint=%2F${SID}`, mountBody(r.bootstrap, readFileSync(cfgFile, 'utf8'))));
  assert.equal(posted.status, 204, posted.body);
  assertCovers(await underlyingIds(r.sock, `?id=%2F${SID}`), r.cache, 'right after the mount');

  const before = await fsMetrics(r.sock, `?id=%2F${SID}`);
  const data = readFileSync(path.join(r.sharedMnt, SID, BIG));
  const afterRead = await fsMetrics(r.sock, `?id=%2F${SID}`);
  assert.ok(afterRead.data_read - before.data_read >= MiB, `data_read grew by ${afterRead.data_read - before.data_read} after reading ${data.length} bytes`);
  assert.ok(afterRead.fop_hits[4]! > before.fop_hits[4]!);
  assertCovers(await underlyingIds(r.sock, `?id=%2F${SID}`), r.cache, 'after the read');

  for (const target of ['/api/v1/metrics?id=%2Fnope', '/api/v1/metrics/blobcache?id=%2Fnope']) {
    const nope = await get(r.sock, target);
    assert.equal(nope.status, 404, `${target}: ${nope.body}`);
    assertErrorBody(nope, target);
  }
});

/** The hung blob server, tracked for the clean-up after each test. */
async function startHungBlobServer(dir: string, name: string, size: number): Promise<ChildProcess> {
  hungMounts.push(dir);
  const child = await startHungBlobServerAt(dir, name, size);
  children.push(child);
  return child;
}

/** Polls inflight until `status` (a generous deadline guards against a hang). */
async function inflightUntil(sock: string, status: number): Promise<RawResponse> {
  let r = await get(sock, '/api/v1/metrics/inflight');
  for (const deadline = Date.now() + 20_000; r.status !== status && Date.now() < deadline;) {
    await sleep(20);
    r = await get(sock, '/api/v1/metrics/inflight');
  }
  assert.equal(r.status, status, r.body);
  return r;
}

test('item 25: inflight is 204 with no body when idle, and lists the READ stalled on a hung backend', { timeout: 120_000 }, async () => {
  const r = snapshotterRoot();
  const blobId = readdirSync(path.join(SAMPLE, 'blobs'))[0]!;
  const hung = path.join(r.R, 'hung');
  mkdirSync(hung);
  const server = await startHungBlobServer(hung, blobId, statSync(path.join(SAMPLE, 'blobs', blobId)).size);
  // the template with its blobs behind the hung filesystem, a fresh work dir, a backend timeout far above the test
  const work = path.join(r.R, 'cache-hung');
  writeAtomically(r.configFile, localfsConfig(r, SID, { dir: hung, workDir: work, timeout: 60 }));
  await spawnDaemon(dedicatedArgv(r), r.mnt, r.sock);
  await waitUntilState(r.sock, 'RUNNING');

  const idle = await get(r.sock, '/api/v1/metrics/inflight');
  assert.equal(idle.status, 204, idle.body);
  assert.equal(idle.body, '');

  const t0 = Math.floor(Date.now() / 1000);
  const reader = spawn('dd', [`if=${path.join(r.mnt, BIG)}`, 'of=/dev/null', 'bs=4096', 'count=1'], { stdio: 'ignore' });
  children.push(reader);
  const readerDone = new Promise<number | null>((res) => reader.once('close', (code) => res(code)));
  const busy = await inflightUntil(r.sock, 200);
  // u64 fields: node ids of a VFS instance carry it in their top bits, beyond a double's 53 bits, so they are
  // checked as the integer literals the Go client decodes, not through JSON.parse
  assert.ok(Array.isArray(busy.json) && (busy.json as unknown[]).length > 0, busy.body);
  const objects = busy.body.match(/\{[^{}]*\}/g) ?? [];
  assert.equal(objects.length, (busy.json as unknown[]).length, busy.body);
  const now = BigInt(Math.floor(Date.now() / 1000));
  const field = (o: string, k: string): bigint => {
    const m = new RegExp(`"${k}":(\\d+)[,}]`).exec(o);
    assert.ok(m, `${k} is not a non-negative integer in ${o}`);
    return BigInt(m[1]!);
  };
  for (const o of objects) {
    for (const k of ['inode', 'opcode', 'unique']) field(o, k);
    const ts = field(o, 'timestamp_secs');
    assert.ok(ts >= BigInt(t0) && ts <= now, `timestamp_secs is not the Unix second the request started: ${o}`);
  }
  assert.ok(objects.some((o) => field(o, 'opcode') === 15n), `no READ (opcode 15) in flight: ${busy.body}`);
  assert.equal(reader.exitCode, null, 'the reader is still waiting');

  // the backend lets go (EIO): the read ends and nothing is in flight any more
  server.kill('SIGUSR1');
  assert.notEqual(await readerDone, 0);
  const after = await inflightUntil(r.sock, 204);
  assert.equal(after.body, '');
});
