// A blob backend reads exact byte ranges of data blobs by blob id. Everything above it (cache,
// prefetch, filesystem) is backend-agnostic; backends only move bytes.

export interface BlobBackend {
  /** a short name for logs and metrics: 'localfs', 'registry', ... */
  readonly kind: string;
  /**
   * Reads exactly `length` bytes at `offset` of blob `blobId`. A short read (truncated blob), a missing
   * blob or a transport failure rejects with BackendError; `signal` aborts the read.
   */
  read(blobId: string, offset: number, length: number, signal?: AbortSignal): Promise<Buffer>;
  /** the blob's size in bytes (used to find trailers such as the ToC) */
  size(blobId: string): Promise<number>;
  close(): Promise<void>;
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
): Promise<Buffer> {
  if (!(timeoutSec > 0)) return backend.read(blobId, offset, length);
  const ctl = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ctl.abort();
      reject(new BackendError(`${backend.kind}: reading blob ${blobId} [${offset}, +${length}) timed out after ${timeoutSec} s`, blobId));
    }, timeoutSec * 1000);
  });
  try {
    return await Promise.race([backend.read(blobId, offset, length, ctl.signal), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Backend counters, the raw material of the backend metrics. */
export interface BackendStats {
  reads: number;
  bytes: number;
  errors: number;
}

/** Wraps a backend to count every read that reaches it, whoever issues it (cache, meta, prefetch). */
export class MeteredBackend implements BlobBackend {
  readonly stats: BackendStats = { reads: 0, bytes: 0, errors: 0 };

  constructor(private readonly inner: BlobBackend) {}

  get kind(): string {
    return this.inner.kind;
  }

  async read(blobId: string, offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    this.stats.reads++;
    try {
      const data = await this.inner.read(blobId, offset, length, signal);
      this.stats.bytes += data.length;
      return data;
    } catch (err) {
      this.stats.errors++;
      throw err;
    }
  }

  size(blobId: string): Promise<number> {
    return this.inner.size(blobId);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
