// The process-wide owner of what mounted images share (issue 9: "Process-wide storage sharing"): one chunk arena,
// and one blob cache (with its CI table) per (work_dir, blob id), so that N images with a common layer fetch and
// cache it once and memory does not grow by an arena per image. Each image's blob device acquires the blobs it
// reads and releases them when it closes; a blob cache closes when its last image lets go.
import path from 'node:path';
import { BlobCache, type BlobCacheOptions } from './blob-cache.js';
import { BlobMeta } from './blob-meta.js';
import type { BlobBackend } from '../backend/blob-backend.js';
import { BackendError } from '../backend/errors.js';
import { ChunkArena } from './chunk-arena.js';
import { RecentChunks } from './recent-chunks.js';
import type { BlobInfo } from '../../image-model.js';
import type { Log } from '../../log.js';

/**
 * Recycled memory for decoded chunks, shared by every blob of every image: the recent chunks (16 MiB for all blobs), the
 * chunks waiting for their cache write and those being replied fit; beyond it chunks get memory of their own.
 */
const ARENA_BYTES = 64 * 1024 * 1024;
/** Slot size of the shared arena: the usual chunk size. Larger chunks (rare) take memory of their own. */
const ARENA_SLOT = 1024 * 1024;
/**
 * Freshly decoded chunks kept in memory, for all blobs of all images together (recent-chunks.ts): what one blob had
 * alone before. 16 MiB per blob made about 10 MiB of RSS per image attached to a shared daemon (BENCHMARKS.md, run R).
 */
const RECENT_BYTES = 16 * 1024 * 1024;

/** One blob's cache, as handed to the images that read it. */
export interface SharedBlob {
  cache: BlobCache;
  /** RAFS v6: the blob's chunk table */
  meta?: BlobMeta;
}

/** How the first reader of a blob opens its cache (later readers get the same one). */
export interface OpenBlobOptions extends BlobCacheOptions {
  /** RAFS v6 looks chunks up in each blob's CI table */
  useBlobMeta: boolean;
  /** where the CI table comes from when work_dir has none yet */
  backend: BlobBackend;
  log?: Log;
}

interface Entry {
  opening: Promise<SharedBlob>;
  refs: number;
  compressed: boolean;
}

export class StorageShare {
  private arenaInstance: ChunkArena | undefined;
  /** the one budget of recently decoded chunks of every blob cache of this share */
  readonly recent = new RecentChunks(RECENT_BYTES);
  private readonly blobs = new Map<string, Entry>();
  /** Runs once a burst of reads is over and the arena gave its pages back (ChunkArena's onQuiet). */
  onQuiet: (() => void) | undefined;

  /** The arena every blob cache of this share decodes into (created on first use). */
  get arena(): ChunkArena {
    this.arenaInstance ??= new ChunkArena(ARENA_SLOT, ARENA_BYTES, () => this.onQuiet?.());
    return this.arenaInstance;
  }

  /** Blob caches open now (tests, metrics). */
  get openBlobs(): number {
    return this.blobs.size;
  }

  /**
   * The blob's cache in `opts.workDir`, opened by the first caller and shared with the later ones; each call holds
   * one reference, dropped by `release` with the same blob and work_dir. A failed open holds nothing and is retried
   * by the next call.
   */
  acquire(blob: BlobInfo, opts: OpenBlobOptions): Promise<SharedBlob> {
    const key = keyOf(opts.workDir, blob.blobId);
    const entry = this.blobs.get(key);
    if (entry) {
      // both layouts keep their readiness in one chunk map: two at once would wipe each other's cache
      if (entry.compressed !== (opts.compressed ?? false)) {
        return Promise.reject(new BackendError(
          `blob ${blob.blobId} is cached in ${opts.workDir} with cache.compressed ${entry.compressed} by another mounted image; one work_dir holds one layout`,
          blob.blobId,
        ));
      }
      entry.refs++;
      return entry.opening;
    }
    const opening = (async (): Promise<SharedBlob> => {
      const meta = opts.useBlobMeta ? await BlobMeta.open(blob, opts.workDir, opts.backend, opts.log) : undefined;
      const cache = new BlobCache(blob, { ...opts, arena: opts.arena ?? this.arena, recent: opts.recent ?? (opts.recentBytes === undefined ? this.recent : undefined) }, meta ? (i) => meta.chunk(i) : undefined);
      return { cache, meta };
    })();
    const created: Entry = { opening, refs: 1, compressed: opts.compressed ?? false };
    this.blobs.set(key, created);
    opening.catch(() => {
      if (this.blobs.get(key) === created) this.blobs.delete(key);
    });
    return opening;
  }

  /** Drops one reference; the last one closes the cache. A blob still opening is closed if it ever opens. */
  async release(blob: BlobInfo, workDir: string): Promise<void> {
    const key = keyOf(workDir, blob.blobId);
    const entry = this.blobs.get(key);
    if (!entry || --entry.refs > 0) return;
    this.blobs.delete(key);
    const b = await Promise.race([entry.opening.catch(() => undefined), new Promise<'pending'>((r) => setImmediate(() => r('pending')))]);
    if (b === 'pending') void entry.opening.then(closeBlob, () => undefined);
    else if (b) await closeBlob(b);
  }
}

/** Closes a blob's cache once its CI table is written: the next start finds it in work_dir. */
async function closeBlob(b: SharedBlob): Promise<void> {
  await b.meta?.written;
  await b.cache.close();
}

function keyOf(workDir: string, blobId: string): string {
  return `${path.resolve(workDir)}\0${blobId}`;
}

/** The one share of this process (the daemon's); tests may make their own. */
export const processStorage = new StorageShare();
