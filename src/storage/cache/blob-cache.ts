// The persistent cache of one data blob, in the reference's layout inside work_dir:
//   <blob_id>.blob.data            uncompressed chunks at their uncompressed offsets (sparse file), or with
//   <blob_id>.blob.raw             cache.compressed: chunks as the blob stores them, at their compressed offsets
//   <blob_id>.blob.data.chunk_map  readiness bitmap (chunk-map.ts; named after .blob.data in both modes)
// Read path: chunk map -> cache file hit -> else one merged backend fetch (adjacent chunks, up to
// amplify_io) -> decompress -> validate -> write data -> durable -> mark ready. A chunk wanted by
// many readers at once is fetched once: they share its in-flight promise.
//
// Decoded chunks live in page-aligned memory and go into the data file with O_DIRECT where the file allows
// it: a buffered write copies every byte into fresh page-cache pages and has them written back later, which
// measured as a quarter of the daemon's CPU on a cold read (BENCHMARKS.md). Readers of the cache are
// unaffected: the kernel keeps direct writes and the page cache coherent.
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { decompress, decompressAsync } from '../../compress.js';
import { crc32c, digest } from '../../digest.js';
import { native, nativeLoadError } from '../../native/index.js';
import { ChunkFlag, Digester, type BlobInfo, type ChunkInfo } from '../../image-model.js';
import { BackendError, type BlobBackend } from '../backend/blob-backend.js';
import type { ChunkArena, ChunkLease } from './chunk-arena.js';
import { ChunkMap, ChunkMapError } from './chunk-map.js';
import { RecentChunks, type RecentList } from './recent-chunks.js';
import type { Log } from '../../log.js';

const pread = promisify(fs.read);
const pwrite = promisify(fs.write);
const fdatasync = promisify(fs.fdatasync);

/**
 * Decoded chunks kept in memory after their fetch, so that a reader arriving just after readahead
 * fetched its chunk is served without reading the cache file back (bytes, per blob).
 */
const RECENT_BYTES = 16 * 1024 * 1024;
/**
 * Written chunks become durable (one fdatasync, then their chunk-map bits) once no chunk has been written for
 * DURABLE_IDLE_MS, and at least every DURABLE_MAX_MS during a long stream of fetches. An fdatasync in the middle
 * of a cold read took a fifth of its throughput (it flushes the disk's write cache; BENCHMARKS.md, run G), while
 * a chunk waiting for its bit is served from the data file all the same: the delay only decides how much a
 * successor of a crashed daemon fetches again. Shutdown and flush() do not wait for it.
 */
const DURABLE_IDLE_MS = 100;
const DURABLE_MAX_MS = 5000;

/** O_DIRECT needs memory, file offset and length aligned to the device's logical block; 4 KiB covers all. */
const DIRECT_ALIGN = 4096;
/** Most bytes of adjacent chunks in one direct write. */
const DIRECT_BATCH_BYTES = 8 * 1024 * 1024;
/**
 * Most bytes waiting for a direct write (per blob). Beyond it chunks go through the page cache, whose
 * dirty-page throttling then slows the fetches down instead of letting memory grow behind a slow disk.
 */
const DIRECT_QUEUE_BYTES = 32 * 1024 * 1024;

const roundUp = (n: number) => Math.ceil(n / DIRECT_ALIGN) * DIRECT_ALIGN;

/**
 * What a remembered chunk costs in memory: its bytes, or at least a fixed share for the Buffer object and map entry,
 * so that a list of tiny chunks is bounded by count too (16 MiB of 5-byte chunks would be 3 million entries).
 */

/** Never merge a fetch beyond this, whatever amplify_io says: 128 KiB is the reference's floor. */
const MIN_AMPLIFY = 128 * 1024;
/**
 * Most chunks in one backend fetch. amplify_io bounds a fetch in bytes, but a layer of tiny files packs ~100,000
 * chunks into 1 MiB (issue 8: one `cat` planned, decoded and wrote all of them while the daemon stood still).
 * 1024 chunks of the usual sizes already exceed any amplify_io.
 */
const MAX_FETCH_CHUNKS = 1024;
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

/** Opens the blob's chunk map; one that cannot be used (wrong size, foreign header) is replaced by an empty one. */
function openOrReset(file: string, chunkCount: number, stale: boolean, log?: Log): ChunkMap {
  if (stale) fs.rmSync(file, { force: true });
  try {
    return ChunkMap.open(file, chunkCount);
  } catch (err) {
    if (!(err instanceof ChunkMapError)) throw err;
    log?.('warn', `${err.message}; starting it afresh (no chunk ready)`);
    fs.rmSync(file, { force: true });
    return ChunkMap.open(file, chunkCount);
  }
}

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
  private readonly dataFd: number;
  /** the data file holds compressed chunks at their compressed offsets (cache.compressed) */
  private readonly raw: boolean;
  /** the data file opened O_DIRECT, or -1 (no addon, or a filesystem that refuses O_DIRECT) */
  private readonly directFd: number = -1;
  /** whether chunks are written through directFd (false again once the file refused an aligned write) */
  private direct = false;
  private readonly fileSize: number;
  /** aligned chunks waiting for the direct writer, in arrival order */
  private directQueue: { offset: number; block: Buffer; done: (err?: Error) => void }[] = [];
  private directQueued = 0;
  private directBusy = false;
  /** persistent when the blob declares its chunk count, else an in-memory set (old v5 images) */
  private readonly map: ChunkMap | undefined;
  private readonly memoryReady = new Set<number>();
  /** chunks whose data is written but not yet durable: readable from the data file already */
  private readonly written = new Set<number>();
  private readonly inflight = new Map<number, Promise<Buffer>>();
  /** ready chunks whose cached bytes proved unusable: their refetch overwrites them */
  private readonly damaged = new Set<number>();
  /**
   * Where the cache file was found cut short while serving (a read ended early), or undefined. Ready chunks beyond it
   * are not read from the file until rewritten (`rewritten`): once a rewrite past the cut extends the file again, what
   * lies between reads as zeros, not as a short read (issue 8 item 6, seen serving zeros under 4 concurrent READs).
   */
  private cutAt: number | undefined;
  /** chunks written again since the cut */
  private readonly rewritten = new Set<number>();
  private readonly recent: RecentList;
  private readonly recentBudget: RecentChunks;
  private durableQueue: number[] = [];
  private durableRunning: Promise<void> | undefined;
  /** when the last chunk was written (performance.now()) */
  private lastWrite = 0;
  /** ends the durability wait early (flush, close) */
  private wakeDurable: (() => void) | undefined;
  /** flush() calls in progress: they want durability now */
  private hurry = 0;
  readonly stats: BlobCacheStats = emptyCacheStats();
  /** while writes fail: no chunk is written before this time (performance.now()) */
  private writesPausedUntil = 0;
  /** the failure that paused writes (its errno code), logged once until writes succeed again */
  private writeFailure: string | undefined;
  /** set by close(): no new chunk is written from then on */
  private closing = false;
  private closed = false;
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
    fs.mkdirSync(opts.workDir, { recursive: true });
    this.raw = opts.compressed ?? false;
    const data = path.join(opts.workDir, `${blob.blobId}.blob.data`);
    const raw = path.join(opts.workDir, `${blob.blobId}.blob.raw`);
    this.dataPath = this.raw ? raw : data;
    this.mapPath = `${data}.chunk_map`;
    const other = this.raw ? data : raw;
    // a raw file is sized to the chunk data, which ends where a v6 blob's CI table starts; a file up to the
    // whole blob's size is accepted too
    const fullSize = this.raw ? (blob.ciOffset > 0 ? Math.min(blob.ciOffset, blob.compressedSize) : blob.compressedSize) : blob.uncompressedSize;
    const largest = this.raw ? blob.compressedSize : blob.uncompressedSize;
    this.dataFd = fs.openSync(this.dataPath, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    try {
      let size = fs.fstatSync(this.dataFd).size;
      let stale = false;
      if (fs.existsSync(other)) {
        // Both layouts keep their readiness in the same chunk map (named after .blob.data in either, as the
        // reference does): once cache.compressed has changed, it cannot tell which file holds the chunks it marks.
        opts.log?.('warn', `blob cache ${other}: left by the other cache layout (cache.compressed changed); removing it and starting afresh`);
        fs.rmSync(other, { force: true });
        stale = true;
      }
      // Too large: not this blob's cache (the reference fails the mount here, spec quirk Q5). Shorter but not empty
      // (it is sized in full when created): cut short since, so chunks marked ready may read as zeros (the reference
      // extends it and serves them). Nothing in either can be trusted, but a cache is never worth failing reads for.
      if (largest > 0 && size > largest) {
        opts.log?.('warn', `blob cache ${this.dataPath}: ${size} bytes, larger than the blob (${largest}); starting it afresh`);
        fs.ftruncateSync(this.dataFd, 0);
        size = 0;
        stale = true;
      } else if (size > 0 && size < fullSize) {
        opts.log?.('warn', `blob cache ${this.dataPath}: ${size} bytes, shorter than the blob (${fullSize}); starting it afresh`);
        stale = true;
      }
      if (fullSize > 0 && size < fullSize) fs.ftruncateSync(this.dataFd, fullSize);
      this.fileSize = Math.max(size, fullSize);
      if (!this.raw && !stale) this.adoptLegacyMap(path.join(opts.workDir, `${blob.blobId}.chunk_map`));
      let map = blob.chunkCount > 0 ? this.openMap(stale) : undefined;
      if (map && size === 0 && map.ready > 0) {
        // the data file is new (or was emptied) but a chunk map says some of it is there
        opts.log?.('warn', `blob cache ${this.dataPath}: empty, but its chunk map has ${map.ready} chunks ready; starting it afresh`);
        map.close();
        map = openOrReset(this.mapPath, blob.chunkCount, true, opts.log);
      }
      this.map = map;
    } catch (err) {
      fs.closeSync(this.dataFd);
      throw err;
    }
    // compressed chunks sit at arbitrary offsets: O_DIRECT is for the 4 KiB-aligned uncompressed layout
    if (!nativeLoadError && !this.raw) {
      try {
        this.directFd = fs.openSync(this.dataPath, fs.constants.O_WRONLY | fs.constants.O_DIRECT);
        this.direct = true;
      } catch {
        // buffered writes only: the same bytes for more CPU
      }
    }
  }

  /**
   * nydusd 2.2 names the chunk map `<blob>.chunk_map` beside the same `.blob.data` (v2.4 and we add `.blob.data`;
   * the format is the same, spec nydusd-runtime.md 6.2). Without a map of our own, that one is taken over by a hard
   * link, so a cache directory filled by 2.2 is served without refetching, and either daemon's new bits are the
   * other's. openOrReset still checks its header and size.
   */
  private adoptLegacyMap(legacy: string): void {
    if (fs.existsSync(this.mapPath) || !fs.existsSync(legacy)) return;
    try {
      fs.linkSync(legacy, this.mapPath);
      this.opts.log?.('info', `blob cache ${this.mapPath}: taken over from ${legacy} (the chunk map name of nydusd 2.2)`);
    } catch (err) {
      this.opts.log?.('warn', `blob cache ${this.mapPath}: cannot take over ${legacy} (${(err as Error).message}); its chunks will be fetched again`);
    }
  }

  /**
   * The persistent chunk map, or none when it cannot be created or read (a full or failing cache disk): the cache
   * then keeps readiness in memory for this run, which costs fetching again after a restart, never a wrong byte.
   */
  private openMap(stale: boolean): ChunkMap | undefined {
    try {
      return openOrReset(this.mapPath, this.blob.chunkCount, stale, this.opts.log);
    } catch (err) {
      if (!(err as NodeJS.ErrnoException).code) throw err;
      this.stats.cacheWriteErrors++;
      this.opts.log?.('warn', `blob cache ${this.mapPath}: cannot open the chunk map (${(err as Error).message}); readiness is kept in memory for this run`);
      fs.rmSync(this.mapPath, { force: true });
      return undefined;
    }
  }

  /** Chunks marked ready in the chunk map (or in memory without one): the blobcache metrics' `entries_count`. */
  get readyChunks(): number {
    return this.map ? this.map.ready : this.memoryReady.size;
  }

  /** Files this cache owns, as reported in blobcache metrics (`underlying_files`). */
  underlyingFiles(): string[] {
    return this.map ? [this.dataPath, this.mapPath] : [this.dataPath];
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
    if (this.written.has(key)) return true;
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
      else if (this.recentBudget.admits(c.uncompressedSize) && !this.beyondCut(c)) {
        void this.loadCached(f, c, false);
      }
    }
    if (missing.length > 0) this.startFetch(f, missing, []);
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
  private async readCached(chunk: ChunkInfo, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (this.beyondCut(chunk)) throw new Error(`blob cache ${this.dataPath}: chunk ${chunk.index} lies beyond where the file was cut (${this.cutAt})`);
    const buf = into ?? Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await pread(this.dataFd, buf, done, length - done, offset + done);
      if (bytesRead === 0) {
        // cut short under us: from here on, nothing past the cut is read from the file before it is written again
        this.noteCut(offset + done);
        throw new Error(`blob cache ${this.dataPath}: short read of chunk ${chunk.index}`);
      }
      done += bytesRead;
    }
    return buf;
  }

  /**
   * Records that the cache file is shorter than it was made (someone cut it): the cut is where it ends now, or `seen`
   * if that is lower. Sized in full at open, the file never shrinks by our doing.
   */
  private noteCut(seen: number): void {
    let size = seen;
    try {
      size = Math.min(size, fs.fstatSync(this.dataFd).size);
    } catch {
      // what the read saw is all there is to go on
    }
    if (this.cutAt === undefined) this.opts.log?.('warn', `blob cache ${this.dataPath}: cut short to ${size} bytes while in use; what lies beyond is fetched again`);
    this.cutAt = Math.min(this.cutAt ?? size, size);
  }

  /** Whether the chunk's bytes in the cache file lie past a cut and have not been written again since. */
  private beyondCut(chunk: ChunkInfo): boolean {
    if (this.cutAt === undefined) return false;
    const end = this.raw ? chunk.compressedOffset + chunk.compressedSize : chunk.uncompressedOffset + chunk.uncompressedSize;
    return end > this.cutAt && !this.rewritten.has(this.key(chunk));
  }

  /**
   * Plans merged fetches for `missing` and registers one in-flight promise per chunk. Linear in the chunks planned:
   * each is looked at once, and a fetch holds at most amplify_io bytes and MAX_FETCH_CHUNKS chunks.
   */
  private startFetch(f: FetchOptions, missing: ChunkInfo[], along: ChunkInfo[]): void {
    const limit = Math.max(f.amplifyIo, MIN_AMPLIFY);
    const byOffset = [...missing].sort((a, b) => a.compressedOffset - b.compressedOffset);
    // the caller's following chunks, by where they start in the blob (that is what "adjacent" means)
    const extra = new Map<number, ChunkInfo>();
    for (const c of along) if (c.blobIndex === this.blob.index) extra.set(c.compressedOffset, c);

    let group: ChunkInfo[] = [];
    let keys = new Set<number>();
    const flush = () => {
      if (group.length === 0) return;
      const asked = group.length;
      this.extend(group, keys, limit, extra);
      this.fetchGroup(f, group, asked);
      group = [];
      keys = new Set();
    };
    for (const c of byOffset) {
      const key = this.key(c);
      // planned already: by an earlier group's extension, or twice in `missing` (deduplicated chunks)
      if (this.inflight.has(key) || keys.has(key)) continue;
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
      keys.add(key);
    }
    flush();
  }

  /**
   * Extends a contiguous group with the following not-ready chunks of the blob, up to `limit` bytes and
   * MAX_FETCH_CHUNKS chunks. `keys` are the group's chunk keys: a zero-length chunk is its own successor by offset.
   */
  private extend(group: ChunkInfo[], keys: Set<number>, limit: number, extra: Map<number, ChunkInfo>): void {
    const start = group[0]!.compressedOffset;
    while (group.length < MAX_FETCH_CHUNKS) {
      const last = group[group.length - 1]!;
      const next = this.neighbours?.(last.index + 1) ?? extra.get(last.compressedOffset + last.compressedSize);
      if (!next || next.compressedOffset !== last.compressedOffset + last.compressedSize) return;
      if (next.compressedOffset + next.compressedSize - start > limit) return;
      const key = this.key(next);
      // (not re-reading the chunk map for each neighbour, as `available` does for the chunks asked for)
      if (keys.has(key) || this.inflight.has(key) || this.recent.has(key) || this.isReady(key)) return;
      group.push(next);
      keys.add(key);
    }
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
    if (this.directFd < 0) return Buffer.allocUnsafe(size);
    const block = native.alignedBuffer(size);
    alignedMemory.add(block.buffer);
    return block.subarray(0, size);
  }

  /** Why `plain` is not the chunk's content (expected and actual digest), or undefined when it is (or nothing can tell). */
  private mismatch(chunk: ChunkInfo, plain: Buffer): string | undefined {
    if (chunk.flags & ChunkFlag.HAS_CRC32) {
      const got = crc32c(plain) >>> 0;
      const want = chunk.crc32 >>> 0;
      return got === want ? undefined : `crc32c ${want.toString(16).padStart(8, '0')} expected, ${got.toString(16).padStart(8, '0')} computed`;
    }
    if (chunk.digest.length !== 32) return undefined;
    const got = digest(this.opts.digester, plain);
    return got.equals(chunk.digest) ? undefined : `${Digester[this.opts.digester].toLowerCase()} ${chunk.digest.toString('hex')} expected, ${got.toString('hex')} computed`;
  }

  /** Writes a fetched chunk into the cache file: as the blob stores it in raw mode, else decoded. */
  private async persist(chunk: ChunkInfo, bytes: Buffer): Promise<void> {
    const key = this.key(chunk);
    if (this.closing || (this.isReady(key) && !this.damaged.delete(key))) return;
    if (performance.now() < this.writesPausedUntil) {
      this.stats.cacheWritesSkipped++;
      return;
    }
    // a write past a cut nobody has read into yet would turn the chunks between into a hole of zeros: find it first
    if (fs.fstatSync(this.dataFd).size < this.fileSize) this.noteCut(this.fileSize);
    if (this.raw) {
      await this.writeBuffered(chunk.compressedOffset, bytes);
    } else {
      const block = this.directBlock(chunk, bytes);
      if (block) await this.writeDirect(chunk.uncompressedOffset, block);
      else await this.writeBuffered(chunk.uncompressedOffset, bytes);
    }
    this.writeSucceeded();
    if (this.cutAt !== undefined) this.rewritten.add(key);
    this.chunksDone(key);
  }

  private async writeBuffered(offset: number, data: Buffer): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await pwrite(this.dataFd, data, done, data.length - done, offset + done);
      done += bytesWritten;
    }
  }

  /**
   * The chunk with its zero padding to 4 KiB, when it can be written directly: aligned in the file, and the
   * padding overwrites neither the next chunk (v6 places chunks at 4 KiB boundaries; this checks it) nor
   * extends the file.
   */
  private directBlock(chunk: ChunkInfo, plain: Buffer): Buffer | undefined {
    if (!this.direct || plain.length === 0 || chunk.uncompressedOffset % DIRECT_ALIGN !== 0) return undefined;
    const padded = roundUp(plain.length);
    const end = chunk.uncompressedOffset + padded;
    // only memory chunkBuffer allocated page-aligned with zero padding (arena slots, alignedBuffer) goes out padded:
    // a small chunk in Node's shared Buffer pool can sit at a 4 KiB byteOffset, but its "padding" is whatever else
    // the pool holds (other chunks, request data), which must never reach the cache file
    if (!(this.opts.arena?.owns(plain) || alignedMemory.has(plain.buffer))) return undefined;
    if (end > this.fileSize || plain.byteOffset % DIRECT_ALIGN !== 0 || plain.byteOffset + padded > plain.buffer.byteLength) return undefined;
    if (padded !== plain.length) {
      const next = this.neighbours?.(chunk.index + 1);
      if (!next || next.uncompressedOffset < end) return undefined;
    }
    if (this.directQueued + padded > DIRECT_QUEUE_BYTES) return undefined;
    return Buffer.from(plain.buffer, plain.byteOffset, padded);
  }

  /** Queues an aligned block for the direct writer; resolves once it is in the file. */
  private writeDirect(offset: number, block: Buffer): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.directQueued += block.length;
      this.directQueue.push({ offset, block, done: (err) => (err ? reject(err) : resolve()) });
      if (!this.directBusy) void this.drainDirect();
    });
  }

  /**
   * One direct write at a time per blob: it waits for the disk, and writes into a file's holes take its inode
   * lock exclusively anyway, so more would only occupy pool threads that decodes and replies need. Adjacent
   * chunks go out as one write.
   */
  private async drainDirect(): Promise<void> {
    this.directBusy = true;
    try {
      while (this.directQueue.length > 0) {
        const all = this.directQueue.sort((a, b) => a.offset - b.offset);
        let end = all[0]!.offset + all[0]!.block.length;
        let n = 1;
        while (n < all.length && all[n]!.offset === end && end + all[n]!.block.length - all[0]!.offset <= DIRECT_BATCH_BYTES) {
          end += all[n]!.block.length;
          n++;
        }
        const run = all.slice(0, n);
        this.directQueue = all.slice(n);
        let failure: Error | undefined;
        try {
          // idle I/O priority lets blob reads go first; at shutdown nothing waits for those any more
          await native.pwritevAsync(this.directFd, run.map((w) => w.block), run[0]!.offset, !this.closing);
        } catch (err) {
          if ((err as { code?: string }).code === 'EINVAL' && this.direct) {
            // this filesystem or device wants another alignment: the page cache takes the same bytes
            this.direct = false;
            this.opts.log?.('debug', `blob cache ${this.dataPath}: direct writes refused (${(err as Error).message}); writing through the page cache`);
          }
          failure = await Promise.all(run.map((w) => this.writeBuffered(w.offset, w.block))).then(() => undefined, (e: Error) => e);
        }
        for (const w of run) {
          this.directQueued -= w.block.length;
          w.done(failure);
        }
      }
    } finally {
      this.directBusy = false;
    }
  }

  /** Batches durability: one fdatasync covers every chunk written before it started. */
  private chunksDone(key: number): void {
    this.written.add(key);
    this.durableQueue.push(key);
    this.lastWrite = performance.now();
    if (!this.durableRunning) this.durableRunning = this.drainDurable();
  }

  private remember(key: number, plain: Buffer): void {
    if (!this.recentBudget.admits(plain.length)) return;
    this.opts.arena?.hold(plain);
    this.recent.put(key, plain);
  }

  private async drainDurable(): Promise<void> {
    try {
      while (this.durableQueue.length > 0 && !this.closed) {
        await this.untilQuiet();
        const batch = this.durableQueue;
        this.durableQueue = [];
        try {
          await fdatasync(this.dataFd);
        } catch (err) {
          // the data may not be on the disk: these chunks are not ready (a read fetches them again)
          for (const i of batch) this.written.delete(i);
          this.writeFailed(err as Error);
          continue;
        }
        if (this.closed) return;
        try {
          if (this.map) this.map.markReady(batch);
          else for (const i of batch) this.memoryReady.add(i);
        } catch (err) {
          // the data is durable and the bits are set in memory; only a successor misses them
          this.writeFailed(err as Error);
        }
        for (const i of batch) this.written.delete(i);
      }
    } finally {
      this.durableRunning = undefined;
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
        this.wakeDurable = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeDurable = undefined;
    }
  }

  /** Waits until every written chunk is durable and marked ready. */
  async flush(): Promise<void> {
    this.hurry++;
    try {
      while (this.durableRunning || this.inflight.size > 0) {
        await Promise.allSettled([...this.inflight.values()]);
        this.wakeDurable?.();
        await this.durableRunning;
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      this.hurry--;
    }
  }

  /**
   * Waits for the chunk writes in progress and their durability, but not for backend fetches: a hung
   * backend must not hold up shutdown, and what it returns later is simply not cached.
   */
  async close(): Promise<void> {
    this.closing = true;
    this.wakeDurable?.();
    await Promise.allSettled([...this.persisting]);
    while (this.durableRunning) await this.durableRunning.catch(() => undefined);
    this.closed = true;
    this.recent.close();
    this.map?.close();
    fs.closeSync(this.dataFd);
    if (this.directFd >= 0) fs.closeSync(this.directFd);
  }
}
