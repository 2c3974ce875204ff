// A blob backend reads exact byte ranges of data blobs by blob id. Everything above it (cache,
// prefetch, filesystem) is backend-agnostic; backends only move bytes.

/**
 * Why a read is made: a reader waiting for it (on-demand) or prefetch. The retry policy differs (nydusd-runtime.md 7.4);
 * a read without a kind is on-demand.
 */
/**
 * What a blob id may look like: a file name in work_dir and a path segment of a URL (digests are hex; no separators,
 * no leading dot). The blob device refuses other ids before any read; network backends check again where the id
 * becomes part of a URL.
 */
export const BLOB_ID = /^[0-9A-Za-z][0-9A-Za-z._-]{0,254}$/;

export type ReadKind = 'on-demand' | 'prefetch';

export interface BlobBackend {
  /** a short name for logs and metrics: 'localfs', 'registry', ... */
  readonly kind: string;
  /**
   * Reads exactly `length` bytes at `offset` of blob `blobId`. A short read (truncated blob), a missing
   * blob or a transport failure rejects with BackendError; `signal` aborts the read. `into` (exactly `length` bytes)
   * is memory the caller offers for the answer (the blob cache's arena): a backend may read into it and return it, or
   * ignore it and return its own. Once a read fails or is aborted, the caller never reuses `into`: a read given up
   * may still be writing into it below. `kind` says who waits for it (default on-demand). `bypassProxy`: never through
   * a proxy (the retry policy's last on-demand attempt, nydusd-runtime.md 7.4); backends without one ignore it.
   */
  read(blobId: string, offset: number, length: number, signal?: AbortSignal, into?: Buffer, kind?: ReadKind, bypassProxy?: boolean): Promise<Buffer>;
  /** the blob's size in bytes (used to find trailers such as the ToC) */
  size(blobId: string): Promise<number>;
  close(): Promise<void>;
  /** reads given up after their timeout that are still running below (each pins an I/O thread) */
  readonly abandoned?: number;
  /**
   * Network backends with credentials: the registry credential (base64 of `user:password`) changed, e.g. through
   * PUT /api/v1/config `registry_auth` (nydusd-runtime.md 2.6); '' drops it. The value is a secret: never logged.
   */
  setCredential?(value: string): void;
  /**
   * Network backends: the proxy URL changed through PUT /api/v1/config `proxy_url` (2.6, DECISIONS.md row 10); '' turns
   * proxying off. A URL that cannot work is refused with a log line and the proxy in use stays.
   */
  setProxyUrl?(url: string): void;
  /** Network backends: `dragonfly_scheduler_endpoint` changed (2.6); SDK mode is out of scope, so it is only logged. */
  setSchedulerEndpoint?(endpoint: string): void;
}
