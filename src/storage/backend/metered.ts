// Metering as a decorator: every read that reaches the backend is counted and timed, whoever issues it (cache,
// CI table, prefetch). These counters are the raw material of the backend metrics (nydusd-runtime.md 8.6).
import type { Log } from '../../log.js';
import type { BlobBackend, ReadKind } from './blob-backend.js';
import { BackendDecorator } from './decorator.js';

/** One read attempt as the backend metrics record it: the requested length, how long it took, whether it failed. */
export type BackendReadObserver = (length: number, millis: number, failed: boolean) => void;

/** Backend counters, the raw material of the backend metrics. */
export interface BackendStats {
  reads: number;
  bytes: number;
  errors: number;
}


/**
 * Wraps a backend to count every read that reaches it, whoever issues it (cache, meta, prefetch), and
 * to log each one at debug level: when a cache does not behave, the backend traffic is the first thing
 * an operator looks at.
 */
export class MeteredBackend extends BackendDecorator {
  readonly stats: BackendStats = { reads: 0, bytes: 0, errors: 0 };
  /** reads that have not returned, including ones abandoned after their timeout */
  pending = 0;
  private readonly observers: BackendReadObserver[] = [];

  constructor(
    inner: BlobBackend,
    private readonly log?: Log,
  ) {
    super(inner);
  }


  /** Calls `fn` after every read, with its requested length and duration (the metrics layer's per-size-class counters). */
  observe(fn: BackendReadObserver): void {
    this.observers.push(fn);
  }

  async read(blobId: string, offset: number, length: number, signal?: AbortSignal, into?: Buffer, kind?: ReadKind, bypassProxy?: boolean): Promise<Buffer> {
    this.stats.reads++;
    this.pending++;
    const t0 = performance.now();
    let failed = true;
    try {
      const data = await this.inner.read(blobId, offset, length, signal, into, kind, bypassProxy);
      this.stats.bytes += data.length;
      failed = false;
      this.log?.('debug', `backend ${this.kind}: read blob ${blobId} offset ${offset} length ${length} in ${(performance.now() - t0).toFixed(1)} ms`);
      return data;
    } catch (err) {
      this.stats.errors++;
      this.log?.('warn', `backend ${this.kind}: read blob ${blobId} offset ${offset} length ${length} failed: ${(err as Error).message}`);
      throw err;
    } finally {
      this.pending--;
      const millis = performance.now() - t0;
      for (const fn of this.observers) fn(length, millis, failed);
    }
  }

}
