// Durability batching for one cache file: written chunks become durable with one fdatasync, then their chunk-map bits
// are set. An fdatasync in the middle of a cold read took a fifth of its throughput (it flushes the disk's write cache;
// BENCHMARKS.md, run G), while a chunk waiting for its bit is served from the data file all the same: the delay only
// decides how much a successor of a crashed daemon fetches again.
import fs from 'node:fs';
import { promisify } from 'node:util';

const fdatasync = promisify(fs.fdatasync);

/**
 * Written chunks become durable once no chunk has been written for DURABLE_IDLE_MS, and at least every DURABLE_MAX_MS
 * during a long stream of fetches. Shutdown and flush() do not wait for it.
 */
const DURABLE_IDLE_MS = 100;
const DURABLE_MAX_MS = 5000;

export interface DurabilityTarget {
  /** the cache file's descriptor, synced before any bit is set */
  fd: number;
  /** the batch is on the disk: mark it ready (chunk map, or memory) */
  durable(keys: number[]): void;
  /** fdatasync failed: the batch is not durable (its chunks stay unready and are fetched again) */
  failed(keys: number[], err: Error): void;
}

export class DurabilityBatcher {
  /** chunks whose data is written but not yet durable: readable from the data file already */
  private readonly written = new Set<number>();
  private queue: number[] = [];
  private running: Promise<void> | undefined;
  /** when the last chunk was written (performance.now()) */
  private lastWrite = 0;
  /** ends the wait early (flush, close) */
  private wake: (() => void) | undefined;
  /** flush() calls in progress: they want durability now */
  private hurry = 0;
  private closing = false;
  private closed = false;

  constructor(private readonly target: DurabilityTarget) {}

  /** Whether the chunk is written and waiting for its bit (it reads from the file already). */
  has(key: number): boolean {
    return this.written.has(key);
  }

  /** A chunk's data is in the file: it becomes durable with the next batch. */
  add(key: number): void {
    this.written.add(key);
    this.queue.push(key);
    this.lastWrite = performance.now();
    if (!this.running) this.running = this.drain();
  }

  /** Makes everything written so far durable now; `settle` waits for writes still arriving (in-flight fetches). */
  async flush(settle: () => Promise<boolean>): Promise<void> {
    this.hurry++;
    try {
      for (;;) {
        const more = await settle();
        if (!more && !this.running) return;
        this.wake?.();
        await this.running;
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      this.hurry--;
    }
  }

  /** The file is closing: no more waiting, whatever is queued (and written until close()) becomes durable at once. */
  stopWaiting(): void {
    this.closing = true;
    this.wake?.();
  }

  /** Waits for the last batch to finish; no bit is set after this (the file descriptor may be closed then). */
  async close(): Promise<void> {
    this.stopWaiting();
    while (this.running) await this.running.catch(() => undefined);
    this.closed = true;
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.closed) {
        await this.untilQuiet();
        const batch = this.queue;
        this.queue = [];
        try {
          await fdatasync(this.target.fd);
        } catch (err) {
          // the data may not be on the disk: these chunks are not ready (a read fetches them again)
          for (const k of batch) this.written.delete(k);
          this.target.failed(batch, err as Error);
          continue;
        }
        if (this.closed) return;
        this.target.durable(batch);
        for (const k of batch) this.written.delete(k);
      }
    } finally {
      this.running = undefined;
    }
  }

  /** Resolves when the cache has been quiet for DURABLE_IDLE_MS, DURABLE_MAX_MS have passed, or someone hurries. */
  private async untilQuiet(): Promise<void> {
    const start = performance.now();
    for (;;) {
      if (this.closing || this.hurry > 0) return;
      const now = performance.now();
      const wait = Math.min(DURABLE_IDLE_MS - (now - this.lastWrite), DURABLE_MAX_MS - (now - start));
      if (wait <= 0) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }
}
