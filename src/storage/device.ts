// The blobs of one mounted image: a backend, one persistent cache per blob and, for v6, each blob's CI
// table. The filesystem hands it chunk slices; it answers with bytes. Blobs are opened on first use, so a
// missing blob only fails the reads that need it, never the mount.
import fs from 'node:fs';
import type { BlobInfo, ChunkInfo } from '../rafs/types.js';
import { BackendError, MeteredBackend } from './backend.js';
import { BlobCache, emptyCacheStats, type BlobCacheOptions, type BlobCacheStats, type ChunkSlice } from './blob-cache.js';
import { ChunkArena, type ChunkLease } from './chunk-arena.js';
import { BlobMeta } from './blob-meta.js';

/**
 * Recycled memory for decoded chunks, shared by the blobs of a mount: the `recent` lists (16 MiB per blob), the
 * chunks waiting for their cache write and those being replied fit; beyond it chunks get memory of their own.
 */
const ARENA_BYTES = 64 * 1024 * 1024;
/** What a blob id may look like: a file name in work_dir (digests are hex; no separators, no leading dot). */
const BLOB_ID = /^[0-9A-Za-z][0-9A-Za-z._-]{0,254}$/;
/** Chunk size assumed for blobs that do not declare one (old RAFS v5). */
const DEFAULT_CHUNK = 1024 * 1024;

export interface BlobDeviceOptions extends BlobCacheOptions {
  /** RAFS v6 looks chunks up in each blob's CI table; v5 records are complete in the bootstrap */
  useBlobMeta: boolean;
}

interface OpenBlob {
  cache: BlobCache;
  meta?: BlobMeta;
}

export class BlobDevice {
  private readonly opened = new Map<number, Promise<OpenBlob>>();
  readonly backend: MeteredBackend;
  private readonly opts: BlobDeviceOptions;
  private readonly arena: ChunkArena;

  constructor(
    readonly blobs: BlobInfo[],
    opts: BlobDeviceOptions,
  ) {
    fs.mkdirSync(opts.workDir, { recursive: true });
    this.backend = new MeteredBackend(opts.backend, opts.log);
    const maxChunk = Math.max(DEFAULT_CHUNK, ...blobs.map((b) => b.chunkSize));
    this.arena = opts.arena ?? new ChunkArena(maxChunk, ARENA_BYTES);
    this.opts = { ...opts, backend: this.backend, arena: this.arena };
  }

  private open(blobIndex: number): Promise<OpenBlob> {
    let p = this.opened.get(blobIndex);
    if (!p) {
      p = (async () => {
        const blob = this.blobs[blobIndex];
        if (!blob) throw new BackendError(`chunk refers to blob index ${blobIndex}, but the image has ${this.blobs.length} blobs`, '');
        // cache files are named after the blob id: one that is not a plain file name (`../x`) must not choose where they go
        if (!BLOB_ID.test(blob.blobId)) throw new BackendError(`blob ${blobIndex} has id ${JSON.stringify(blob.blobId)}, which cannot name a cache file`, blob.blobId);
        const meta = this.opts.useBlobMeta
          ? await BlobMeta.open(blob, this.opts.workDir, this.opts.backend, this.opts.timeoutSec, this.opts.log)
          : undefined;
        const cache = new BlobCache(blob, this.opts, meta ? (i) => meta.chunk(i) : undefined);
        return { cache, meta };
      })();
      // a failure (missing blob, dead backend) is retried by the next read rather than remembered
      p.catch(() => this.opened.delete(blobIndex));
      this.opened.set(blobIndex, p);
    }
    return p;
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
        const data = await cache.read(mine, extra, lease);
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
        .then(({ cache, meta }) => cache.prefetch(list.map((c) => this.resolve(cache, meta, c))))
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

  /** Closes every blob cache. A blob still opening (its CI table fetch hangs) is closed if it ever opens. */
  async close(): Promise<void> {
    const pending = [...this.opened.values()];
    this.opened.clear();
    await Promise.all(
      pending.map(async (p) => {
        const b = await Promise.race([p.catch(() => undefined), new Promise<'pending'>((r) => setImmediate(() => r('pending')))]);
        if (b === 'pending') void p.then((late) => late.cache.close(), () => undefined);
        else await b?.cache.close();
      }),
    );
    await this.opts.backend.close();
  }
}
