// A blob backend reads exact byte ranges of data blobs by blob id. Everything above it (cache,
// prefetch, filesystem) is backend-agnostic; backends only move bytes.

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
