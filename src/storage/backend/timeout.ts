// The per-read timeout as a decorator around a backend (issue 11: a timeout is a wrapper, not a cache option). The
// timeout is whatever the configuration says: there is no hidden fixed limit anywhere below this.
import type { BlobBackend, ReadKind } from './blob-backend.js';
import { BackendError } from './errors.js';
import { BackendDecorator } from './decorator.js';

/** The longest a Node.js timer can wait (ms). */
const TIMER_MAX_MS = 2 ** 31 - 1;

/** Bounds every read of `inner` by `timeoutSec` seconds (0 = none: then `inner` itself is returned). */
export function withTimeout(inner: BlobBackend, timeoutSec: number): BlobBackend {
  return timeoutSec > 0 ? new TimeoutBackend(inner, timeoutSec) : inner;
}

class TimeoutBackend extends BackendDecorator {
  private readonly ms: number;

  constructor(
    inner: BlobBackend,
    private readonly timeoutSec: number,
  ) {
    super(inner);
    // configuration clamps durations already (config MAX_TIMER_SEC); a longer timer would fire after 1 ms
    this.ms = Math.min(timeoutSec * 1000, TIMER_MAX_MS);
  }


  async read(blobId: string, offset: number, length: number, signal?: AbortSignal, into?: Buffer, kind?: ReadKind, bypassProxy?: boolean): Promise<Buffer> {
    const ctl = new AbortController();
    const onAbort = () => ctl.abort(signal!.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        ctl.abort();
        reject(new BackendError(`${this.kind}: reading blob ${blobId} [${offset}, +${length}) timed out after ${this.timeoutSec} s`, blobId));
      }, this.ms);
    });
    try {
      return await Promise.race([this.inner.read(blobId, offset, length, ctl.signal, into, kind, bypassProxy), expired]);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

}
