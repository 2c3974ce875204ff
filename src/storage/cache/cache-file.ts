// The files of one blob's cache in work_dir, in the reference's layout (spec nydusd-runtime.md 6.1):
//   <blob_id>.blob.data            uncompressed chunks at their uncompressed offsets (sparse file), or with
//   <blob_id>.blob.raw             cache.compressed: chunks as the blob stores them, at their compressed offsets
//   <blob_id>.blob.data.chunk_map  readiness bitmap (chunk-map.ts; named after .blob.data in both layouts)
// Opening checks what a previous run (or another daemon, or an operator) left: a file of the other layout, a file too
// large or cut short, a chunk map without data. Nothing found there is ever worth failing reads for: what cannot be
// trusted starts afresh. Reads notice a file cut short under a running daemon and stop trusting what lies past the cut.
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { nativeLoadError } from '../../native/index.js';
import type { BlobInfo, ChunkInfo } from '../../image-model.js';
import { ChunkMap, ChunkMapError } from './chunk-map.js';
import type { Log } from '../../log.js';

const pread = promisify(fs.read);

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

export interface CacheFileOptions {
  workDir: string;
  /** cache.compressed: the `.blob.raw` layout */
  compressed: boolean;
  log?: Log;
  /** the chunk map could not be created or read (a full or failing cache disk): counted as a cache write error */
  onMapError?: () => void;
}

export class CacheFile {
  readonly dataPath: string;
  readonly mapPath: string;
  readonly dataFd: number;
  /** the data file holds compressed chunks at their compressed offsets (cache.compressed) */
  readonly raw: boolean;
  /** the data file opened O_DIRECT, or -1 (no addon, or a filesystem that refuses O_DIRECT) */
  readonly directFd: number = -1;
  /** the size the data file was made: it never shrinks by our doing */
  readonly fileSize: number;
  /** persistent readiness when the blob declares its chunk count, else none (old v5 images: readiness in memory) */
  readonly map: ChunkMap | undefined;
  /**
   * Where the cache file was found cut short while serving (a read ended early), or undefined. Ready chunks beyond it
   * are not read from the file until rewritten (`rewritten`): once a rewrite past the cut extends the file again, what
   * lies between reads as zeros, not as a short read (issue 8 item 6, seen serving zeros under 4 concurrent READs).
   */
  private cutAt: number | undefined;
  /** chunk keys written again since the cut */
  private readonly rewritten = new Set<number>();

  constructor(
    private readonly blob: BlobInfo,
    private readonly opts: CacheFileOptions,
  ) {
    fs.mkdirSync(opts.workDir, { recursive: true });
    this.raw = opts.compressed;
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
      this.opts.onMapError?.();
      this.opts.log?.('warn', `blob cache ${this.mapPath}: cannot open the chunk map (${(err as Error).message}); readiness is kept in memory for this run`);
      fs.rmSync(this.mapPath, { force: true });
      return undefined;
    }
  }

  /** Files this cache owns, as reported in blobcache metrics (`underlying_files`). */
  underlyingFiles(): string[] {
    return this.map ? [this.dataPath, this.mapPath] : [this.dataPath];
  }

  /**
   * `length` bytes of the cache file at `offset`, which belong to `chunk` (whose cache key is `key`), read into `into`
   * (exactly that long) when given.
   */
  async read(chunk: ChunkInfo, key: number, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (this.beyondCut(chunk, key)) throw new Error(`blob cache ${this.dataPath}: chunk ${chunk.index} lies beyond where the file was cut (${this.cutAt})`);
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

  /** Whether the chunk's bytes in the cache file lie past a cut and have not been written again since. */
  beyondCut(chunk: ChunkInfo, key: number): boolean {
    if (this.cutAt === undefined) return false;
    const end = this.raw ? chunk.compressedOffset + chunk.compressedSize : chunk.uncompressedOffset + chunk.uncompressedSize;
    return end > this.cutAt && !this.rewritten.has(key);
  }

  /** Before a write: one past a cut nobody has read into yet would turn the chunks between into a hole of zeros. */
  checkCut(): void {
    if (fs.fstatSync(this.dataFd).size < this.fileSize) this.noteCut(this.fileSize);
  }

  /** A chunk was written: past a cut, it is readable again. */
  written(key: number): void {
    if (this.cutAt !== undefined) this.rewritten.add(key);
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

  close(): void {
    this.map?.close();
    fs.closeSync(this.dataFd);
    if (this.directFd >= 0) fs.closeSync(this.directFd);
  }
}
