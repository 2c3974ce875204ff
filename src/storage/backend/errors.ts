// The error codes of the storage backends, in one place (as undici names its errors by `code`): callers and tests
// branch on the code, never on message text, and every message still reads as one clear line for the log.

export type BackendErrorCode =
  /** the configuration cannot make a working backend (bad CA file, bad credential, bad URL) */
  | 'ND_ERR_CONFIG'
  /** connecting failed: refused, unreachable, DNS, connect timeout */
  | 'ND_ERR_CONNECT'
  /** the TLS handshake failed or the certificate was refused */
  | 'ND_ERR_TLS'
  /** the connection broke mid-exchange (reset, closed early) */
  | 'ND_ERR_SOCKET'
  /** the whole exchange (headers and body) took longer than `timeout` */
  | 'ND_ERR_TIMEOUT'
  /** the server answered with a status that is an error for this request */
  | 'ND_ERR_STATUS'
  /** authentication failed: no usable challenge, no credential for it, the token service refused */
  | 'ND_ERR_AUTH'
  /** the answer is not the bytes asked for: whole blob instead of a range, wrong Content-Range, short or long body */
  | 'ND_ERR_RANGE'
  /** a redirect without a usable Location, or a redirect target that failed */
  | 'ND_ERR_REDIRECT'
  /** the backend has been closed */
  | 'ND_ERR_CLOSED'
  /** proxy mode (7.5): the proxy is unhealthy and fallback is disabled, or the proxy itself answered an error */
  | 'ND_ERR_PROXY'
  /** a Dragonfly proxy error 429 (`X-Dragonfly-Error-Type: proxy`): rate limited; retried directly (7.4) */
  | 'ND_ERR_PROXY_RATE_LIMITED'
  /** a Dragonfly proxy error 403: forbidden; never retried (7.4) */
  | 'ND_ERR_PROXY_FORBIDDEN';

/** A read of a blob failed: the message names the blob and the range; `code` says why, when the backend knows. */
export class BackendError extends Error {
  constructor(
    message: string,
    readonly blobId: string,
    options?: { cause?: unknown; code?: BackendErrorCode },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BackendError';
    this.code = options?.code;
  }

  /** what went wrong, when the backend knows */
  readonly code?: BackendErrorCode;
}

/**
 * A failure of the HTTP layer or of a protocol on it (registry auth, redirects), before it is tied to a blob.
 * `status` is the HTTP status when a response was the cause.
 */
export class NetworkError extends Error {
  constructor(
    message: string,
    readonly code: BackendErrorCode,
    options?: { cause?: unknown; status?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NetworkError';
    this.status = options?.status;
  }

  readonly status?: number;
}

/** The code of any error thrown below a backend, when it has one of ours. */
export function errorCode(err: unknown): BackendErrorCode | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ND_ERR_') ? (code as BackendErrorCode) : undefined;
}
