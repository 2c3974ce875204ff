// Unit tests of the metrics layer against in-memory fakes: the index tables of spec nydusd-runtime.md 8.1, the counters
// and their nydus JSON (8.2-8.6, 3.5.8), the FileSystem decorator, the registry's id rule (3.5.7) and the Prometheus
// text (checked by the real `promtool check metrics`).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { FuseError, type FileSystem, type RequestContext } from '../../src/fuse/filesystem.js';
import { DirentWriter } from '../../src/fuse/protocol.js';
import { emptyCacheStats } from '../../src/storage/cache/blob-cache.js';
import type { MountedInstance } from '../../src/service/daemon.js';
import { BackendMetrics } from '../../src/metrics/backend-metrics.js';
import { FsMetrics } from '../../src/metrics/fs-metrics.js';
import { instrumentFs } from '../../src/metrics/instrument.js';
import { backendJson, blobcacheJson, fsFilesJson, fsGlobalJson, inflightJson, latestReadJson, patternJson } from '../../src/metrics/nydus-json.js';
import { histogramSamples, prometheusRegistry } from '../../src/metrics/prometheus.js';
import { MetricsRegistry, NoCounterError } from '../../src/metrics/registry.js';
import { BACKEND_LATENCY_LIMITS_MS, bucket, Fop, FS_LATENCY_LIMITS_US, sizeClass } from '../../src/metrics/tables.js';
import { requireEnv } from '../nydusd/helpers.js';

const ALL = { filesAccount: true, accessPattern: true, latestReadFiles: true };
const NONE = { filesAccount: false, accessPattern: false, latestReadFiles: false };
const ATTR = { ino: 5n, size: 0, mode: 0o100644 };
const ctx = { uid: 0, gid: 0, pid: 1, unique: 1n, signal: new AbortController().signal } as RequestContext;

describe('index tables (8.1)', () => {
  it('size classes, filesystem and backend latency buckets at their edges', () => {
    const sizes: [number, number][] = [[0, 0], [1023, 0], [1024, 1], [4095, 1], [4096, 2], [16383, 2], [16384, 3], [65536, 4], [131071, 4], [131072, 5], [524288, 6], [1048575, 6], [1048576, 7], [1 << 30, 7]];
    for (const [n, c] of sizes) assert.equal(sizeClass(n), c, `size ${n}`);
    const us: [number, number][] = [[0, 0], [200, 0], [201, 1], [1000, 1], [1001, 2], [20_000, 2], [50_000, 3], [500_000, 4], [1_000_000, 5], [2_000_000, 6], [2_000_001, 7]];
    for (const [v, b] of us) assert.equal(bucket(v, FS_LATENCY_LIMITS_US), b, `${v} µs`);
    const ms: [number, number][] = [[0, 0], [1, 0], [2, 1], [20, 1], [50, 2], [100, 3], [101, 4], [1000, 5], [2000, 6], [2001, 7]];
    for (const [v, b] of ms) assert.equal(bucket(v, BACKEND_LATENCY_LIMITS_MS), b, `${v} ms`);
    assert.equal(Fop.Read, 4);
    assert.equal(Fop.Lookup, 9);
    assert.equal(Fop.BatchForget, 14);
  });
});

describe('filesystem counters and their JSON (8.2-8.4)', () => {
  it('count reads by size class and latency bucket, failed reads in class 0, full-length arrays', () => {
    const m = new FsMetrics('/sub', ALL, '/b', () => 1_700_000_000_123.5);
    m.read(10, true, 4096, 150);
    m.read(10, true, 1 << 20, 25_000);
    m.read(10, false, 0, 3_000_000);
    m.op(Fop.Lookup, 1, true);
    m.op(Fop.Getattr, 10, false);
    const g = fsGlobalJson(m);
    assert.deepEqual(Object.keys(g), ['files_account_enabled', 'access_pattern_enabled', 'record_latest_read_files_enabled', 'measure_latency', 'id', 'nr_opens', 'data_read', 'block_count_read', 'fop_hits', 'fop_errors', 'fop_cumulative_latency_total', 'read_latency_dist']);
    assert.equal(g.id, '/sub');
    assert.equal(g.data_read, 4096 + (1 << 20));
    assert.deepEqual(g.block_count_read, [1, 0, 1, 0, 0, 0, 0, 1]);
    assert.deepEqual(g.read_latency_dist, [1, 0, 0, 1, 0, 0, 0, 1]);
    assert.equal(g.fop_hits.length, 15);
    assert.equal(g.fop_hits[Fop.Read], 2);
    assert.equal(g.fop_errors[Fop.Read], 1);
    assert.equal(g.fop_hits[Fop.Lookup], 1);
    assert.equal(g.fop_errors[Fop.Getattr], 1);
    assert.deepEqual(g.fop_cumulative_latency_total, [0, 0, 0, 0, 3_025_150, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

    const files = fsFilesJson(m);
    assert.deepEqual(Object.keys(files), ['1', '10']);
    assert.deepEqual(files['10'], {
      total_fops: 4, data_read: 4096 + (1 << 20), block_count_read: [1, 0, 1, 0, 0, 0, 0, 1],
      fop_hits: [0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], fop_errors: [1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    });
    // a failed read counts as a read call, its time from the fake clock
    assert.deepEqual(patternJson(m), [{ ino: 10, nr_read: 3, first_access_time_secs: 1_700_000_000, first_access_time_nanos: 123_500_000 }]);
  });

  it('latest reads come as ascending runs and are cleared; everything stays empty when switched off', () => {
    const m = new FsMetrics('/', ALL, '/b');
    for (const ino of [66, 1, 5, 2, 65, 2]) m.read(ino, true, 1, 1);
    m.read(7, false, 0, 1);
    assert.deepEqual(latestReadJson(m), [[1, 2], [5], [65, 66]]);
    assert.deepEqual(latestReadJson(m), []);
    const off = new FsMetrics('/', NONE, '/b');
    off.read(3, true, 100, 1);
    assert.deepEqual(fsFilesJson(off), {});
    assert.deepEqual(patternJson(off), []);
    assert.deepEqual(latestReadJson(off), []);
    assert.equal(fsGlobalJson(off).data_read, 100);
  });
});

describe('backend, blob cache and inflight JSON (8.5, 8.6, 3.5.8)', () => {
  it('backend attempts by size class and latency bucket', () => {
    const b = new BackendMetrics('/', 'localfs');
    b.record(1000, 0.4, false);
    b.record(1 << 20, 25.4, true);
    b.record(1 << 20, 3000, false);
    const j = backendJson(b);
    assert.deepEqual(Object.keys(j), ['backend_type', 'read_count', 'read_errors', 'read_amount_total', 'read_cumulative_latency_millis_total', 'read_cumulative_latency_millis_dist', 'read_count_block_size_dist', 'read_latency_sizes_dist']);
    assert.equal(j.read_count, 3);
    assert.equal(j.read_errors, 1);
    assert.equal(j.read_amount_total, 1000 + 2 * (1 << 20));
    assert.equal(j.read_cumulative_latency_millis_total, 3025);
    assert.deepEqual(j.read_cumulative_latency_millis_dist, [0, 0, 0, 0, 0, 0, 0, 3025]);
    assert.deepEqual(j.read_count_block_size_dist, [1, 0, 0, 0, 0, 0, 0, 2]);
    assert.equal(j.read_latency_sizes_dist.length, 8);
    assert.deepEqual(j.read_latency_sizes_dist[0], [1, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(j.read_latency_sizes_dist[7], [0, 0, 1, 0, 0, 0, 0, 1]);
  });

  it('blob cache hits are partial, or whole with cache.validate; prefetch fields are 0', () => {
    const stats = { ...emptyCacheStats(), reads: 9, cacheHits: 4 };
    const s = { storePath: '/c', underlyingFiles: ['a.blob.data', 'a.blob.data.chunk_map'], stats, readyChunks: 3, validated: false };
    const j = blobcacheJson(s);
    assert.deepEqual([j.partial_hits, j.whole_hits, j.total, j.entries_count, j.store_path], [4, 0, 9, 3, '/c']);
    assert.deepEqual(j.underlying_files, ['a.blob.data', 'a.blob.data.chunk_map']);
    assert.equal(Object.keys(j).length, 17);
    assert.deepEqual([blobcacheJson({ ...s, validated: true }).partial_hits, blobcacheJson({ ...s, validated: true }).whole_hits], [0, 4]);
  });

  it('inflight: nothing is a 204 (undefined), entries carry node id, opcode, unique and start second', () => {
    assert.equal(inflightJson([]), undefined);
    const text = inflightJson([
      { nodeId: 9n, opcode: 15, unique: 42n, startedSecs: 1_700_000_000 },
      // a node of the instance in VFS slot 1 (1 << 56 | 9) and a unique beyond 2^53: every digit kept
      { nodeId: (1n << 56n) | 9n, opcode: 1, unique: 2n ** 63n + 1n, startedSecs: 1 },
    ]);
    assert.equal(text, '[{"inode":9,"opcode":15,"unique":42,"timestamp_secs":1700000000},'
      + '{"inode":72057594037927945,"opcode":1,"unique":9223372036854775809,"timestamp_secs":1}]');
    assert.deepEqual(JSON.parse(text!)[0], { inode: 9, opcode: 15, unique: 42, timestamp_secs: 1_700_000_000 });
  });
});

describe('the FileSystem decorator', () => {
  const inner: FileSystem = {
    async lookup(parent, name) {
      if (name.toString() === 'none') return { nodeId: 0n, entryTimeout: 1, attrTimeout: 1, attr: ATTR };
      if (name.toString() !== 'f') throw new FuseError('ENOENT');
      return { nodeId: 5n, entryTimeout: 1, attrTimeout: 1, attr: ATTR };
    },
    async getattr() {
      return { attr: ATTR, timeout: 1 };
    },
    async read(node, _fh, offset, size) {
      if (node === 6n) throw new FuseError('EIO');
      // more than asked: the session sends `size` at most, and so many are counted
      if (offset === 0n) return [Buffer.alloc(3000), Buffer.alloc(3000)];
      return { data: [Buffer.alloc(size)], release: () => undefined };
    },
    async readdirInto() {},
    async statfs() {
      return {};
    },
  };

  it('counts hits and errors per slot with instance inode numbers, bytes as replied; absent methods stay absent', async () => {
    const m = new FsMetrics('/', ALL, '/b');
    const fs = instrumentFs(inner, m, (node) => (node === 1n ? 100 : Number(node)));
    await fs.lookup(1n, Buffer.from('f'), ctx);
    await fs.lookup(1n, Buffer.from('none'), ctx);
    await assert.rejects(fs.lookup(1n, Buffer.from('x'), ctx), /ENOENT/);
    assert.equal(replyLength(await fs.read(5n, 0n, 0n, 4096, ctx)), 6000);
    await fs.read(5n, 0n, 4096n, 100, ctx);
    await assert.rejects(fs.read(6n, 0n, 0n, 10, ctx), /EIO/);
    await fs.readdirInto!(1n, 0n, 0n, new DirentWriter(4096, true), ctx);
    await fs.readdirInto!(1n, 0n, 0n, new DirentWriter(4096, false), ctx);
    await fs.statfs(1n, ctx);
    const g = fsGlobalJson(m);
    assert.equal(g.fop_hits[Fop.Lookup], 2, 'a negative entry is a successful lookup');
    assert.equal(g.fop_errors[Fop.Lookup], 1);
    assert.equal(g.fop_hits[Fop.Read], 2);
    assert.equal(g.fop_errors[Fop.Read], 1);
    assert.equal(g.data_read, 4096 + 100);
    assert.deepEqual(g.block_count_read, [2, 0, 1, 0, 0, 0, 0, 0]);
    assert.equal(g.fop_hits[Fop.Readdirplus], 1);
    assert.equal(g.fop_hits[Fop.Readdir], 1);
    assert.equal(g.fop_hits[Fop.Statfs], 0, 'RAFS does not record statfs (8.1)');
    // node 1 is the instance's root inode 100; the looked-up child got its counters
    assert.deepEqual(Object.keys(fsFilesJson(m)), ['5', '6', '100']);
    for (const absent of ['open', 'opendir', 'readdir', 'readlink', 'getxattr', 'listxattr', 'access', 'forget', 'release'] as const) {
      assert.equal(fs[absent], undefined, `${absent} must stay absent`);
    }
  });
});

function replyLength(d: Buffer | Buffer[] | { data: Buffer[] }): number {
  const list = Buffer.isBuffer(d) ? [d] : Array.isArray(d) ? d : d.data;
  return list.reduce((n, b) => n + b.length, 0);
}

/** An attached instance whose device is a fake with fixed counters. */
function fakeInstance(mountpoint: string, configId: string, blobs: string[]): MountedInstance {
  const observers: ((l: number, ms: number, failed: boolean) => void)[] = [];
  const device = {
    backend: { kind: 'localfs', observe: (fn: (typeof observers)[number]) => observers.push(fn) },
    cacheFileNames: () => blobs.flatMap((b) => [`${b}.blob.data`, `${b}.blob.data.chunk_map`]),
    stats: async () => ({ ...emptyCacheStats(), reads: 2, cacheHits: 1 }),
    readyChunks: async () => 1,
    workDir: '/cache',
    validatesCache: false,
    observers,
  };
  return {
    mountpoint, mountedAtNs: 0n, bootstrapPath: `/images${mountpoint}/bootstrap`,
    instance: { bootstrap: { superblock: { rootIno: 1 } }, device, fs: inner(), config: { id: configId, rafs: { iostats_files: false, access_pattern: false, latest_read_files: false } } },
  } as unknown as MountedInstance;
}

function inner(): FileSystem {
  return { lookup: async () => ({ nodeId: 0n, entryTimeout: 0, attrTimeout: 0, attr: ATTR }), getattr: async () => ({ attr: ATTR, timeout: 0 }), read: async () => [], statfs: async () => ({}) };
}

describe('the registry: the id rule (3.5.7)', () => {
  it('no id: exactly one object; with id: that one; filesystem objects outlive their instance (Q4)', async () => {
    const reg = new MetricsRegistry();
    assert.throws(() => reg.fs(), NoCounterError);
    const a = fakeInstance('/a', '/snap-a', ['aa']);
    const b = fakeInstance('/b', '/snap-b', ['bb']);
    reg.instrument(a.instance.fs, a);
    assert.equal(reg.fs().id, '/a');
    assert.equal(reg.backend().id, '/a');
    assert.equal(reg.blobcache().id, '/snap-a');
    reg.instrument(b.instance.fs, b);
    assert.throws(() => reg.fs(), /exactly one filesystem metrics object must exist, and 2 do/);
    assert.throws(() => reg.backend(), NoCounterError);
    assert.throws(() => reg.blobcache(), NoCounterError);
    assert.equal(reg.fs('/b').id, '/b');
    assert.equal(reg.backend('/b').id, '/b');
    assert.deepEqual(reg.blobcache('/snap-b').instances, [b]);
    assert.throws(() => reg.blobcache('/b'), /no blobcache metrics registered under id "\/b"/);
    reg.detached(b);
    assert.equal(reg.fs('/b').id, '/b', 'kept after detach (quirk Q4)');
    assert.equal(reg.backend().id, '/a', 'the backend object went with its instance');
    assert.equal(reg.blobcache().id, '/snap-a');
  });

  it('Prometheus text from the registry passes promtool, even with hostile label values', async () => {
    requireEnv(['promtool']);
    const reg = new MetricsRegistry();
    const a = fakeInstance('/we"ird\\path\nx', '/snap "1"', ['aa', 'bb']);
    const fs = reg.instrument(a.instance.fs, a);
    await fs.read(5n, 0n, 0n, 10, ctx);
    (a.instance.device as unknown as { observers: ((l: number, ms: number, f: boolean) => void)[] }).observers.forEach((o) => o(4096, 30, false));
    const text = await prometheusRegistry(reg, () => [{ nodeId: 1n, opcode: 15, unique: 1n, startedSecs: 1 }]).metrics();
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(check.status, 0, `${check.stdout}${check.stderr}\n${text}`);
    assert.match(text, /^nydusd_fs_read_duration_seconds_count\{mountpoint="\/we\\"ird\\\\path\\nx",bootstrap="[^}]*"\} 1$/m);
    assert.match(text, /^nydusd_backend_read_duration_seconds_bucket\{mountpoint="[^}]*",backend_type="localfs",le="0\.05"\} 1$/m);
    assert.match(text, /^nydusd_backend_read_duration_seconds_bucket\{mountpoint="[^}]*",backend_type="localfs",le="0\.02"\} 0$/m);
    assert.match(text, /^nydusd_blobcache_files\{cache_id="\/snap \\"1\\"",store_path="\/cache"\} 4$/m);
    assert.match(text, /^nydusd_fuse_inflight_requests 1$/m);
  });

  it('histograms are cumulative with +Inf last, and count the total', () => {
    const s = histogramSamples('h', { a: '1' }, [1, 0, 2], [0.5, 1], 7);
    assert.deepEqual(s.map((x) => [x.metricName, x.labels.le, x.value]), [
      ['h_bucket', '0.5', 1], ['h_bucket', '1', 1], ['h_bucket', '+Inf', 3], ['h_sum', undefined, 7], ['h_count', undefined, 3],
    ]);
  });
});
