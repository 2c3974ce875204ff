// The nydus JSON of every metrics route, field for field as spec nydusd-runtime.md section 8 lays them out (nydusctl and
// nydus-snapshotter read these names): full-length arrays (DECISIONS.md 12), non-negative integers.
import type { InflightRequest } from '../fuse/dispatcher.js';
import type { BackendMetrics } from './backend-metrics.js';
import type { BlobcacheSnapshot } from './blobcache.js';
import type { FileCounters, FsMetrics } from './fs-metrics.js';

/** GET /api/v1/metrics (8.2). */
export function fsGlobalJson(m: FsMetrics) {
  return {
    files_account_enabled: m.opts.filesAccount,
    access_pattern_enabled: m.opts.accessPattern,
    record_latest_read_files_enabled: m.opts.latestReadFiles,
    measure_latency: true,
    id: m.id,
    nr_opens: m.nrOpens,
    data_read: m.dataRead,
    block_count_read: [...m.blockCountRead],
    fop_hits: [...m.fopHits],
    fop_errors: [...m.fopErrors],
    fop_cumulative_latency_total: [...m.fopLatencyUs],
    read_latency_dist: [...m.readLatencyDist],
  };
}

function fileJson(f: FileCounters) {
  return {
    total_fops: f.totalFops,
    data_read: f.dataRead,
    block_count_read: [...f.blockCountRead],
    fop_hits: [...f.fopHits],
    fop_errors: [...f.fopErrors],
  };
}

/** GET /api/v1/metrics/files (8.3): inode number (decimal string) -> counters; `{}` without iostats_files. */
export function fsFilesJson(m: FsMetrics): Record<string, ReturnType<typeof fileJson>> {
  const out: Record<string, ReturnType<typeof fileJson>> = {};
  for (const [ino, f] of [...m.files].sort((a, b) => a[0] - b[0])) out[String(ino)] = fileJson(f);
  return out;
}

/** GET /api/v1/metrics/files?latest=true (8.3): runs of the inodes read since the previous such query (cleared). */
export function latestReadJson(m: FsMetrics): number[][] {
  return m.opts.latestReadFiles ? m.takeLatestRead() : [];
}

/** GET /api/v1/metrics/pattern (8.4): one entry per inode read at least once; `[]` without access_pattern. */
export function patternJson(m: FsMetrics) {
  return [...m.pattern].map(([ino, p]) => ({
    ino,
    nr_read: p.nrRead,
    first_access_time_secs: p.firstSecs,
    first_access_time_nanos: p.firstNanos,
  }));
}

/** GET /api/v1/metrics/backend (8.6); the id is not part of it. */
export function backendJson(b: BackendMetrics) {
  return {
    backend_type: b.backendType,
    read_count: b.readCount,
    read_errors: b.readErrors,
    read_amount_total: b.readAmountTotal,
    read_cumulative_latency_millis_total: b.latencyMillisTotal,
    read_cumulative_latency_millis_dist: [...b.latencyMillisBySize],
    read_count_block_size_dist: [...b.countBySize],
    read_latency_sizes_dist: b.latencyBySize.map((row) => [...row]),
  };
}

/**
 * GET /api/v1/metrics/blobcache (8.5). Chunks served from the cache count as `partial_hits` (straight from the file)
 * or, with cache.validate, `whole_hits` (checked first); `total` is one per blob I/O vector; prefetch is not
 * implemented, so its fields are 0.
 */
export function blobcacheJson(s: BlobcacheSnapshot) {
  return {
    underlying_files: [...s.underlyingFiles],
    store_path: s.storePath,
    partial_hits: s.validated ? 0 : s.stats.cacheHits,
    whole_hits: s.validated ? s.stats.cacheHits : 0,
    total: s.stats.reads,
    entries_count: s.readyChunks,
    prefetch_data_amount: 0,
    prefetch_requests_count: 0,
    prefetch_workers: 0,
    prefetch_unmerged_chunks: 0,
    prefetch_cumulative_time_millis: 0,
    prefetch_begin_time_secs: 0,
    prefetch_begin_time_millis: 0,
    prefetch_end_time_secs: 0,
    prefetch_end_time_millis: 0,
    buffered_backend_size: 0,
    data_all_ready: false,
  };
}

/**
 * GET /api/v1/metrics/inflight (3.5.8): the entries as JSON text, or undefined (204) when nothing is in flight. Text,
 * because node ids of instances in VFS slots (slot << 56 | inode, 9.1) and uniques are u64: as JavaScript numbers
 * they would be rounded.
 */
export function inflightJson(list: readonly InflightRequest[]): string | undefined {
  if (list.length === 0) return undefined;
  const entries = list.map((r) => `{"inode":${BigInt(r.nodeId)},"opcode":${r.opcode},"unique":${BigInt(r.unique)},"timestamp_secs":${r.startedSecs}}`);
  return `[${entries.join(',')}]`;
}
