// The one owner of the process's metrics (issue 9): each attached instance's filesystem and backend counters, keyed
// by its mountpoint, and the `id` rule every metrics route follows (spec nydusd-runtime.md 3.5.7). The daemon core
// reaches it only through its hooks (DaemonHooks): `instrument` when an instance is attached, `detached` when it goes.
import type { FileSystem } from '../fuse/filesystem.js';
import type { DaemonHooks, MountedInstance } from '../service/daemon.js';
import { BackendMetrics } from './backend-metrics.js';
import { FsMetrics } from './fs-metrics.js';
import { instrumentFs } from './instrument.js';

/** No metrics object answers to the id (or, without one, not exactly one exists): 404 (3.3, `NoCounter`). */
export class NoCounterError extends Error {
  constructor(kind: string, id: string | undefined, count: number) {
    super(
      id !== undefined
        ? `Metrics(Stats(NoCounter)): no ${kind} metrics registered under id ${JSON.stringify(id)}`
        : `Metrics(Stats(NoCounter)): without an id exactly one ${kind} metrics object must exist, and ${count} do`,
    );
    this.name = 'NoCounterError';
  }
}

/** The id rule: the object under exactly `id`, or without one the only object there is. */
function pick<T>(kind: string, map: ReadonlyMap<string, T>, id: string | undefined): T {
  if (id !== undefined) {
    const v = map.get(id);
    if (v === undefined) throw new NoCounterError(kind, id, map.size);
    return v;
  }
  if (map.size !== 1) throw new NoCounterError(kind, undefined, map.size);
  return map.values().next().value!;
}

/** The instances whose blob caches one blobcache metrics object reports: those of one configuration id (8.5). */
export interface BlobcacheGroup {
  id: string;
  instances: MountedInstance[];
}

interface Attached {
  mounted: MountedInstance;
  backend: BackendMetrics;
}

export class MetricsRegistry {
  /** never removed, as the reference's (quirk Q4): an instance mounted again at the same path starts afresh */
  private readonly fsById = new Map<string, FsMetrics>();
  private readonly attached = new Map<string, Attached>();

  /** What the daemon core calls (pass it as FuseDaemon's third argument). */
  hooks(): DaemonHooks {
    return {
      instrument: (fs, mounted) => this.instrument(fs, mounted),
      detached: (mounted) => this.detached(mounted),
    };
  }

  instrument(fs: FileSystem, mounted: MountedInstance): FileSystem {
    const { bootstrap, config, device } = mounted.instance;
    const rafs = config.rafs;
    const m = new FsMetrics(
      mounted.mountpoint,
      { filesAccount: rafs?.iostats_files ?? false, accessPattern: rafs?.access_pattern ?? false, latestReadFiles: rafs?.latest_read_files ?? false },
      mounted.bootstrapPath,
    );
    this.fsById.set(mounted.mountpoint, m);
    const backend = new BackendMetrics(mounted.mountpoint, device.backend.kind);
    device.backend.observe((length, millis, failed) => backend.record(length, millis, failed));
    this.attached.set(mounted.mountpoint, { mounted, backend });
    // RAFS answers its root inode as FUSE node 1 and every other inode under its own number (rafs/fs.ts)
    const root = bootstrap.superblock.rootIno;
    return instrumentFs(fs, m, (node) => (node === 1n ? root : Number(node)));
  }

  detached(mounted: MountedInstance): void {
    if (this.attached.get(mounted.mountpoint)?.mounted === mounted) this.attached.delete(mounted.mountpoint);
  }

  fs(id?: string): FsMetrics {
    return pick('filesystem', this.fsById, id);
  }

  backend(id?: string): BackendMetrics {
    return pick('backend', new Map([...this.attached].map(([k, a]) => [k, a.backend])), id);
  }

  /** Blob caches are keyed by the configuration id (v1 `device.id`), the snapshotter's `/<snapshot>` (3.5.7). */
  blobcache(id?: string): BlobcacheGroup {
    return pick('blobcache', this.blobcacheGroups(), id);
  }

  blobcacheGroups(): Map<string, BlobcacheGroup> {
    const groups = new Map<string, BlobcacheGroup>();
    for (const { mounted } of this.attached.values()) {
      const id = mounted.instance.config.id;
      const g = groups.get(id);
      if (g) g.instances.push(mounted);
      else groups.set(id, { id, instances: [mounted] });
    }
    return groups;
  }

  /** Every filesystem metrics object (detached instances' too, Q4). */
  allFs(): FsMetrics[] {
    return [...this.fsById.values()];
  }

  allBackends(): BackendMetrics[] {
    return [...this.attached.values()].map((a) => a.backend);
  }
}

/** The registry of this process (nydusd's); tests of the renderers make their own. */
export const processMetrics = new MetricsRegistry();
