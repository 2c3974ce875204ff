// A blob backend reads exact byte ranges of data blobs by blob id. Everything above it (cache,
// prefetch, filesystem) is backend-agnostic; backends only move bytes.
import type { Log } from '../log.js';

export interface BlobBackend {
  /** a short name for logs and metrics: 'localfs', 'registry', ... */
  readonly kind: string;
  /**
   * Reads exactly `length` bytes at `offset` of blob `blobId`. A short read (truncated blob), a missing
   * blob or a transport failure rejects with BackendError; `signal` aborts the read. `into` (exactly `length` bytes)
   * is memory the caller offers for the answer (the blob cache's arena): a backend may read into it and return it, or
   * ignore it and return its own. Once a read fails or is aborted, the caller never reuses `into`: a read given up
   * may still be writing into it below.
   */
  read(blobId: string, offset: number, length: number, signal?: AbortSignal, into?: Buffer): Promise<Buffer>;
  /** the blob's size in bytes (used to find trailers such as the ToC) */
  size(blobId: string): Promise<number>;
  close(): Promise<void>;
  /** reads given up after their timeout that are still running below (each pins an I/O thread) */
  readonly abandoned?: number;
}

export class BackendError extends Error {
  constructor(
    message: string,
    readonly blobId: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BackendError';
  }
}

/** The longest a Node.js timer can wait (ms). */
const TIMER_MAX_MS = 2 ** 31 - 1;

/**
 * Bounds a backend read by the configured timeout (seconds; 0 = none). The timeout is whatever the
 * configuration says: there is no hidden fixed limit anywhere below this.
 */
export async function readWithTimeout(
  backend: BlobBackend,
  blobId: string,
  offset: number,
  length: number,
  timeoutSec: number,
  into?: Buffer,
): Promise<Buffer> {
  if (!(timeoutSec > 0)) return backend.read(blobId, offset, length, undefined, into);
  // configuration clamps durations already (config.ts MAX_TIMER_SEC); a longer timer would fire after 1 ms
  const ms = Math.min(timeoutSec * 1000, TIMER_MAX_MS);
  const ctl = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ctl.abort();
      reject(new BackendError(`${backend.kind}: reading blob ${blobId} [${offset}, +${length}) timed out after ${timeoutSec} s`, blobId));
    }, ms);
  });
  try {
    return await Promise.race([backend.read(blobId, offset, length, ctl.signal, into), expired]);
  } finally {
    clearTimeout(timer);
  }
}

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
export class MeteredBackend implements BlobBackend {
  readonly stats: BackendStats = { reads: 0, bytes: 0, errors: 0 };
  /** reads that have not returned, including ones abandoned after their timeout */
  pending = 0;
  private readonly observers: BackendReadObserver[] = [];

  constructor(
    private readonly inner: BlobBackend,
    private readonly log?: Log,
  ) {}

  get kind(): string {
    return this.inner.kind;
  }

  get abandoned(): number {
    return this.inner.abandoned ?? 0;
  }

  /** Calls `fn` after every read, with its requested length and duration (the metrics layer's per-size-class counters). */
  observe(fn: BackendReadObserver): void {
    this.observers.push(fn);
  }

  async read(blobId: string, offset: number, length: number, signal?: AbortSignal, into?: Buffer): Promise<Buffer> {
    this.stats.reads++;
    this.pending++;
    const t0 = performance.now();
    let failed = true;
    try {
      const data = await this.inner.read(blobId, offset, length, signal, into);
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

  size(blobId: string): Promise<number> {
    return this.inner.size(blobId);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
