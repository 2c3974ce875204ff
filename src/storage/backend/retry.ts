// The retry policy of network backends as a decorator (nydusd-runtime.md 7.4, v2.4.3 and later): an on-demand read is
// retried 3 times with no delay, the last retry first taking a token from a process-wide limiter of one request per
// second (so a dead registry is not hammered by every waiting reader at once); a prefetch read is retried once, after
// a random 100-1000 ms. After the last failure the error names the blob, the range, the attempts and the last error.
// A read its caller aborted is not retried.
//
// Proxy rows of 7.4: the last on-demand retry goes around the proxy (`bypassProxy`); a Dragonfly proxy error 403 is
// not retried; a Dragonfly 429 is retried at once around the proxy, after the limiter, when on-demand, and not retried
// when prefetch (errors.ts codes ND_ERR_PROXY_FORBIDDEN, ND_ERR_PROXY_RATE_LIMITED, set by http/proxy.ts).
//
// Order with metering (device.ts): Retry(Metered(backend)). Metering sits below the retry, so every attempt is
// counted and timed in the backend metrics (7.4: "every attempt is recorded"), and the failure reporting above the
// retry (the events ring, 3.5.3) sees only the final failure. Local backends (localfs) get no retry decorator.
import type { Log } from '../../log.js';
import type { BlobBackend, ReadKind } from './blob-backend.js';
import { BackendDecorator } from './decorator.js';
import { BackendError, errorCode } from './errors.js';

export interface RetryPolicy {
  /** retries after the first attempt */
  retries: Record<ReadKind, number>;
  /** the delay before a prefetch retry: uniform in [min, max] ms */
  prefetchDelayMs: { min: number; max: number };
}

/** 7.4's table */
export const NETWORK_RETRY_POLICY: RetryPolicy = {
  retries: { 'on-demand': 3, prefetch: 1 },
  prefetchDelayMs: { min: 100, max: 1000 },
};

/** One request per second, process-wide, for last on-demand retries (7.4). */
export class RateLimiter {
  private next = 0;

  constructor(private readonly intervalMs: number) {}

  /** Waits for this caller's slot (aborted by `signal`). */
  async take(signal?: AbortSignal): Promise<void> {
    const now = Date.now();
    const at = Math.max(now, this.next);
    this.next = at + this.intervalMs;
    if (at > now) await sleep(at - now, signal);
  }
}

export const lastRetryLimiter = new RateLimiter(1000);

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** `inner` with the retry policy applied to its reads; size() and close() pass through. */
export function withRetry(inner: BlobBackend, opts: { policy?: RetryPolicy; limiter?: RateLimiter; log?: Log } = {}): BlobBackend {
  return new RetryBackend(inner, opts.policy ?? NETWORK_RETRY_POLICY, opts.limiter ?? lastRetryLimiter, opts.log);
}

export class RetryBackend extends BackendDecorator {
  /** retries made (attempts after a first one), for tests and diagnostics */
  retried = 0;

  constructor(
    inner: BlobBackend,
    private readonly policy: RetryPolicy,
    private readonly limiter: RateLimiter,
    private readonly log?: Log,
  ) {
    super(inner);
  }


  async read(blobId: string, offset: number, length: number, signal?: AbortSignal, into?: Buffer, kind: ReadKind = 'on-demand'): Promise<Buffer> {
    let retries = this.policy.retries[kind];
    let last: unknown;
    /** the next attempt goes around the proxy after the limiter (a Dragonfly 429, 7.4) */
    let rateLimited = false;
    for (let attempt = 0; attempt <= retries; attempt++) {
      const lastOnDemand = kind === 'on-demand' && attempt > 0 && attempt === retries;
      if (attempt > 0) {
        this.retried++;
        if (kind === 'prefetch') {
          const { min, max } = this.policy.prefetchDelayMs;
          await sleep(min + Math.random() * (max - min), signal);
        } else if (lastOnDemand || rateLimited) {
          await this.limiter.take(signal);
        }
      }
      try {
        // `into` is offered again: the backends under this decorator stop writing into it once a read has failed
        // (registry: body.ts copies synchronously; see BlobBackend.read)
        return await this.inner.read(blobId, offset, length, signal, into, kind, lastOnDemand || rateLimited);
      } catch (err) {
        if (signal?.aborted) throw err;
        last = err;
        const code = errorCode(err);
        rateLimited = false;
        if (code === 'ND_ERR_PROXY_FORBIDDEN' || (code === 'ND_ERR_PROXY_RATE_LIMITED' && kind === 'prefetch')) {
          retries = attempt;
        } else if (code === 'ND_ERR_PROXY_RATE_LIMITED') {
          rateLimited = true;
        }
        if (attempt < retries) this.log?.('debug', `${this.kind}: blob ${blobId} [${offset}, +${length}) attempt ${attempt + 1} failed: ${(err as Error).message}; retrying`);
      }
    }
    const e = last as Error;
    // the backend's own error already names blob and range: its cause is the news
    const detail = e instanceof BackendError && e.cause instanceof Error ? e.cause.message : e.message;
    const message = `${this.kind}: reading blob ${blobId} [${offset}, +${length}) failed after ${retries + 1} attempt${retries ? 's' : ''}: ${detail}`;
    this.log?.('error', message);
    throw new BackendError(message, blobId, { cause: last, code: (last as BackendError).code });
  }

}
