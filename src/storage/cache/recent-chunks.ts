// Freshly decoded chunks kept in memory, so that the next READs of a chunk (the kernel asks a 1 MiB chunk in pieces, and
// the small files packed in one chunk each ask it again) need neither the cache file nor a decode. One budget for the
// whole process, oldest chunk out first whichever blob it belongs to: a budget per blob made every image attached to a
// shared daemon cost up to that much more memory (issue 9, bench/shared-rss.ts).

/** The chunks of one blob cache, within the budget of the `RecentChunks` that made it. */
export class RecentList {
  private readonly chunks = new Map<number, { buf: Buffer; seq: number }>();

  constructor(
    private readonly owner: RecentChunks,
    /** called once for every chunk that leaves the list (the arena's hold on its memory is released) */
    readonly released: (buf: Buffer) => void,
  ) {}

  has(key: number): boolean {
    return this.chunks.has(key);
  }

  get(key: number): Buffer | undefined {
    const e = this.chunks.get(key);
    if (e) this.owner.used();
    return e?.buf;
  }

  /** Keeps `buf` as chunk `key` (replacing what was there), then evicts the process's oldest chunks beyond the budget. */
  put(key: number, buf: Buffer): void {
    this.delete(key);
    this.chunks.set(key, { buf, seq: this.owner.nextSeq() });
    this.owner.bytes += footprint(buf);
    this.owner.trim();
    this.owner.used();
  }

  delete(key: number): void {
    const e = this.chunks.get(key);
    if (!e) return;
    this.chunks.delete(key);
    this.owner.bytes -= footprint(e.buf);
    this.released(e.buf);
  }

  /** Drops every chunk. */
  clear(): void {
    for (const k of [...this.chunks.keys()]) this.delete(k);
  }

  /** Drops every chunk and leaves the budget (the blob cache closes). */
  close(): void {
    this.clear();
    this.owner.lists.delete(this);
  }

  /** Sequence number of the oldest chunk, or Infinity when empty. */
  oldest(): number {
    for (const e of this.chunks.values()) return e.seq;
    return Infinity;
  }

  dropOldest(): void {
    for (const k of this.chunks.keys()) return this.delete(k);
  }
}

/**
 * Recent chunks nobody has asked for in this long are let go: they are a cache for the reads in progress, and kept
 * for good they held the daemon's memory at its high-water mark after a read ended (issue 9, BENCHMARKS.md run V).
 */
const IDLE_MS = 5000;

/** The process-wide budget; `limit` bytes of chunks (each counted at least 1 KiB). */
export class RecentChunks {
  bytes = 0;
  readonly lists = new Set<RecentList>();
  private seq = 0;
  /** a chunk was kept or read since the timer last looked */
  private touched = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly limit: number,
    private readonly idleMs = IDLE_MS,
  ) {}

  /**
   * A chunk was kept or read: the lists live on until a whole `idleMs` passes without either (they go between one and
   * two `idleMs` after the last use). A flag, not a clock read, since it is called for every chunk a READ takes.
   */
  used(): void {
    this.touched = true;
    if (this.timer) return;
    const check = () => {
      if (this.touched) {
        this.touched = false;
        this.timer = setTimeout(check, this.idleMs).unref();
        return;
      }
      this.timer = undefined;
      this.clear();
    };
    this.timer = setTimeout(check, this.idleMs).unref();
  }

  /** Lets every chunk of every list go. */
  clear(): void {
    for (const l of this.lists) l.clear();
  }

  list(released: (buf: Buffer) => void): RecentList {
    const l = new RecentList(this, released);
    this.lists.add(l);
    return l;
  }

  /** Whether a chunk of `size` bytes is worth keeping at all (one chunk may not take more than a quarter of the budget). */
  admits(size: number): boolean {
    return size <= this.limit / 4;
  }

  nextSeq(): number {
    return this.seq++;
  }

  /** Evicts the oldest chunks of the whole process until within budget (a scan of the lists: a few per image). */
  trim(): void {
    while (this.bytes > this.limit) {
      let victim: RecentList | undefined;
      let min = Infinity;
      for (const l of this.lists) {
        const s = l.oldest();
        if (s < min) {
          min = s;
          victim = l;
        }
      }
      if (!victim) return;
      victim.dropOldest();
    }
  }
}

/** Small chunks still cost their Buffer and map entry: each counts as at least 1 KiB. */
export const footprint = (b: Buffer): number => Math.max(b.length, 1024);
