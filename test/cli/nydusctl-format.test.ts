// nydusctl's text output (src/cli/nydusctl/format.ts) for JSON shaped as spec nydusd-runtime.md section 8 (and 3.5.1
// for DaemonInfo): each expected text is the shape of spec section 5, written out line by line with the values the
// input implies (computations shown beside them).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  displayMountedTime, formatBackendInterval, formatBackendMetrics, formatCacheMetrics, formatFiles, formatFsStats, formatInflight, formatInfo,
  formatPattern, FormatError, rustFloat, sortedJson, valueDebug,
} from '../../src/cli/nydusctl/format.js';

const zeros = (n: number) => new Array<number>(n).fill(0);
const at = (n: number, values: Record<number, number>) => zeros(n).map((z, i) => values[i] ?? z);

// a DaemonInfo (3.5.1) with one RAFS instance, its config trimmed to what the text uses
const info = (collection: unknown) => ({
  version: { package_ver: 'v0.1.0', git_commit: '0123456789abcdef0123456789abcdef01234567', build_time: '2026-07-23T02:52:53Z', profile: 'release', rustc: 'node v20' },
  id: null, supervisor: null, state: 'RUNNING', backend_collection: collection,
});
const rafsInstance = (mp: string, time: string) => ({
  backend_type: 'Rafs', mountpoint: mp, mounted_time: time,
  config: {
    version: 2, id: '', cache: { type: 'blobcache', prefetch: { enable: true, threads: 8, batch_size: 1048576 } },
    rafs: { mode: 'direct', prefetch: { enable: false } },
  },
});

test('info (5.2): the version block with JSON values, then each instance indented by a tab', () => {
  const head = ['', 'Version:                "v0.1.0"', 'Status:                 "RUNNING"', 'Profile:                "release"',
    'Commit:                 "0123456789abcdef0123456789abcdef01234567"'];
  assert.equal(formatInfo(info(null)), [...head, ''].join('\n'));
  assert.equal(formatInfo(info({})), [...head, ''].join('\n'));
  assert.equal(formatInfo(info({
    '/': rafsInstance('/', '2026-07-23 03:00:00.5 +00:00:00'),
    '/pt': { backend_type: 'PassthroughFs', mountpoint: '/pt', mounted_time: '2026-07-23 14:05:09.000000001 +00:00:00', config: null },
  })), [...head,
    'Instances:',
    '\tInstance Mountpoint:  /', '\tType:  Rafs', '\tMounted Time:  2026-07-23 3:00:00.5 +00:00:00',
    // mode from rafs.mode, prefetch and its size from cache.prefetch (not rafs.prefetch)
    '\tMode:  direct', '\tPrefetch:  true', '\tPrefetch Merging Size:  1048576', '',
    '\tInstance Mountpoint:  /pt', '\tType:  PassthroughFs', '\tMounted Time:  2026-07-23 14:05:09.000000001 +00:00:00', ''].join('\n'));
  // what the reference's nydusctl panics on is an error naming it
  assert.throws(() => formatInfo(info({ '/': rafsInstance('/', '2026-07-23T03:00:00Z') })), (e: unknown) => e instanceof FormatError && /mounted_time "2026-07-23T03:00:00Z"/.test(e.message));
  assert.throws(() => formatInfo(info({ '/': { ...rafsInstance('/', '2026-07-23 03:00:00.5 +00:00:00'), backend_type: 'rafs' } })), /unknown backend_type "rafs"/);
  assert.throws(() => formatInfo(info({ '/': { ...rafsInstance('/', '2026-07-23 03:00:00.5 +00:00:00'), config: { rafs: {} } } })), /no cache or rafs section/);
});

test('mounted times are shown as chrono re-displays them: hour unpadded, fraction trimmed', () => {
  assert.equal(displayMountedTime('2026-07-23 03:00:00.500000000 +00:00:00'), '2026-07-23 3:00:00.5 +00:00:00');
  assert.equal(displayMountedTime('2026-07-23 00:07:08.0 +00:00:00'), '2026-07-23 0:07:08 +00:00:00');
  assert.equal(displayMountedTime('2026-12-31 23:59:59.123456789 +00:00:00'), '2026-12-31 23:59:59.123456789 +00:00:00');
});

// BackendMetrics (8.6): 10 reads of 1 MiB each (size class 7), 520 ms in all
const backend = {
  backend_type: 'registry', read_count: 10, read_errors: 0, read_amount_total: 10 * 1048576, read_cumulative_latency_millis_total: 520,
  read_cumulative_latency_millis_dist: at(8, { 7: 520 }), read_count_block_size_dist: at(8, { 7: 10 }),
  read_latency_sizes_dist: zeros(8).map((_, i) => (i === 7 ? at(8, { 4: 10 }) : zeros(8))),
};

test('metrics backend (5.3): amounts, and per size class the average latency and the count', () => {
  assert.equal(formatBackendMetrics(backend), [
    '',
    'Backend Type:       "registry"',
    'Read Amount:        10485760 Bytes (10 MB)',
    'Read Count:         10',
    'Read Errors:        0',
    '',
    'Block Sizes:             <1K     1K~     4K~     16K~    64K~    128K~   512K~   1M~     ',
    // 520 ms / 10 reads in class 7
    'Average Latency(millis): 0       0       0       0       0       0       0       52      ',
    '',
    'Block Sizes:             <1K     1K~     4K~     16K~    64K~    128K~   512K~   1M~     ',
    'Request Count:           0       0       0       0       0       0       0       10      ',
    '',
  ].join('\n'));
  // 3 reads of 1 KiB (class 1) in 10 ms: 3072 / 1048576 = 0.0029296875 MB, 10 / 3 = 3 ms (integer division)
  const small = { ...backend, backend_type: 'localfs', read_count: 3, read_errors: 1, read_amount_total: 3072,
    read_cumulative_latency_millis_dist: at(8, { 1: 10 }), read_count_block_size_dist: at(8, { 1: 3 }) };
  const text = formatBackendMetrics(small).split('\n');
  assert.equal(text[1], 'Backend Type:       "localfs"');
  assert.equal(text[2], 'Read Amount:        3072 Bytes (0.0029296875 MB)');
  assert.equal(text[4], 'Read Errors:        1');
  assert.equal(text[7], 'Average Latency(millis): 0       3       0       0       0       0       0       0       ');
  assert.throws(() => formatBackendMetrics({ ...backend, read_count_block_size_dist: [1, 2] }), /read_count_block_size_dist" must be an array of 8 numbers/);
  assert.throws(() => formatBackendMetrics({ ...backend, read_count: undefined }), /"read_count" is missing/);
});

test('metrics backend --interval (5.3): the deltas of two samples', () => {
  // 4 more reads of 1 MiB in 2 s, taking 100 ms in all
  const later = { ...backend, read_count: 14, read_amount_total: 14 * 1048576, read_cumulative_latency_millis_total: 620,
    read_cumulative_latency_millis_dist: at(8, { 7: 620 }), read_count_block_size_dist: at(8, { 7: 14 }) };
  assert.equal(formatBackendInterval(backend, later, 2), [
    '',
    '>>> >>> >>> >>> >>>',
    'Backend Read Bandwidth:     2048 KB/S', // 4 MiB / 1024 / 2 s
    'Backend Average IO Size:    1048576 Bytes',
    'Backend Average Latency:    25 millis', // 100 ms / 4
    '',
    'Block Sizes/millis:',
    '<1K     1K~     4K~     16K~    64K~    128K~   512K~   1M~     ',
    '0       0       0       0       0       0       0       25      ',
    '<<< <<< <<< <<< <<<',
    '',
  ].join('\n'));
});

// BlobcacheMetrics (8.5)
const cache = {
  underlying_files: ['a1b2.blob.data'], store_path: '/var/lib/nydus/cache', partial_hits: 12, whole_hits: 3, total: 20, entries_count: 7,
  prefetch_data_amount: 1048576, prefetch_requests_count: 4, prefetch_workers: 8, prefetch_unmerged_chunks: 16, prefetch_cumulative_time_millis: 1200,
  prefetch_begin_time_secs: 1753239600, prefetch_begin_time_millis: 0, prefetch_end_time_secs: 1753239601, prefetch_end_time_millis: 250,
  buffered_backend_size: 0, data_all_ready: false,
};

test('metrics cache (5.4): hits, files, and the prefetch figures derived from the counters', () => {
  assert.equal(formatCacheMetrics(cache), [
    '',
    'Partial Hits:               12',
    'Whole Hits:                 3',
    'Total Read:                 20',
    'Directory:                  "/var/lib/nydus/cache"',
    'Files:                      ["a1b2.blob.data"]',
    'Persister Buffer:           0',
    '',
    'Prefetch Workers:           8',
    'Prefetch Amount:            1048576 = 1024 KB',
    'Prefetch Requests:          4',
    'Prefetch Average Size:      262144 Bytes', // 1048576 / 4
    'Prefetch Duration:          1.25 Seconds', // (1753239601 + 0.25) - (1753239600 + 0)
    'Prefetch Bandwidth:         0.8 MB/S', // 1 MiB / 1.25 s
    'Prefetch Request Latency:   0.3 Seconds', // 1200 ms / 4 / 1000
    'Prefetch Unmerged:          16',
    '',
  ].join('\n'));
  // no prefetch at all: the float divisions by zero print NaN, as the reference's do
  const idle = formatCacheMetrics({ ...cache, prefetch_data_amount: 0, prefetch_requests_count: 0, prefetch_cumulative_time_millis: 0,
    prefetch_begin_time_secs: 0, prefetch_end_time_secs: 0, prefetch_end_time_millis: 0 }).split('\n');
  assert.deepEqual(idle.slice(10, 15), [
    'Prefetch Requests:          0', 'Prefetch Average Size:      0 Bytes', 'Prefetch Duration:          0 Seconds',
    'Prefetch Bandwidth:         NaN MB/S', 'Prefetch Request Latency:   NaN Seconds',
  ]);
});

// FsMetrics (8.2)
const fs = {
  files_account_enabled: false, access_pattern_enabled: false, record_latest_read_files_enabled: false, measure_latency: true, id: '/', nr_opens: 0,
  data_read: 1048576 + 4096, block_count_read: at(8, { 2: 4, 7: 1 }),
  fop_hits: at(15, { 0: 10, 4: 8, 6: 2, 9: 25, 11: 4 }), fop_errors: at(15, { 4: 1, 9: 3 }),
  fop_cumulative_latency_total: at(15, { 4: 1234 }), read_latency_dist: at(8, { 0: 5, 1: 3 }),
};

test('metrics fsstats (5.5): the latency histogram under the reference\'s labels, read errors and data, every FOP counter', () => {
  assert.equal(formatFsStats(fs), [
    '',
    'Read Latency:   <1ms    ~20ms   ~50ms   ~100ms  ~500ms  ~1s     ~2s     2s~     ',
    'Reads Count:    5       3       0       0       0       0       0       0       ',
    '',
    'Read Errors: 1', // fop_errors[4]
    'Read Data: 1052672Bytes (1MB)', // integer MiB
    '',
    'FOP Counters:',
    'Getattr(10) Readlink(0) Open(0) Release(0) Read(8) Statfs(0) Getxattr(2) Listxattr(0)',
    'Opendir(0) Lookup(25) Readdir(0) Readdirplus(4) Access(0) Forget(0) BatchForget(0)',
    '',
  ].join('\n'));
  assert.throws(() => formatFsStats({ ...fs, fop_hits: zeros(14) }), /"fop_hits" must be an array of 15 numbers/);
});

test('metrics inflight, files and pattern (shapes of nydus-ts: the reference\'s nydusctl has no such commands)', () => {
  assert.equal(formatInflight(undefined), '\nNo FUSE request in flight\n');
  assert.equal(formatInflight([{ inode: 2, opcode: 15, unique: 8042, timestamp_secs: 1753239600 }, { inode: 1, opcode: 1, unique: 8044, timestamp_secs: 1753239601 }]), [
    '', 'Inode   Opcode          Unique      Since', '2       READ(15)        8042        1753239600', '1       LOOKUP(1)       8044        1753239601', '',
  ].join('\n'));
  assert.equal(formatFiles({
    10: { total_fops: 3, data_read: 4096, block_count_read: at(8, { 2: 1 }), fop_hits: zeros(15), fop_errors: zeros(15) },
    9: { total_fops: 1, data_read: 0, block_count_read: zeros(8), fop_hits: zeros(15), fop_errors: zeros(15) },
  }), ['', 'Inode 9: 1 fops, 0 Bytes read, reads per size class [0, 0, 0, 0, 0, 0, 0, 0]', 'Inode 10: 3 fops, 4096 Bytes read, reads per size class [0, 0, 1, 0, 0, 0, 0, 0]', ''].join('\n'));
  assert.equal(formatFiles({}), '\nNo per-file counters (is iostats_files on?)\n');
  assert.equal(formatFiles([[1, 2], [5], [65, 66]]), '\nRecently Read Inodes: 1-2 5 65-66\n');
  assert.equal(formatFiles([]), '\nRecently Read Inodes: (none)\n');
  assert.equal(formatPattern([
    { ino: 7, nr_read: 2, first_access_time_secs: 1753239601, first_access_time_nanos: 5 },
    { ino: 3, nr_read: 1, first_access_time_secs: 1753239600, first_access_time_nanos: 123456789 },
  ]), ['', 'Inode 3: 1 reads, first at 1753239600.123456789', 'Inode 7: 2 reads, first at 1753239601.000000005', ''].join('\n'));
  assert.equal(formatPattern([]), '\nNo access recorded (is access_pattern on?)\n');
});

test('numbers and JSON as the reference prints them: Rust floats, sorted compact JSON, serde_json Value debug', () => {
  assert.equal(rustFloat(10), '10');
  assert.equal(rustFloat(0.5), '0.5');
  assert.equal(rustFloat(1024 / 1048576), '0.0009765625');
  assert.equal(rustFloat(1 / 1e7), '0.0000001');
  assert.equal(rustFloat(2.5e21), '2500000000000000000000');
  assert.equal(rustFloat(0 / 0), 'NaN');
  assert.equal(rustFloat(1 / 0), 'inf');
  assert.equal(sortedJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: null } }), '{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}');
  assert.equal(valueDebug({ message: 'Mount: "x"\n', code: 'UNDEFINED' }), 'Object {"code": String("UNDEFINED"), "message": String("Mount: \\"x\\"\\n")}');
  assert.equal(valueDebug([1, true, null, 0.5]), 'Array [Number(1), Bool(true), Null, Number(0.5)]');
});
