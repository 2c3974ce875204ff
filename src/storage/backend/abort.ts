// Giving up on a promise that cannot itself be cancelled (a pread, a request handed to a pool) when a read's signal
// aborts: the caller moves on with the signal's reason, and whatever the promise does later is ignored.

/** `p`, unless `signal` aborts first: then its reason. */
export function untilAborted<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
