// The blobs of one mounted image: a backend, one persistent cache per blob and, for v6, each blob's CI
// table. The filesystem hands it chunk slices; it answers with bytes. Blobs are opened on first use, so a
// missing blob only fails the reads that need it, never the mount.
import fs from 'node:fs';
import type { BlobInfo, ChunkInfo, Digester } from '../rafs/types.js';
import { BackendError, MeteredBackend, type BlobBackend } from './backend.js';
import { BlobCache, type ChunkSlice } from './blob-cache.js';
import { BlobMeta } from './blob-meta.js';

export interface BlobDeviceOptions {
  backend: BlobBackend;
  workDir: string;
  /** RAFS v6 looks chunks up in each blob's CI table; v5 records are complete in the bootstrap */
  useBlobMeta: boolean;
  amplifyIo: number;
  validateFetch: boolean;
  validateCache: boolean;
  timeoutSec: number;
  digester: Digester;
}

interface OpenBlob {
  cache: BlobCache;
  meta?: BlobMeta;
}

export class BlobDevice {
  private readonly opened = new Map<number, Promise<OpenBlob>>();
  readonly backend: MeteredBackend;
  private readonly opts: BlobDeviceOptions;

  constructor(
    readonly blobs: BlobInfo[],
    opts: BlobDeviceOptions,
  ) {
    fs.mkdirSync(opts.workDir, { recursive: true });
    this.backend = new MeteredBackend(opts.backend);
    this.opts = { ...opts, backend: this.backend };
  }

  private open(blobIndex: number): Promise<OpenBlob> {
    let p = this.opened.get(blobIndex);
    if (!p) {
      p = (async () => {
        const blob = this.blobs[blobIndex];
        if (!blob) throw new BackendError(`chunk refers to blob index ${blobIndex}, but the image has ${this.blobs.length} blobs`, '');
        const meta = this.opts.useBlobMeta
          ? await BlobMeta.open(blob, this.opts.workDir, this.opts.backend, this.opts.timeoutSec)
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

  /**
   * Reads slices of chunks, possibly of several blobs. For v6 the chunk's location comes from the blob's
   * CI table; `along` are chunks worth fetching in the same backend round trip (the rest of the file).
   */
  async read(slices: ChunkSlice[], along: ChunkInfo[] = []): Promise<Buffer[]> {
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
        const resolve = (c: ChunkInfo): ChunkInfo => {
          if (!meta) return c;
          const r = meta.chunk(c.index);
          if (!r) throw new BackendError(`chunk index ${c.index} is beyond blob ${cache.blob.blobId}'s ${meta.count} chunks`, cache.blob.blobId);
          if (r.uncompressedOffset !== c.uncompressedOffset && c.uncompressedOffset !== 0) {
            throw new BackendError(`chunk ${c.index} of blob ${cache.blob.blobId}: CI table and bootstrap disagree on its offset`, cache.blob.blobId);
          }
          return c.digest.length ? { ...r, digest: c.digest } : r;
        };
        const mine = idx.map((i) => ({ ...slices[i]!, chunk: resolve(slices[i]!.chunk) }));
        const extra = along.filter((c) => c.blobIndex === blobIndex).map(resolve);
        const data = await cache.read(mine, extra);
        idx.forEach((i, k) => (out[i] = data[k]!));
      }),
    );
    return out;
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
  async stats(): Promise<{ backendReads: number; backendBytes: number; cacheHits: number; chunksFetched: number }> {
    const total = { backendReads: 0, backendBytes: 0, cacheHits: 0, chunksFetched: 0 };
    for (const p of this.opened.values()) {
      const b = await p.catch(() => undefined);
      if (!b) continue;
      for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += b.cache.stats[k];
    }
    return total;
  }

  async close(): Promise<void> {
    for (const p of this.opened.values()) {
      const b = await p.catch(() => undefined);
      await b?.cache.close();
    }
    this.opened.clear();
    await this.opts.backend.close();
  }
}
