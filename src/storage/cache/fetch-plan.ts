// Fetch planning: which backend reads serve a set of missing chunks. Adjacent chunks (in blob order) merge into one
// read, extended with the chunks that follow them, bounded in bytes (amplify_io, at least MIN_AMPLIFY) and in chunks
// (MAX_FETCH_CHUNKS). Linear in the chunks planned: each is looked at once (issue 8 item 2: a quadratic planner stalled
// the daemon for 104 s on a layer of 200,000 tiny files).
import type { ChunkInfo } from '../../image-model.js';

/** Never merge a fetch beyond this, whatever amplify_io says: 128 KiB is the reference's floor. */
export const MIN_AMPLIFY = 128 * 1024;
/**
 * Most chunks in one backend fetch. amplify_io bounds a fetch in bytes, but a layer of tiny files packs ~100,000
 * chunks into 1 MiB (issue 8: one `cat` planned, decoded and wrote all of them while the daemon stood still).
 * 1024 chunks of the usual sizes already exceed any amplify_io.
 */
export const MAX_FETCH_CHUNKS = 1024;
/**
 * Readahead's chunks (a sequential reader's next window) merge into backend reads of up to this many compressed bytes,
 * whatever amplify_io says: they are about to be read, and each request costs a network backend far more than its bytes.
 * Not more than an arena slot: 4 MiB reads halved the GETs again, but their buffers (outside the arena) left the daemon
 * 50 MiB larger after a cold read than before it, against 22 MiB (BENCHMARKS.md run Z).
 */
export const READAHEAD_MERGE = 1024 * 1024;

/** One backend read: contiguous chunks; the first `asked` are what readers wait for, the rest its extension. */
export interface PlannedFetch {
  group: ChunkInfo[];
  asked: number;
}

/** What the planner needs to know about the blob and its cache. */
export interface PlanContext {
  /** the blob's index in the image: `along` chunks of other blobs are ignored */
  blobIndex: number;
  /** amplify_io in bytes (raised to MIN_AMPLIFY): how far chunks asked for together merge into one read */
  amplifyIo: number;
  /**
   * How far past the chunks asked for a read may reach into the chunks that follow in the blob (bytes from the read's
   * start; amplify_io when absent). The blob cache grows it only while reads walk the blob in order (ExtensionWindow).
   */
  extendLimit?: number;
  /** the key identifying a chunk in the cache (chunk-map index, or cache-file offset without a map) */
  keyOf(chunk: ChunkInfo): number;
  /** a fetch for this chunk is in flight already: it is not planned again */
  inFlight(key: number): boolean;
  /** the chunk needs no fetch (in flight, in memory or ready): extensions stop before it */
  available(key: number): boolean;
  /** the blob's chunk by index, in blob order, when known (v6 CI table) */
  neighbours?: (index: number) => ChunkInfo | undefined;
}

/**
 * Plans merged fetches for `missing`. `along` lists chunks the caller expects to need next (the rest of a v5 file,
 * whose blob has no chunk table): they extend fetches like neighbours do.
 */
export function planFetches(ctx: PlanContext, missing: ChunkInfo[], along: ChunkInfo[] = []): PlannedFetch[] {
  const limit = Math.max(ctx.amplifyIo, MIN_AMPLIFY);
  const byOffset = [...missing].sort((a, b) => a.compressedOffset - b.compressedOffset);
  // the caller's following chunks, by where they start in the blob (that is what "adjacent" means)
  const extra = new Map<number, ChunkInfo>();
  for (const c of along) if (c.blobIndex === ctx.blobIndex) extra.set(c.compressedOffset, c);

  const plans: PlannedFetch[] = [];
  /** every key planned so far, by any group or its extension */
  const planned = new Set<number>();
  let group: ChunkInfo[] = [];
  const flush = () => {
    if (group.length === 0) return;
    const asked = group.length;
    extend(ctx, group, planned, Math.min(limit, ctx.extendLimit ?? limit), extra);
    plans.push({ group, asked });
    group = [];
  };
  for (const c of byOffset) {
    const key = ctx.keyOf(c);
    // planned already: by an earlier group's extension, or twice in `missing` (deduplicated chunks)
    if (planned.has(key) || ctx.inFlight(key)) continue;
    const first = group[0];
    const last = group[group.length - 1];
    if (
      first && last &&
      (c.compressedOffset !== last.compressedOffset + last.compressedSize ||
        c.compressedOffset + c.compressedSize - first.compressedOffset > limit ||
        group.length >= MAX_FETCH_CHUNKS)
    ) {
      flush();
    }
    group.push(c);
    planned.add(key);
  }
  flush();
  return plans;
}

/**
 * Extends a contiguous group with the following chunks of the blob that need a fetch, up to `limit` bytes and
 * MAX_FETCH_CHUNKS chunks. `planned` holds the keys planned so far: a zero-length chunk is its own successor by offset.
 */
function extend(ctx: PlanContext, group: ChunkInfo[], planned: Set<number>, limit: number, extra: Map<number, ChunkInfo>): void {
  const start = group[0]!.compressedOffset;
  while (group.length < MAX_FETCH_CHUNKS) {
    const last = group[group.length - 1]!;
    const next = ctx.neighbours?.(last.index + 1) ?? extra.get(last.compressedOffset + last.compressedSize);
    if (!next || next.compressedOffset !== last.compressedOffset + last.compressedSize) return;
    if (next.compressedOffset + next.compressedSize - start > limit) return;
    const key = ctx.keyOf(next);
    if (planned.has(key) || ctx.available(key)) return;
    group.push(next);
    planned.add(key);
  }
}

/**
 * Extension that adapts to the access pattern (issue 11: merge only what is likely to be read). A blob read in order
 * (a tree copied or walked file by file in build order, which is blob order) gets its fetches extended by a window
 * that doubles with each fetch that starts where the last one ended, from MIN_AMPLIFY up to amplify_io; a fetch
 * elsewhere (a program's pages faulted in, a module here and there) closes the window, so it fetches what it asked for.
 * Sequential readers of one file do not depend on this: their readahead asks for the chunks ahead (rafs/fs.ts).
 */
export class ExtensionWindow {
  /** where the last fetch ended in the blob (compressed offset), -1 before the first */
  private end = -1;
  private window = 0;

  /** The extension allowed to a fetch starting at `start`, given amplify_io. */
  next(start: number, amplifyIo: number): number {
    this.window = start === this.end ? Math.min(Math.max(this.window * 2, MIN_AMPLIFY), Math.max(amplifyIo, MIN_AMPLIFY)) : 0;
    return this.window;
  }

  /** Where the fetches just planned ended. */
  fetched(end: number): void {
    this.end = end;
  }
}
