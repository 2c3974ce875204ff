// The O_DIRECT write queue of one cache file. Decoded chunks live in page-aligned memory and go into the data file
// with O_DIRECT where the file allows it: a buffered write copies every byte into fresh page-cache pages and has them
// written back later, which measured as a quarter of the daemon's CPU on a cold read (BENCHMARKS.md). Readers of the
// cache are unaffected: the kernel keeps direct writes and the page cache coherent.
import { native } from '../../native/index.js';
import type { Log } from '../../log.js';
import { pwriteAll } from './pwrite-all.js';

/** O_DIRECT needs memory, file offset and length aligned to the device's logical block; 4 KiB covers all. */
export const DIRECT_ALIGN = 4096;
/** Most bytes of adjacent chunks in one direct write. */
const DIRECT_BATCH_BYTES = 8 * 1024 * 1024;
/**
 * Most bytes waiting for a direct write (per blob). Beyond it chunks go through the page cache, whose
 * dirty-page throttling then slows the fetches down instead of letting memory grow behind a slow disk.
 */
const DIRECT_QUEUE_BYTES = 32 * 1024 * 1024;

export const roundUp = (n: number) => Math.ceil(n / DIRECT_ALIGN) * DIRECT_ALIGN;

/** Writes of one cache file: buffered through `dataFd`, or direct through `directFd` (-1: none) when aligned. */
export class CacheWriteQueue {
  /** whether chunks are written through directFd (false again once the file refused an aligned write) */
  private directOk: boolean;
  /** aligned blocks waiting for the direct writer, in arrival order */
  private queue: { offset: number; block: Buffer; done: (err?: Error) => void }[] = [];
  private queued = 0;
  private busy = false;
  /** at shutdown nothing waits for blob reads any more: direct writes leave the idle I/O class */
  closing = false;

  constructor(
    private readonly dataFd: number,
    private readonly directFd: number,
    private readonly dataPath: string,
    private readonly log?: Log,
  ) {
    this.directOk = directFd >= 0;
  }

  /** Whether a direct write of `bytes` more would be taken now (direct I/O works and the queue has room). */
  acceptsDirect(bytes: number): boolean {
    return this.directOk && this.queued + bytes <= DIRECT_QUEUE_BYTES;
  }

  /** Whether direct writes are possible at all (chunk memory is made page-aligned for them). */
  get directPossible(): boolean {
    return this.directFd >= 0;
  }

  writeBuffered(offset: number, data: Buffer): Promise<void> {
    return pwriteAll(this.dataFd, data, offset);
  }

  /** Queues an aligned block for the direct writer; resolves once it is in the file. */
  writeDirect(offset: number, block: Buffer): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queued += block.length;
      this.queue.push({ offset, block, done: (err) => (err ? reject(err) : resolve()) });
      if (!this.busy) void this.drain();
    });
  }

  /**
   * One direct write at a time per blob: it waits for the disk, and writes into a file's holes take its inode
   * lock exclusively anyway, so more would only occupy pool threads that decodes and replies need. Adjacent
   * chunks go out as one write.
   */
  private async drain(): Promise<void> {
    this.busy = true;
    try {
      while (this.queue.length > 0) {
        const all = this.queue.sort((a, b) => a.offset - b.offset);
        let end = all[0]!.offset + all[0]!.block.length;
        let n = 1;
        while (n < all.length && all[n]!.offset === end && end + all[n]!.block.length - all[0]!.offset <= DIRECT_BATCH_BYTES) {
          end += all[n]!.block.length;
          n++;
        }
        const run = all.slice(0, n);
        this.queue = all.slice(n);
        let failure: Error | undefined;
        try {
          // idle I/O priority lets blob reads go first; at shutdown nothing waits for those any more
          await native.pwritevAsync(this.directFd, run.map((w) => w.block), run[0]!.offset, !this.closing);
        } catch (err) {
          if ((err as { code?: string }).code === 'EINVAL' && this.directOk) {
            // this filesystem or device wants another alignment: the page cache takes the same bytes
            this.directOk = false;
            this.log?.('debug', `blob cache ${this.dataPath}: direct writes refused (${(err as Error).message}); writing through the page cache`);
          }
          failure = await Promise.all(run.map((w) => this.writeBuffered(w.offset, w.block))).then(() => undefined, (e: Error) => e);
        }
        for (const w of run) {
          this.queued -= w.block.length;
          w.done(failure);
        }
      }
    } finally {
      this.busy = false;
    }
  }
}
