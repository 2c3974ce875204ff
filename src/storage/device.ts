// The blobs of one mounted image: its backend, and the shared cache (with v6's CI table) of each blob it reads
// (share.ts: a blob common to several images is cached once). The filesystem hands it chunk slices; it answers with
// bytes. Blobs are opened on first use, so a missing blob only fails the reads that need it, never the mount.
import fs from 'node:fs';
import type { BlobInfo, ChunkInfo, Digester } from '../image-model.js';
import { BLOB_ID, type BlobBackend } from './backend/blob-backend.js';
import { BackendError } from './backend/errors.js';
import { MeteredBackend } from './backend/metered.js';
import { emptyCacheStats, type BlobCache, type BlobCacheStats, type ChunkSlice, type FetchOptions } from './cache/blob-cache.js';
import type { BlobMeta } from './cache/blob-meta.js';
import type { ChunkArena, ChunkLease } from './cache/chunk-arena.js';
import { processStorage, type SharedBlob, type StorageShare } from './cache/share.js';
import type { Log } from '../log.js';

export interface BlobDeviceOptions extends Omit<FetchOptions, 'backend'> {
  backend: BlobBackend;
  workDir: string;
  /** RAFS v6 looks chunks up in each blob's CI table; v5 records are complete in the bootstrap */
  useBlobMeta: boolean;
  /** the image's digester, for chunk digests */
  digester: Digester;
  /** cache.compressed: keep chunks as the blob stores them */
  compressed?: boolean;
  /** bytes of freshly decoded chunks kept in memory per blob (tests) */
  recentBytes?: number;
  /** the chunk memory of this image's blobs instead of the share's arena (tests) */
  arena?: ChunkArena;
  /**
   * Decorators that go above metering: the retry policy and failure reporting (retry.ts). Metering then records each
   * attempt (nydusd-runtime.md 7.4), while what is above the retry sees a read's final outcome.
   */
  above?: (metered: BlobBackend) => BlobBackend;
  /** where blob caches are shared (default: the process's) */
  share?: StorageShare;
  log?: Log;
}

export class BlobDevice {
  private readonly opened = new Map<number, Promise<SharedBlob>>();
  readonly backend: MeteredBackend;
  /** what the caches read through: `opts.above` of the metered backend */
  private readonly reads: BlobBackend;
  private readonly opts: BlobDeviceOptions;
  private readonly share: StorageShare;
  /** how this image's reads fetch and check chunks */
  private readonly fetch: FetchOptions;

  constructor(
    readonly blobs: BlobInfo[],
    opts: BlobDeviceOptions,
  ) {
    fs.mkdirSync(opts.workDir, { recursive: true });
    this.backend = new MeteredBackend(opts.backend, opts.log);
    this.reads = opts.above ? opts.above(this.backend) : this.backend;
    this.share = opts.share ?? processStorage;
    this.opts = opts;
    this.fetch = {
      backend: this.reads, amplifyIo: opts.amplifyIo, validateFetch: opts.validateFetch, validateCache: opts.validateCache,
    };
  }

  private get arena(): ChunkArena {
    return this.opts.arena ?? this.share.arena;
  }

  private open(blobIndex: number): Promise<SharedBlob> {
    let p = this.opened.get(blobIndex);
    if (!p) {
      const blob = this.blobs[blobIndex];
      if (!blob) return Promise.reject(new BackendError(`chunk refers to blob index ${blobIndex}, but the image has ${this.blobs.length} blobs`, ''));
      // cache files are named after the blob id: one that is not a plain file name (`../x`) must not choose where they go
      if (!BLOB_ID.test(blob.blobId)) {
        return Promise.reject(new BackendError(`blob ${blobIndex} has id ${JSON.stringify(blob.blobId)}, which cannot name a cache file`, blob.blobId));
      }
      const o = this.opts;
      p = this.share.acquire(blob, {
        workDir: o.workDir, digester: o.digester, compressed: o.compressed, recentBytes: o.recentBytes, arena: o.arena, log: o.log,
        useBlobMeta: o.useBlobMeta, backend: this.reads,
      });
      // a failure (missing blob, dead backend) is retried by the next read rather than remembered
      p.catch(() => this.opened.delete(blobIndex));
      this.opened.set(blobIndex, p);
    }
    return p;
  }

  /**
   * Opens every blob's cache (v6: its CI table, fetched when work_dir has none) ahead of the first read, as the
   * reference fetches blob metas in the background at mount (nydusd-runtime.md 1.9, 6.1). A blob that fails is left to the reads
   * that need it, which try again.
   */
  async openAll(): Promise<void> {
    await Promise.all(this.blobs.map((_, i) => this.open(i).catch(() => undefined)));
  }

  /** Holds for one read's views of recycled chunk memory; release it once the bytes are no longer needed. */
  lease(): ChunkLease {
    return this.arena.lease();
  }

  /**
   * Reads slices of chunks, possibly of several blobs. For v6 the chunk's location comes from the blob's
   * CI table; `along` are chunks worth fetching in the same backend round trip (the rest of the file).
   * Without a `lease` the bytes are copies, never views of recycled memory. A failure's cause is logged by whoever
   * turns it into the reader's EIO (the FUSE dispatcher).
   */
  async read(slices: ChunkSlice[], along: ChunkInfo[] = [], lease?: ChunkLease): Promise<Buffer[]> {
    const byBlob = new Map<number, number[]>();
    slices.forEach((s, i) => {
      const list = byBlob.get(s.chunk.blobIndex);
      if (list) list.push(i);
      else byBlob.set(s.chunk.blobIndex, [i]);
    });
    const out: Buffer[] = new Array(slices.length);
    await Promise.all(
      [...byBlob].map(async ([blobIndex, idx]) => {
        const { cache, meta } = await this.open(blobIndex);
        const resolve = (c: ChunkInfo) => this.resolve(cache, meta, c);
        const mine = idx.map((i) => ({ ...slices[i]!, chunk: resolve(slices[i]!.chunk) }));
        const extra = along.filter((c) => c.blobIndex === blobIndex).map(resolve);
        const data = await cache.read(this.fetch, mine, extra, lease);
        idx.forEach((i, k) => (out[i] = data[k]!));
      }),
    );
    return out;
  }

  /** v6: a chunk's location comes from its blob's CI table; the bootstrap's record only supplies the digest. */
  private resolve(cache: BlobCache, meta: BlobMeta | undefined, c: ChunkInfo): ChunkInfo {
    if (!meta) return c;
    const r = meta.chunk(c.index);
    if (!r) throw new BackendError(`chunk index ${c.index} is beyond blob ${cache.blob.blobId}'s ${meta.count} chunks`, cache.blob.blobId);
    if (r.uncompressedOffset !== c.uncompressedOffset && c.uncompressedOffset !== 0) {
      throw new BackendError(`chunk ${c.index} of blob ${cache.blob.blobId}: CI table and bootstrap disagree on its offset`, cache.blob.blobId);
    }
    return c.digest.length ? { ...r, digest: c.digest } : r;
  }

  /** Starts fetching chunks ahead of their readers; a failure is left for the read that needs the chunk. */
  prefetch(chunks: ChunkInfo[]): void {
    const byBlob = new Map<number, ChunkInfo[]>();
    for (const c of chunks) {
      const list = byBlob.get(c.blobIndex);
      if (list) list.push(c);
      else byBlob.set(c.blobIndex, [c]);
    }
    for (const [blobIndex, list] of byBlob) {
      this.open(blobIndex)
        .then(({ cache, meta }) => cache.prefetch(this.fetch, list.map((c) => this.resolve(cache, meta, c))))
        .catch(() => undefined);
    }
  }

  /** Every cache file of every blob opened so far. */
  async underlyingFiles(): Promise<string[]> {
    const files: string[] = [];
    for (const p of this.opened.values()) {
      const b = await p.catch(() => undefined);
      if (b) files.push(...b.cache.underlyingFiles(), ...(b.meta ? [b.meta.path] : []));
    }
    return files;
  }

  /**
   * The names (relative to work_dir) of every cache file of every blob of the image, whether opened yet or not: the
   * blobcache metrics' `underlying_files` (DECISIONS.md 13, snapshotter-contract.md 5.3: the snapshotter deletes
   * whatever cache file no instance lists, so the list is complete from the mount on). `<id>.blob.data` comes first,
   * the reference's name for a blob's cache even when its chunks are kept in `.blob.raw`.
   */
  cacheFileNames(): string[] {
    const names: string[] = [];
    for (const b of this.blobs) {
      if (!BLOB_ID.test(b.blobId)) continue;
      names.push(`${b.blobId}.blob.data`);
      if (this.opts.compressed) names.push(`${b.blobId}.blob.raw`);
      if (b.chunkCount > 0) names.push(`${b.blobId}.blob.data.chunk_map`);
      if (this.opts.useBlobMeta) names.push(`${b.blobId}.blob.meta`);
    }
    return names;
  }

  /** Chunks ready in the caches of the blobs opened so far (the blobcache metrics' `entries_count`). */
  async readyChunks(): Promise<number> {
    let n = 0;
    for (const p of this.opened.values()) {
      const b = await p.catch(() => undefined);
      if (b) n += b.cache.readyChunks;
    }
    return n;
  }

  get workDir(): string {
    return this.opts.workDir;
  }

  /** Whether cache.validate checks every chunk read from the cache (its hits are then the metrics' `whole_hits`). */
  get validatesCache(): boolean {
    return this.opts.validateCache ?? false;
  }

  /** Sum of the per-blob counters, for tests and metrics. */
  async stats(): Promise<BlobCacheStats> {
    const total = emptyCacheStats();
    for (const p of this.opened.values()) {
      const b = await p.catch(() => undefined);
      if (!b) continue;
      for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += b.cache.stats[k];
    }
    return total;
  }

  /** Lets go of every blob this image opened (the share closes a cache with its last image), then the backend. */
  async close(): Promise<void> {
    const opened = [...this.opened.keys()];
    this.opened.clear();
    await Promise.all(opened.map((i) => this.share.release(this.blobs[i]!, this.opts.workDir)));
    await this.backend.close();
  }
}
