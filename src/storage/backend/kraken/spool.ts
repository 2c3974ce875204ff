// One blob's whole-blob download from a Kraken agent into a spool file (issue 11 scope 4; spec p2p-seeds.md 3: the
// agent serves `GET /namespace/<ns>/blobs/<digest>` whole, no Range). The body is written to the file in order;
// `written` only grows once a write has completed, so a read of [offset, end) is answered from the file as soon as
// `written >= end`, long before the blob has all arrived. The download fails as a whole (status, transport, stall,
// length or digest): every waiting read then fails with the reason, and the spool is retired (its file unlinked, its
// handle closed once the last read on it is done); the backend starts a new one for a later read.
import crypto from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { NetworkError, errorCode } from '../errors.js';
import type { HttpTransport } from '../http/client.js';

interface Waiter {
  end: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface SpoolOptions {
  /** the blob's URL on the agent server */
  url: URL;
  /** the spool file (created, truncated) */
  file: string;
  /** the sha256 (hex) the whole body must have */
  digest: string;
  http: HttpTransport;
  /** ms the agent may send nothing (before its answer, or between body bytes); 0 = none */
  stallMs: number;
  /** what to call the agent in messages: `the Kraken agent at http://host:port` */
  agentName: string;
  /** told of a failure before the waiting reads are, so that what it decides (the agent is down) applies to their retries */
  onFail?: (err: NetworkError, written: number) => void;
}

export type SpoolState = 'running' | 'done' | 'failed';

export class BlobSpool {
  state: SpoolState = 'running';
  /** bytes of the body in the file, from offset 0 */
  written = 0;
  /** the blob's size: Content-Length once the answer is in, or the body's length at its end */
  total: number | undefined;
  /** why the download failed (state 'failed') */
  error: NetworkError | undefined;
  private readonly waiters = new Set<Waiter>();
  /** size() callers: resolved once `total` is known */
  private readonly sizeWaiters = new Set<Waiter>();
  private readonly ctl = new AbortController();
  private fh: FileHandle | undefined;
  private readers = 0;
  private retired = false;
  private stall: NodeJS.Timeout | undefined;
  /** settles when the download has ended either way (close() waits for it) */
  readonly finished: Promise<void>;

  constructor(private readonly opts: SpoolOptions) {
    this.finished = this.run();
  }

  /** Waits until [0, end) is in the file; rejects when the download fails or ends before `end`, or on `signal`. */
  until(end: number, signal?: AbortSignal): Promise<void> {
    if (this.written >= end) return Promise.resolve();
    if (this.state === 'failed') return Promise.reject(this.error);
    if (this.state === 'done') return Promise.reject(this.beyondEnd(end));
    return this.wait(this.waiters, end, signal);
  }

  /** The blob's size, as soon as the agent has said it (Content-Length) or, without one, once the body has ended. */
  size(): Promise<number> {
    if (this.total !== undefined) return Promise.resolve(this.total);
    if (this.state === 'failed') return Promise.reject(this.error);
    return this.wait(this.sizeWaiters, 0).then(() => this.total!);
  }

  private wait(set: Set<Waiter>, end: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        set.delete(w);
        reject(signal!.reason);
      };
      const w: Waiter = {
        end,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      set.add(w);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Reads [offset, offset + length) from the file into `buf`; the caller has awaited `until(offset + length)`. The
   * bytes stay readable after the spool has been retired, as long as the read started before.
   */
  async read(offset: number, length: number, buf: Buffer): Promise<Buffer> {
    const fh = this.fh;
    if (!fh || this.retired) throw this.error ?? new NetworkError('the download was dropped', 'ND_ERR_CLOSED');
    this.readers++;
    try {
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) throw new NetworkError(`the spool file ended at ${offset + got} of ${offset + length}`, 'ND_ERR_RANGE');
        got += bytesRead;
      }
      return buf;
    } finally {
      this.readers--;
      if (this.retired && this.readers === 0) this.closeFile();
    }
  }

  /** Fails the download with `err` (close(): ND_ERR_CLOSED) and retires the spool. */
  abort(err: NetworkError): void {
    if (this.state === 'running') this.fail(err);
    else this.retire();
  }

  private beyondEnd(end: number): NetworkError {
    return new NetworkError(`the blob has ${this.total} bytes; bytes up to ${end} were asked for`, 'ND_ERR_RANGE');
  }

  private armStall(): void {
    clearTimeout(this.stall);
    if (this.opts.stallMs <= 0) return;
    this.stall = setTimeout(() => {
      const at = this.total === undefined && this.written === 0 ? 'before answering' : `after ${this.written} bytes`;
      this.ctl.abort(new NetworkError(`${this.opts.agentName} sent nothing for ${this.opts.stallMs / 1000} s ${at}`, 'ND_ERR_TIMEOUT'));
    }, this.opts.stallMs);
  }

  private async run(): Promise<void> {
    const { url, http } = this.opts;
    try {
      this.fh = await open(this.opts.file, 'w+', 0o600);
      if (this.retired) {
        // aborted while the file was being created
        await unlink(this.opts.file).catch(() => undefined);
        this.closeFile();
        return;
      }
      this.armStall();
      const res = await http.request({ method: 'GET', url, signal: this.ctl.signal });
      if (res.status !== 200) {
        const text = await res.text(512).catch(() => '');
        const why = res.status === 404 ? ' (the agent could not find the blob in its namespace)' : '';
        throw new NetworkError(`${this.opts.agentName} answered ${res.status}${why}${snippet(text)}`, 'ND_ERR_STATUS', { status: res.status });
      }
      const cl = res.header('content-length');
      if (cl !== undefined) {
        const n = Number(cl);
        if (!Number.isSafeInteger(n) || n < 0) throw new NetworkError(`${this.opts.agentName} sent an invalid Content-Length ${JSON.stringify(cl)}`, 'ND_ERR_RANGE');
        this.total = n;
        this.wake();
      }
      this.armStall();
      const hash = crypto.createHash('sha256');
      try {
        for await (const chunk of res.body) {
          const b = chunk as Buffer;
          if (this.total !== undefined && this.written + b.length > this.total) {
            res.abort();
            throw new NetworkError(`the body is longer than its Content-Length ${this.total}`, 'ND_ERR_RANGE');
          }
          hash.update(b);
          let put = 0;
          while (put < b.length) put += (await this.fh.write(b, put, b.length - put, this.written + put)).bytesWritten;
          this.written += b.length;
          this.armStall();
          this.wake();
        }
      } catch (err) {
        throw this.ctl.signal.aborted && errorCode(this.ctl.signal.reason) ? this.ctl.signal.reason : res.mapBodyError(err);
      }
      if (this.total !== undefined && this.written !== this.total) {
        throw new NetworkError(`short body: ${this.written} of ${this.total} bytes`, 'ND_ERR_RANGE');
      }
      const got = hash.digest('hex');
      if (got !== this.opts.digest) {
        throw new NetworkError(`the blob's ${this.written} bytes have sha256 ${got}, not the digest asked for`, 'ND_ERR_RANGE');
      }
      this.total = this.written;
      this.state = 'done';
      clearTimeout(this.stall);
      this.wake();
    } catch (err) {
      const reason = this.ctl.signal.aborted && errorCode(this.ctl.signal.reason) ? this.ctl.signal.reason : err;
      this.fail(errorCode(reason) ? (reason as NetworkError) : new NetworkError(`spooling failed: ${(reason as Error).message}`, 'ND_ERR_SOCKET', { cause: reason }));
    }
  }

  /** Answers every waiter whose bytes are in; at the end, rejects those asking beyond it. */
  private wake(): void {
    for (const w of this.waiters) {
      if (w.end <= this.written) {
        this.waiters.delete(w);
        w.resolve();
      } else if (this.state === 'done') {
        this.waiters.delete(w);
        w.reject(this.beyondEnd(w.end));
      }
    }
    if (this.total !== undefined) {
      for (const w of this.sizeWaiters) w.resolve();
      this.sizeWaiters.clear();
    }
  }

  private fail(err: NetworkError): void {
    if (this.state === 'failed') return;
    this.state = 'failed';
    this.error = err;
    clearTimeout(this.stall);
    if (!this.ctl.signal.aborted) this.ctl.abort(err);
    this.opts.onFail?.(err, this.written);
    for (const w of [...this.waiters, ...this.sizeWaiters]) w.reject(err);
    this.waiters.clear();
    this.sizeWaiters.clear();
    this.retire();
  }

  /** No new reads: the file goes now, its handle once the reads on it are done. */
  private retire(): void {
    if (this.retired) return;
    this.retired = true;
    unlink(this.opts.file).catch(() => undefined);
    if (this.readers === 0) this.closeFile();
  }

  private closeFile(): void {
    const fh = this.fh;
    this.fh = undefined;
    fh?.close().catch(() => undefined);
  }
}

function snippet(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t ? `: ${t.slice(0, 200)}` : '';
}
