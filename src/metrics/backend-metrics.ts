// The backend counters of one attached instance (spec nydusd-runtime.md 8.6): every read attempt with its requested
// length as its size, failed ones included; latencies in whole milliseconds per size class and latency bucket.
import { BACKEND_LATENCY_LIMITS_MS, bucket, CLASSES, sizeClass, zeros } from './tables.js';

export class BackendMetrics {
  readCount = 0;
  readErrors = 0;
  readAmountTotal = 0;
  latencyMillisTotal = 0;
  readonly latencyMillisBySize = zeros(CLASSES);
  readonly countBySize = zeros(CLASSES);
  /** outer index: size class; inner: latency bucket */
  readonly latencyBySize: number[][] = Array.from({ length: CLASSES }, () => zeros(CLASSES));

  constructor(
    /** the instance mountpoint (the `id` rule, 3.5.7) */
    readonly id: string,
    /** `localfs`, `registry`, ... */
    readonly backendType: string,
  ) {}

  /** One read attempt of `length` bytes that took `millis` ms. */
  record(length: number, millis: number, failed: boolean): void {
    const ms = Math.max(0, Math.round(millis));
    const cls = sizeClass(length);
    this.readCount++;
    if (failed) this.readErrors++;
    this.readAmountTotal += length;
    this.latencyMillisTotal += ms;
    this.latencyMillisBySize[cls]! += ms;
    this.countBySize[cls]!++;
    this.latencyBySize[cls]![bucket(ms, BACKEND_LATENCY_LIMITS_MS)]!++;
  }
}
