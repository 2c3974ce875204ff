// The filesystem counters of one attached instance (spec nydusd-runtime.md 8.2-8.4): global operation counts, bytes,
// size classes and read latencies; per-file counters (`iostats_files`), the access pattern (`access_pattern`) and the
// inodes read since the last query (`latest_read_files`). Inode numbers are the instance's own (8.3), not node ids.
import { bucket, CLASSES, Fop, FOPS, FS_LATENCY_LIMITS_US, sizeClass, zeros } from './tables.js';

export interface FsMetricsOptions {
  /** rafs.iostats_files: keep per-file counters */
  filesAccount: boolean;
  /** rafs.access_pattern: keep when each inode was first read and how often */
  accessPattern: boolean;
  /** rafs.latest_read_files: remember the inodes read since the previous query */
  latestReadFiles: boolean;
}

export interface FileCounters {
  totalFops: number;
  dataRead: number;
  blockCountRead: number[];
  fopHits: number[];
  fopErrors: number[];
}

export interface AccessRecord {
  nrRead: number;
  /** wall-clock time of the first read: whole seconds and the nanoseconds within them */
  firstSecs: number;
  firstNanos: number;
}

export class FsMetrics {
  dataRead = 0;
  /** opens are not tracked for RAFS (8.2): always 0 */
  readonly nrOpens = 0;
  readonly blockCountRead = zeros(CLASSES);
  readonly fopHits = zeros(FOPS.length);
  readonly fopErrors = zeros(FOPS.length);
  /** microseconds; only the Read slot is filled (8.2) */
  readonly fopLatencyUs = zeros(FOPS.length);
  readonly readLatencyDist = zeros(CLASSES);
  readonly files = new Map<number, FileCounters>();
  readonly pattern = new Map<number, AccessRecord>();
  private latest = new Set<number>();

  constructor(
    /** the instance mountpoint inside the FUSE tree: the key of the `id` rule (3.5.7) */
    readonly id: string,
    readonly opts: FsMetricsOptions,
    /** labels for Prometheus: the image the instance serves */
    readonly bootstrap: string,
    private readonly now: () => number = () => performance.timeOrigin + performance.now(),
  ) {}

  /** The per-file counters of `ino`, created on first use; undefined when iostats_files is off. */
  file(ino: number): FileCounters | undefined {
    if (!this.opts.filesAccount) return undefined;
    let f = this.files.get(ino);
    if (!f) {
      f = { totalFops: 0, dataRead: 0, blockCountRead: zeros(CLASSES), fopHits: zeros(FOPS.length), fopErrors: zeros(FOPS.length) };
      this.files.set(ino, f);
    }
    return f;
  }

  /** One operation other than a read on inode `ino`. */
  op(fop: number, ino: number, ok: boolean): void {
    (ok ? this.fopHits : this.fopErrors)[fop]!++;
    const f = this.file(ino);
    if (f) {
      f.totalFops++;
      (ok ? f.fopHits : f.fopErrors)[fop]!++;
    }
  }

  /**
   * One READ of `ino` that took `micros` and returned `bytes` (0 when it failed; a failed read lands in size
   * class 0, 8.2). A read at end of file is a success.
   */
  read(ino: number, ok: boolean, bytes: number, micros: number): void {
    const us = Math.max(0, Math.round(micros));
    this.op(Fop.Read, ino, ok);
    const cls = sizeClass(ok ? bytes : 0);
    this.blockCountRead[cls]!++;
    this.fopLatencyUs[Fop.Read]! += us;
    this.readLatencyDist[bucket(us, FS_LATENCY_LIMITS_US)]!++;
    if (ok) this.dataRead += bytes;
    const f = this.file(ino);
    if (f) {
      f.blockCountRead[cls]!++;
      if (ok) f.dataRead += bytes;
    }
    if (this.opts.accessPattern) {
      const p = this.pattern.get(ino);
      if (p) p.nrRead++;
      else {
        const ms = this.now();
        const secs = Math.floor(ms / 1000);
        this.pattern.set(ino, { nrRead: 1, firstSecs: secs, firstNanos: Math.round((ms - secs * 1000) * 1e6) % 1e9 });
      }
    }
    if (ok && this.opts.latestReadFiles) this.latest.add(ino);
  }

  /** The inodes read since the previous call, as ascending runs `[n]` or `[first, last]` (8.3); clears them. */
  takeLatestRead(): number[][] {
    const inos = [...this.latest].sort((a, b) => a - b);
    this.latest = new Set();
    const runs: number[][] = [];
    for (const ino of inos) {
      const last = runs[runs.length - 1];
      const end = last?.[last.length - 1];
      if (last && end === ino - 1) last[1] = ino;
      else runs.push([ino]);
    }
    return runs;
  }
}
