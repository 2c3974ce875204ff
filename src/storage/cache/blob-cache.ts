// The persistent cache of one data blob (its files: cache-file.ts). Read path: chunk map -> cache file hit -> else one
// merged backend fetch (fetch-plan.ts) -> decompress -> validate (chunk-check.ts) -> write data (write-queue.ts) ->
// durable (durability.ts) -> mark ready. A chunk wanted by many readers at once is fetched once: they share its
// in-flight promise; freshly decoded chunks stay in memory for a while (recent-chunks.ts).
import { decompress, decompressAsync } from '../../compress.js';
import { native } from '../../native/index.js';
import { ChunkFlag, type BlobInfo, type ChunkInfo, type Digester } from '../../image-model.js';
import type { BlobBackend } from '../backend/blob-backend.js';
import { BackendError } from '../backend/errors.js';
import { CacheFile } from './cache-file.js';
import type { ChunkMap } from './chunk-map.js';
import type { ChunkArena, ChunkLease } from './chunk-arena.js';
import { chunkMismatch } from './chunk-check.js';
import { DurabilityBatcher } from './durability.js';
import { ExtensionWindow, planFetches, READAHEAD_MERGE } from './fetch-plan.js';
import { RecentChunks, type RecentList } from './recent-chunks.js';
import { CacheWriteQueue, DIRECT_ALIGN, roundUp } from './write-queue.js';
import type { Log } from '../../log.js';

/**
 * Decoded chunks kept in memory after their fetch, so that a reader arriving just after readahead
 * fetched its chunk is served without reading the cache file back (bytes, per blob).
 */
const RECENT_BYTES = 16 * 1024 * 1024;
/**
 * Chunks smaller than this live in ordinary (pooled) Buffers and go to the cache file through the page cache:
 * a page-aligned block or a 1 MiB arena slot for a chunk of a few bytes held 4 KiB to 1 MiB per chunk (issue 8).
 */
const SMALL_CHUNK = 64 * 1024;

/** The ArrayBuffers chunkBuffer took from native.alignedBuffer: page-aligned, zero past the chunk to 4 KiB. */
const alignedMemory = new WeakSet<ArrayBufferLike>();
/**
 * Chunks up to this size decode on the main thread: handing one to the libuv pool costs the main thread ~20 us (work
 * item, promise, completion), a synchronous decode of a few KiB less, and a fetch of 1024 tiny chunks queued them all
 * before the first one's reader got its reply (issue 8; BENCHMARKS.md, "Run N: the first read").
 */
const INLINE_DECODE = 4096;
/** After a cache write failed (ENOSPC, EIO), no chunk is written for this long; then one write tries again. */
const WRITE_RETRY_MS = 10_000;
/** Damaged cached chunks named one by one in the log per blob; further ones are only counted. */
const DAMAGE_REPORTS = 8;

/**
 * How one reader wants its chunks fetched and checked: these come with each read, because a blob cache is shared by
 * every mounted image that has the blob (storage/share.ts), each with its own backend and configuration.
 */
export interface FetchOptions {
  backend: BlobBackend;
  /** rafs.batch_size / amplify_io: how far a fetch may be extended with neighbouring chunks */
  amplifyIo: number;
  /** verify chunk digests of fetched data (rafs.validate / digest_validate) */
  validateFetch: boolean;
  /** verify chunk digests of fetched data and when reading from the cache (cache.validate) */
  validateCache: boolean;
}

/** What belongs to the cache files of a blob, the same for every image that reads it. */
export interface BlobCacheOptions {
  workDir: string;
  /** the image's digester, for chunk digests */
  digester: Digester;
  /** recycled memory for decoded chunks (chunk-arena.ts); without it every chunk is a new Buffer */
  arena?: ChunkArena;
  /** bytes of freshly decoded chunks kept in memory by this cache alone (default RECENT_BYTES), when no `recent` is given */
  recentBytes?: number;
  /** the process-wide budget of freshly decoded chunks (share.ts): one for every blob cache, instead of one each */
  recent?: RecentChunks;
  /**
   * cache.compressed: keep chunks compressed in `<blob_id>.blob.raw`. A cold read then writes the blob's bytes
   * instead of three or more times as many; every cache hit pays a decode.
   */
  compressed?: boolean;
  log?: Log;
}

/** One piece of one chunk a reader wants: bytes [start, end) of the uncompressed chunk. */
export interface ChunkSlice {
  chunk: ChunkInfo;
  start: number;
  end: number;
}

export interface BlobCacheStats {
  /** read requests that reached this cache (one per blob I/O vector: the blobcache metrics' `total`) */
  reads: number;
  backendReads: number;
  backendBytes: number;
  cacheHits: number;
  chunksFetched: number;
  /** cached chunks found unusable (short, unreadable, failing validation or decoding) and fetched again */
  cacheRepairs: number;
  /** failed writes or fdatasyncs of the cache files */
  cacheWriteErrors: number;
  /** fetched chunks not written to the cache because writes were failing */
  cacheWritesSkipped: number;
}

/** The zeroed counters of one blob cache. */
export function emptyCacheStats(): BlobCacheStats {
  return { reads: 0, backendReads: 0, backendBytes: 0, cacheHits: 0, chunksFetched: 0, cacheRepairs: 0, cacheWriteErrors: 0, cacheWritesSkipped: 0 };
}

export class BlobCache {
  readonly dataPath: string;
  readonly mapPath: string;
  private readonly file: CacheFile;
  /** the data file holds compressed chunks at their compressed offsets (cache.compressed) */
  private readonly raw: boolean;
  private readonly writes: CacheWriteQueue;
  private readonly durability: DurabilityBatcher;
  /** persistent when the blob declares its chunk count, else an in-memory set (old v5 images) */
  private readonly map: ChunkMap | undefined;
  private readonly memoryReady = new Set<number>();
  private readonly inflight = new Map<number, Promise<Buffer>>();
  /** ready chunks whose cached bytes proved unusable: their refetch overwrites them */
  private readonly damaged = new Set<number>();
  private readonly recent: RecentList;
  private readonly recentBudget: RecentChunks;
  private readonly extension = new ExtensionWindow();
  readonly stats: BlobCacheStats = emptyCacheStats();
  /** while writes fail: no chunk is written before this time (performance.now()) */
  private writesPausedUntil = 0;
  /** the failure that paused writes (its errno code), logged once until writes succeed again */
  private writeFailure: string | undefined;
  /** set by close(): no new chunk is written from then on */
  private closing = false;
  /** chunk writes in progress; close() waits for them so that no write lands on a closed (reused) fd */
  private readonly persisting = new Set<Promise<void>>();

  /**
   * @param neighbours chunks of this blob by index, in blob order, when known (v6 CI table): used to
   *   extend fetches with the following not-ready chunks.
   */
  constructor(
    readonly blob: BlobInfo,
    private readonly opts: BlobCacheOptions,
    private readonly neighbours?: (index: number) => ChunkInfo | undefined,
  ) {
    this.recentBudget = opts.recent ?? new RecentChunks(opts.recentBytes ?? RECENT_BYTES);
    this.recent = this.recentBudget.list((b) => opts.arena?.release(b));
    this.raw = opts.compressed ?? false;
    this.file = new CacheFile(blob, { workDir: opts.workDir, compressed: this.raw, log: opts.log, onMapError: () => this.stats.cacheWriteErrors++ });
    this.dataPath = this.file.dataPath;
    this.mapPath = this.file.mapPath;
    this.map = this.file.map;
    this.writes = new CacheWriteQueue(this.file.dataFd, this.file.directFd, this.dataPath, opts.log);
    this.durability = new DurabilityBatcher({
      fd: this.file.dataFd,
      durable: (keys) => {
        try {
          if (this.map) this.map.markReady(keys);
          else for (const k of keys) this.memoryReady.add(k);
        } catch (err) {
          // the data is durable and the bits are set in memory; only a successor misses them
          this.writeFailed(err as Error);
        }
      },
      failed: (_keys, err) => this.writeFailed(err),
    });
  }

  /** Chunks marked ready in the chunk map (or in memory without one): the blobcache metrics' `entries_count`. */
  get readyChunks(): number {
    return this.map ? this.map.ready : this.memoryReady.size;
  }

  /** Files this cache owns, as reported in blobcache metrics (`underlying_files`). */
  underlyingFiles(): string[] {
    return this.file.underlyingFiles();
  }

  /**
   * What identifies a chunk in the readiness and in-flight sets: its index when the blob declares its
   * chunks (chunk map), else its position in the cache file. Old v5 images number no chunks (every
   * chunk record says index 0), so an index would make all their chunks one.
   */
  private key(chunk: ChunkInfo): number {
    return this.map ? chunk.index : chunk.uncompressedOffset;
  }

  /** `key` is what `key(chunk)` returns: a chunk index when the blob has a chunk map. */
  isReady(key: number): boolean {
    if (this.durability.has(key)) return true;
    if (this.map) return key < this.map.chunkCount && this.map.isReady(key);
    return this.memoryReady.has(key);
  }

  /**
   * Returns the requested bytes of each slice, in order. `along` lists chunks the caller expects to need
   * next (the rest of a v5 file); not-ready ones may be fetched in the same backend read. Views of recycled
   * chunk memory are kept in `lease` (required when the cache has an arena) until the caller releases it.
   */
  async read(f: FetchOptions, slices: ChunkSlice[], along: ChunkInfo[] = [], lease?: ChunkLease): Promise<Buffer[]> {
    this.stats.reads++;
    const missing: ChunkInfo[] = [];
    const seen = new Set<number>();
    for (const s of slices) {
      const i = this.key(s.chunk);
      if (seen.has(i) || this.available(i)) continue;
      seen.add(i);
      missing.push(s.chunk);
    }
    if (missing.length > 0) this.startFetch(f, missing, along);
    return Promise.all(slices.map((s) => this.readSlice(f, s, lease)));
  }

  /**
   * Readahead, without waiting: chunks neither ready nor in flight are fetched; ready ones are loaded from the cache file
   * into memory, so that a sequential reader's next READs find them there instead of each waiting for its own pread
   * (a restart on a filled cache read 371 MiB/s against the reference's 1,556, BENCHMARKS.md run S).
   */
  prefetch(f: FetchOptions, chunks: ChunkInfo[]): void {
    const missing: ChunkInfo[] = [];
    for (const c of chunks) {
      const key = this.key(c);
      if (this.inflight.has(key) || this.recent.has(key)) continue;
      if (!this.readyNow(key)) missing.push(c);
      else if (this.recentBudget.admits(c.uncompressedSize) && !this.file.beyondCut(c, key)) {
        void this.loadCached(f, c, false);
      }
    }
    if (missing.length > 0) this.startFetch(f, missing, [], READAHEAD_MERGE);
  }

  /**
   * Whether a read of the chunk needs no fetch: in flight, among the recent chunks (also those a failing cache disk
   * could not keep: refetching them is what multiplied backend traffic on a full disk, issue 8), or ready.
   */
  private available(key: number): boolean {
    return this.inflight.has(key) || this.recent.has(key) || this.readyNow(key);
  }

  private readyNow(index: number): boolean {
    if (this.isReady(index)) return true;
    // another daemon sharing this cache (hot upgrade) may have fetched it meanwhile
    return this.map !== undefined && index < this.map.chunkCount && this.map.refresh(index);
  }

  private async readSlice(f: FetchOptions, s: ChunkSlice, lease: ChunkLease | undefined): Promise<Buffer> {
    const { chunk, start, end } = s;
    const key = this.key(chunk);
    const pending = this.inflight.get(key);
    // The view is kept in the lease in the same step as it is taken. A waiting reader resumes right after the
    // decode, before the fetch lets go of the memory (fetchGroup), so the memory is still held then.
    if (pending) return this.keep(lease, (await pending).subarray(start, end));
    const held = this.recent.get(key);
    if (held) {
      this.stats.cacheHits++;
      return this.keep(lease, held.subarray(start, end));
    }
    if (this.raw) {
      if (!this.isReady(key)) throw this.unavailable(chunk);
      return this.keep(lease, (await this.loadCached(f, chunk, true)).subarray(start, end));
    }
    // only reachable if a fetch failed between planning and reading: never serve the sparse zeros
    if (!this.isReady(key)) throw this.unavailable(chunk);
    let why: string | undefined;
    // Cache hits are read into arena memory, held by the READ's lease until its reply is written: a fresh Buffer per
    // hit is external memory to V8, and four readers of a warm cache made it run a major collection every 60 ms, each
    // a pause of up to 17 ms for every API request (BENCHMARKS.md, run V)
    const whole = f.validateCache;
    const into = this.opts.arena?.take(whole ? chunk.uncompressedSize : end - start);
    try {
      if (whole) {
        const data = await this.readCached(chunk, chunk.uncompressedOffset, chunk.uncompressedSize, into);
        why = this.mismatch(chunk, data);
        if (why === undefined) {
          this.stats.cacheHits++;
          return this.keep(lease, data.subarray(start, end));
        }
      } else {
        const part = await this.readCached(chunk, chunk.uncompressedOffset + start, end - start, into);
        this.stats.cacheHits++;
        return into ? this.keep(lease, part) : part;
      }
    } catch (err) {
      // cut short or unreadable under us: the backend still has the chunk
      why = (err as Error).message;
    } finally {
      // the lease took its own hold (or a copy) of what is handed on
      if (into) this.opts.arena!.release(into);
    }
    return this.keep(lease, (await this.repair(f, chunk, why)).subarray(start, end));
  }

  /** A ready chunk whose cached bytes proved unusable: fetched again (never served from the cache) and rewritten. */
  private repair(f: FetchOptions, chunk: ChunkInfo, why: string, load?: Promise<Buffer>): Promise<Buffer> {
    const key = this.key(chunk);
    this.stats.cacheRepairs++;
    if (this.stats.cacheRepairs <= DAMAGE_REPORTS) {
      const more = this.stats.cacheRepairs === DAMAGE_REPORTS ? ' (further damaged chunks of this blob are only counted)' : '';
      this.opts.log?.('warn', `blob cache ${this.dataPath}: chunk ${chunk.index} unusable (${why}); fetching it again${more}`);
    }
    this.damaged.add(key);
    // `load` is the raw-mode decode that found the damage, in flight under the chunk's key itself
    const pending = this.inflight.get(key);
    if (!pending || pending === load) this.fetchGroup(f, [chunk]);
    return this.inflight.get(key)!;
  }

  private unavailable(chunk: ChunkInfo): BackendError {
    return new BackendError(`chunk ${chunk.index} of blob ${this.blob.blobId} is not available`, this.blob.blobId);
  }

  /**
   * A ready chunk loaded from the cache file once for all the readers that want it meanwhile: in flight under its key
   * like a fetch, and kept among the recent chunks after. In the compressed layout it is read compressed and decoded
   * (readers of that layout always come here); in the default layout it is read whole, ahead of a sequential reader
   * (prefetch). A chunk that cannot be read, does not decode or fails cache.validate is fetched again, never served.
   * `countHit`: a reader asked for it (readahead counts its hits when the readers take the chunk from memory).
   */
  private loadCached(f: FetchOptions, chunk: ChunkInfo, countHit: boolean): Promise<Buffer> {
    const key = this.key(chunk);
    // this load is in flight under the chunk's key; a repair must replace it rather than wait for it
    const self: { load?: Promise<Buffer> } = {};
    const p: Promise<Buffer> = (async () => {
      let plain: Buffer | undefined;
      try {
        plain = this.raw ? await this.decode(chunk, await this.readCached(chunk, chunk.compressedOffset, chunk.compressedSize)) : await this.readWhole(chunk);
        const bad = f.validateCache ? this.mismatch(chunk, plain) : undefined;
        if (bad !== undefined) throw new Error(`digest mismatch: ${bad}`);
        if (countHit) this.stats.cacheHits++;
        return plain;
      } catch (err) {
        if (plain) this.opts.arena?.release(plain);
        const fetched = await this.repair(f, chunk, (err as Error).message, self.load);
        // the fetch lets go of its memory once the chunk is written; this load hands it on with a hold of its own
        this.opts.arena?.hold(fetched);
        return fetched;
      }
    })();
    self.load = p;
    this.inflight.set(key, p);
    p.then(
      (plain) => {
        this.remember(key, plain);
        // after every reader waiting for the load has taken its own hold (they resume before any immediate)
        setImmediate(() => this.opts.arena?.release(plain));
      },
      () => undefined,
    ).finally(() => {
      if (this.inflight.get(key) === p) this.inflight.delete(key);
    });
    return p;
  }

  /** A default-layout chunk read whole from the cache file into arena memory held once by the caller (when it fits). */
  private async readWhole(chunk: ChunkInfo): Promise<Buffer> {
    const into = this.opts.arena?.take(chunk.uncompressedSize);
    try {
      return await this.readCached(chunk, chunk.uncompressedOffset, chunk.uncompressedSize, into);
    } catch (err) {
      if (into) this.opts.arena!.release(into);
      throw err;
    }
  }

  /** A view handed to a reader: kept in its lease, or copied out of recycled memory when there is none. */
  private keep(lease: ChunkLease | undefined, view: Buffer): Buffer {
    if (lease) return lease.keep(view);
    return this.opts.arena?.owns(view) ? Buffer.from(view) : view;
  }

  /** `length` bytes of the cache file at `offset`, which belong to `chunk`, read into `into` (exactly that long) when given. */
  private readCached(chunk: ChunkInfo, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    return this.file.read(chunk, this.key(chunk), offset, length, into);
  }

  /** Plans merged fetches for `missing` (fetch-plan.ts) and starts them, registering one in-flight promise per chunk. */
  private startFetch(f: FetchOptions, missing: ChunkInfo[], along: ChunkInfo[], mergeAtLeast = 0): void {
    let first = missing[0]!.compressedOffset;
    for (const c of missing) first = Math.min(first, c.compressedOffset);
    const plans = planFetches(
      {
        blobIndex: this.blob.index,
        amplifyIo: Math.max(f.amplifyIo, mergeAtLeast),
        extendLimit: this.extension.next(first, f.amplifyIo),
        keyOf: (c) => this.key(c),
        inFlight: (k) => this.inflight.has(k),
        // (not re-reading the chunk map for each neighbour, as `available` does for the chunks asked for)
        available: (k) => this.inflight.has(k) || this.recent.has(k) || this.isReady(k),
        neighbours: this.neighbours,
      },
      missing,
      along,
    );
    for (const { group, asked } of plans) this.fetchGroup(f, group, asked);
    const last = plans[plans.length - 1]?.group.at(-1);
    if (last) this.extension.fetched(last.compressedOffset + last.compressedSize);
  }

  /**
   * Fetches a contiguous group in one backend read. The first `asked` chunks are what readers wait for; the rest
   * (the group's extension) are decoded, remembered and written only after the next turn of the event loop, so that
   * the readers' replies go out first: with 1024 tiny chunks in a group, each step of a reader's reply otherwise
   * queued behind every chunk's decode and cache write (the first read of a tiny file waited ~75 ms, issue 8).
   */
  private fetchGroup(f: FetchOptions, group: ChunkInfo[], asked = group.length): void {
    const start = group[0]!.compressedOffset;
    const last = group[group.length - 1]!;
    const length = last.compressedOffset + last.compressedSize - start;
    // The compressed bytes land in arena memory when they fit a slot: a fresh Buffer per fetch is external memory that
    // keeps V8 collecting during cold reads (BENCHMARKS.md run W). Only in the default layout, where nothing keeps them
    // past the decodes; the compressed layout writes them to the cache file.
    const into = this.raw ? undefined : this.opts.arena?.take(length);
    const raw = (async () => {
      this.stats.backendReads++;
      this.stats.backendBytes += length;
      const data = await f.backend.read(this.blob.blobId, start, length, undefined, into);
      // a backend that answers with other than what was asked for is not believed (its bytes would land at wrong offsets)
      if (data.length !== length) {
        throw new BackendError(`${f.backend.kind}: blob ${this.blob.blobId} [${start}, +${length}) answered with ${data.length} bytes`, this.blob.blobId);
      }
      return data;
    })();
    const later = asked < group.length ? raw.then((data) => new Promise<Buffer>((resolve) => setImmediate(() => resolve(data)))) : raw;
    const decoded = group.map((chunk, k) => {
      let stored: Buffer | undefined;
      const p = (k < asked ? raw : later).then(async (data) => {
        stored = data.subarray(chunk.compressedOffset - start, chunk.compressedOffset - start + chunk.compressedSize);
        const plain = await this.decode(chunk, stored);
        // cache.validate covers what comes from the backend too: no byte reaches a reader or the cache unchecked
        const bad = f.validateFetch || f.validateCache ? this.mismatch(chunk, plain) : undefined;
        if (bad !== undefined) {
          this.opts.arena?.release(plain);
          const where = `blob ${this.blob.blobId} chunk ${chunk.index} (compressed [${chunk.compressedOffset}, +${chunk.compressedSize}))`;
          this.opts.log?.('warn', `${where} from backend ${f.backend.kind} fails validation: ${bad}; not served, not cached`);
          throw new BackendError(`${where}: digest mismatch (${bad})`, this.blob.blobId);
        }
        return plain;
      });
      this.inflight.set(this.key(chunk), p);
      return { chunk, p, stored: () => stored! };
    });
    if (into) {
      // given back once every chunk is decoded (decoding copies out of it); never after a failed read, which may
      // still be writing into it from below (a read given up on its timeout)
      const arena = this.opts.arena!;
      raw.then(
        () => void Promise.allSettled(decoded.map((d) => d.p)).then(() => arena.release(into)),
        () => undefined,
      );
    }
    for (const { chunk, p, stored } of decoded) {
      const key = this.key(chunk);
      p.then(
        (plain) => {
          this.stats.chunksFetched++;
          this.remember(key, plain);
          const w = this.persist(chunk, this.raw ? stored() : plain).catch((err: Error) => this.writeFailed(err));
          this.persisting.add(w);
          return w.finally(() => {
            this.persisting.delete(w);
            // the fetch's own hold on the chunk memory (taken in decode); `recent` and readers hold their own
            this.opts.arena?.release(plain);
          });
        },
        () => undefined,
      ).finally(() => {
        // keep serving from memory until the data is in the file
        if (this.inflight.get(key) === p) this.inflight.delete(key);
      });
    }
  }

  /**
   * A cache write failed (ENOSPC, EIO, EDQUOT...): the chunk stays unready (it is served from memory while it is
   * recent, then fetched again), the failure is logged once per condition and counted, and writes pause for
   * WRITE_RETRY_MS so that a full disk is not written again for every fetched chunk.
   */
  private writeFailed(err: Error): void {
    this.stats.cacheWriteErrors++;
    this.writesPausedUntil = performance.now() + WRITE_RETRY_MS;
    const condition = (err as NodeJS.ErrnoException).code ?? err.message;
    if (this.writeFailure === condition) return;
    this.writeFailure = condition;
    this.opts.log?.(
      'warn',
      `blob cache ${this.dataPath}: cannot write (${err.message}); fetched chunks are served without being cached, writes are tried again every ${WRITE_RETRY_MS / 1000} s (logged once per condition)`,
    );
  }

  /** A write succeeded: if writes were failing, say that they work again. */
  private writeSucceeded(): void {
    if (this.writeFailure === undefined) return;
    this.opts.log?.('warn', `blob cache ${this.dataPath}: writes succeed again (after ${this.writeFailure})`);
    this.writeFailure = undefined;
  }

  /** Decodes on the libuv pool (small chunks inline): the chunks of a group and of readahead decode in parallel, on the other core. */
  private async decode(chunk: ChunkInfo, stored: Buffer): Promise<Buffer> {
    const compressed = (chunk.flags & ChunkFlag.COMPRESSED) !== 0;
    if (!compressed) {
      if (stored.length !== chunk.uncompressedSize) {
        throw new BackendError(
          `chunk ${chunk.index} of blob ${this.blob.blobId}: stored size ${stored.length} != uncompressed size ${chunk.uncompressedSize}`,
          this.blob.blobId,
        );
      }
      const copy = this.chunkBuffer(stored.length);
      stored.copy(copy);
      return copy;
    }
    const out = this.chunkBuffer(chunk.uncompressedSize);
    try {
      if (chunk.uncompressedSize <= INLINE_DECODE) return decompress(this.blob.compressor, stored, chunk.uncompressedSize, out);
      return await decompressAsync(this.blob.compressor, stored, chunk.uncompressedSize, out);
    } catch (err) {
      this.opts.arena?.release(out);
      throw new BackendError(`chunk ${chunk.index} of blob ${this.blob.blobId}: ${(err as Error).message}`, this.blob.blobId, { cause: err });
    }
  }

  /**
   * Memory for one decoded chunk, held once by the fetch: recycled from the arena when it has a free slot, and
   * page-aligned (padded with zeros to 4 KiB) while direct writes are possible.
   */
  private chunkBuffer(size: number): Buffer {
    if (size < SMALL_CHUNK) return Buffer.allocUnsafe(size);
    const slot = this.opts.arena?.take(size);
    if (slot) return slot;
    if (!this.writes.directPossible) return Buffer.allocUnsafe(size);
    const block = native.alignedBuffer(size);
    alignedMemory.add(block.buffer);
    return block.subarray(0, size);
  }

  /** Why `plain` is not the chunk's content (expected and actual digest), or undefined when it is (or nothing can tell). */
  private mismatch(chunk: ChunkInfo, plain: Buffer): string | undefined {
    return chunkMismatch(chunk, plain, this.opts.digester);
  }

  /** Writes a fetched chunk into the cache file: as the blob stores it in raw mode, else decoded. */
  private async persist(chunk: ChunkInfo, bytes: Buffer): Promise<void> {
    const key = this.key(chunk);
    if (this.closing || (this.isReady(key) && !this.damaged.delete(key))) return;
    if (performance.now() < this.writesPausedUntil) {
      this.stats.cacheWritesSkipped++;
      return;
    }
    this.file.checkCut();
    if (this.raw) {
      await this.writes.writeBuffered(chunk.compressedOffset, bytes);
    } else {
      const block = this.directBlock(chunk, bytes);
      if (block) await this.writes.writeDirect(chunk.uncompressedOffset, block);
      else await this.writes.writeBuffered(chunk.uncompressedOffset, bytes);
    }
    this.writeSucceeded();
    this.file.written(key);
    this.durability.add(key);
  }

  /**
   * The chunk with its zero padding to 4 KiB, when it can be written directly: aligned in the file, and the
   * padding overwrites neither the next chunk (v6 places chunks at 4 KiB boundaries; this checks it) nor
   * extends the file.
   */
  private directBlock(chunk: ChunkInfo, plain: Buffer): Buffer | undefined {
    if (plain.length === 0 || chunk.uncompressedOffset % DIRECT_ALIGN !== 0) return undefined;
    const padded = roundUp(plain.length);
    const end = chunk.uncompressedOffset + padded;
    // only memory chunkBuffer allocated page-aligned with zero padding (arena slots, alignedBuffer) goes out padded:
    // a small chunk in Node's shared Buffer pool can sit at a 4 KiB byteOffset, but its "padding" is whatever else
    // the pool holds (other chunks, request data), which must never reach the cache file
    if (!(this.opts.arena?.owns(plain) || alignedMemory.has(plain.buffer))) return undefined;
    if (end > this.file.fileSize || plain.byteOffset % DIRECT_ALIGN !== 0 || plain.byteOffset + padded > plain.buffer.byteLength) return undefined;
    if (padded !== plain.length) {
      const next = this.neighbours?.(chunk.index + 1);
      if (!next || next.uncompressedOffset < end) return undefined;
    }
    if (!this.writes.acceptsDirect(padded)) return undefined;
    return Buffer.from(plain.buffer, plain.byteOffset, padded);
  }

  private remember(key: number, plain: Buffer): void {
    if (!this.recentBudget.admits(plain.length)) return;
    this.opts.arena?.hold(plain);
    this.recent.put(key, plain);
  }

  /** Waits until every written chunk is durable and marked ready. */
  async flush(): Promise<void> {
    await this.durability.flush(async () => {
      if (this.inflight.size === 0) return false;
      await Promise.allSettled([...this.inflight.values()]);
      return true;
    });
  }

  /**
   * Waits for the chunk writes in progress and their durability, but not for backend fetches: a hung
   * backend must not hold up shutdown, and what it returns later is simply not cached.
   */
  async close(): Promise<void> {
    this.closing = true;
    this.writes.closing = true;
    this.durability.stopWaiting();
    await Promise.allSettled([...this.persisting]);
    await this.durability.close();
    this.recent.close();
    this.file.close();
  }
}
