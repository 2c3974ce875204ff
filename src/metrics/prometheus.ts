// The process's metrics as Prometheus text (our extension, issue 9): the same counters as the nydus JSON, named and
// measured by Prometheus conventions (`_total` counters, `_seconds` and `_bytes` histograms), labelled by instance
// mountpoint and bootstrap (blob caches by their configuration id), plus the process's RSS and CPU time under the
// standard `process_*` names. (prom-client's default set is not used: its `nodejs_active_*_total` gauges fail
// `promtool check metrics`.)
// Histograms are built from the nydus buckets (spec nydusd-runtime.md 8.1), so both views always agree.
import { Registry, type Metric } from 'prom-client';
import type { InflightRequest } from '../fuse/dispatcher.js';
import { blobcacheSnapshot } from './blobcache.js';
import type { BackendMetrics } from './backend-metrics.js';
import type { FsMetrics } from './fs-metrics.js';
import type { MetricsRegistry } from './registry.js';
import { BACKEND_LATENCY_LIMITS_MS, FOPS, FS_LATENCY_LIMITS_US, Fop, SIZE_CLASS_LIMITS } from './tables.js';

type Labels = Record<string, string>;
interface Sample {
  metricName?: string;
  labels: Labels;
  value: number;
}
interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  samples: () => Sample[] | Promise<Sample[]>;
}

/** The samples of one histogram from per-bucket counts (not cumulative) and their upper bounds (+Inf last). */
export function histogramSamples(name: string, labels: Labels, counts: readonly number[], bounds: readonly number[], sum: number): Sample[] {
  const out: Sample[] = [];
  let cumulative = 0;
  counts.forEach((c, i) => {
    cumulative += c;
    const le = i < bounds.length ? String(bounds[i]) : '+Inf';
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: cumulative });
  });
  out.push({ metricName: `${name}_sum`, labels, value: sum });
  out.push({ metricName: `${name}_count`, labels, value: cumulative });
  return out;
}

/** Seconds bounds of the filesystem read-latency buckets (inclusive microsecond limits). */
const FS_LATENCY_BOUNDS_S = FS_LATENCY_LIMITS_US.map((us) => us / 1e6);
/** Seconds bounds of the backend latency buckets (inclusive millisecond limits). */
const BACKEND_LATENCY_BOUNDS_S = BACKEND_LATENCY_LIMITS_MS.map((ms) => ms / 1e3);
/** Byte bounds of the size classes: class i holds sizes below SIZE_CLASS_LIMITS[i], so up to one byte less. */
const SIZE_BOUNDS = SIZE_CLASS_LIMITS.map((b) => b - 1);

/** The nydus metric families of `reg` (and of the FUSE session's requests in flight). */
export function families(reg: MetricsRegistry, inflight: () => readonly InflightRequest[]): Family[] {
  const fsLabels = (m: FsMetrics): Labels => ({ mountpoint: m.id, bootstrap: m.bootstrap });
  const perFs = (f: (m: FsMetrics) => Sample[]) => () => reg.allFs().flatMap(f);
  const perBackend = (f: (b: BackendMetrics) => Sample[]) => () => reg.allBackends().flatMap(f);
  return [
    {
      name: 'nydusd_fs_read_bytes_total', type: 'counter', help: 'Bytes returned by successful reads of the instance (nydus data_read).',
      samples: perFs((m) => [{ labels: fsLabels(m), value: m.dataRead }]),
    },
    {
      name: 'nydusd_fs_operations_total', type: 'counter', help: 'Successful filesystem operations by operation (nydus fop_hits).',
      samples: perFs((m) => FOPS.map((op, i) => ({ labels: { ...fsLabels(m), operation: op.toLowerCase() }, value: m.fopHits[i]! }))),
    },
    {
      name: 'nydusd_fs_operation_errors_total', type: 'counter', help: 'Failed filesystem operations by operation (nydus fop_errors).',
      samples: perFs((m) => FOPS.map((op, i) => ({ labels: { ...fsLabels(m), operation: op.toLowerCase() }, value: m.fopErrors[i]! }))),
    },
    {
      name: 'nydusd_fs_read_duration_seconds', type: 'histogram', help: 'Service time of reads (nydus read_latency_dist).',
      samples: perFs((m) => histogramSamples('nydusd_fs_read_duration_seconds', fsLabels(m), m.readLatencyDist, FS_LATENCY_BOUNDS_S, m.fopLatencyUs[Fop.Read]! / 1e6)),
    },
    {
      name: 'nydusd_fs_read_size_bytes', type: 'histogram', help: 'Bytes returned per read (nydus block_count_read).',
      samples: perFs((m) => histogramSamples('nydusd_fs_read_size_bytes', fsLabels(m), m.blockCountRead, SIZE_BOUNDS, m.dataRead)),
    },
    {
      name: 'nydusd_backend_reads_total', type: 'counter', help: 'Read attempts of the storage backend (nydus read_count).',
      samples: perBackend((b) => [{ labels: { mountpoint: b.id, backend_type: b.backendType }, value: b.readCount }]),
    },
    {
      name: 'nydusd_backend_read_errors_total', type: 'counter', help: 'Failed read attempts of the storage backend (nydus read_errors).',
      samples: perBackend((b) => [{ labels: { mountpoint: b.id, backend_type: b.backendType }, value: b.readErrors }]),
    },
    {
      name: 'nydusd_backend_read_bytes_total', type: 'counter', help: 'Bytes requested from the storage backend (nydus read_amount_total).',
      samples: perBackend((b) => [{ labels: { mountpoint: b.id, backend_type: b.backendType }, value: b.readAmountTotal }]),
    },
    {
      name: 'nydusd_backend_read_duration_seconds', type: 'histogram', help: 'Duration of backend read attempts (nydus read_latency_sizes_dist over all sizes).',
      samples: perBackend((b) => {
        const byLatency = b.latencyBySize.reduce((acc, row) => acc.map((v, i) => v + row[i]!), new Array<number>(8).fill(0));
        return histogramSamples('nydusd_backend_read_duration_seconds', { mountpoint: b.id, backend_type: b.backendType }, byLatency, BACKEND_LATENCY_BOUNDS_S, b.latencyMillisTotal / 1e3);
      }),
    },
    ...blobcacheFamilies(reg),
    {
      name: 'nydusd_fuse_inflight_requests', type: 'gauge', help: 'FUSE requests being served now.',
      samples: () => [{ labels: {}, value: inflight().length }],
    },
  ];
}

function blobcacheFamilies(reg: MetricsRegistry): Family[] {
  // one snapshot per scrape, shared by the blob-cache families
  let pending: Promise<{ labels: Labels; s: Awaited<ReturnType<typeof blobcacheSnapshot>> }[]> | undefined;
  const snapshots = () => {
    pending ??= Promise.all([...reg.blobcacheGroups().values()].map(async (g) => {
      const s = await blobcacheSnapshot(g);
      return { labels: { cache_id: g.id, store_path: s.storePath }, s };
    }));
    const p = pending;
    setImmediate(() => { if (pending === p) pending = undefined; });
    return p;
  };
  return [
    {
      name: 'nydusd_blobcache_requests_total', type: 'counter', help: 'Read requests that reached the blob cache (nydus total).',
      samples: async () => (await snapshots()).map(({ labels, s }) => ({ labels, value: s.stats.reads })),
    },
    {
      name: 'nydusd_blobcache_hits_total', type: 'counter', help: 'Chunks served from the blob cache (nydus partial_hits + whole_hits).',
      samples: async () => (await snapshots()).map(({ labels, s }) => ({ labels, value: s.stats.cacheHits })),
    },
    {
      name: 'nydusd_blobcache_ready_chunks', type: 'gauge', help: 'Chunks ready in the blob cache (nydus entries_count).',
      samples: async () => (await snapshots()).map(({ labels, s }) => ({ labels, value: s.readyChunks })),
    },
    {
      name: 'nydusd_blobcache_files', type: 'gauge', help: 'Cache files of the blobs in the cache directory (nydus underlying_files).',
      samples: async () => (await snapshots()).map(({ labels, s }) => ({ labels, value: s.underlyingFiles.length })),
    },
  ];
}

/** The process's resident memory, CPU time and start time, by the names of the Prometheus client libraries. */
export function processFamilies(): Family[] {
  const startSecs = Math.round(performance.timeOrigin / 1000);
  return [
    {
      name: 'process_cpu_seconds_total', type: 'counter', help: 'Total user and system CPU time spent in seconds.',
      samples: () => {
        const u = process.cpuUsage();
        return [{ labels: {}, value: (u.user + u.system) / 1e6 }];
      },
    },
    {
      name: 'process_resident_memory_bytes', type: 'gauge', help: 'Resident memory size in bytes.',
      samples: () => [{ labels: {}, value: process.memoryUsage.rss() }],
    },
    {
      name: 'process_start_time_seconds', type: 'gauge', help: 'Start time of the process since unix epoch in seconds.',
      samples: () => [{ labels: {}, value: startSecs }],
    },
  ];
}

/** A prom-client registry serving `reg`'s families and the process's RSS and CPU time. */
export function prometheusRegistry(reg: MetricsRegistry, inflight: () => readonly InflightRequest[]): Registry {
  const prom = new Registry();
  for (const f of [...families(reg, inflight), ...processFamilies()]) {
    const metric = {
      name: f.name,
      help: f.help,
      type: f.type,
      aggregator: 'sum',
      get: async () => ({ name: f.name, help: f.help, type: f.type, aggregator: 'sum', values: await f.samples() }),
      reset: () => undefined,
    };
    prom.registerMetric(metric as unknown as Metric);
  }
  return prom;
}
