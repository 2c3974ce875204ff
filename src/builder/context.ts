// Options and shared state of one `nydus-image create` run: what the blob dumper and the bootstrap
// writers both need (algorithms, chunk size, the blob list and the chunk dedup dictionary).
import { Compressor, Digester, type BlobInfo, type ChunkInfo } from '../image-model.js';
import type { TreeNode } from './tree.js';

export interface BuildOptions {
  fsVersion: 5 | 6;
  compressor: Compressor;
  digester: Digester;
  /** power of two in [4096, 16 MiB] */
  chunkSize: number;
  /** `--features blob-toc` (v6 only): blob.digest array + ToC trailer */
  blobToc: boolean;
  /** `--blob-inline-meta`: the bootstrap is appended to the data blob */
  blobInlineMeta: boolean;
  /** false with `--repeatable` */
  explicitUidGid: boolean;
  /** v5 only (v6 always aligns): 4K-aligned uncompressed chunk offsets */
  alignedChunk: boolean;
  /**
   * Nodes named by the prefetch patterns, in pattern order (a directory stands for everything below
   * it). Undefined means no prefetch policy: no prefetch table at all.
   */
  prefetch?: TreeNode[];
}

export const DEFAULT_CHUNK_SIZE = 0x100000;

export function defaultOptions(overrides: Partial<BuildOptions> = {}): BuildOptions {
  const o: BuildOptions = {
    fsVersion: 6,
    compressor: Compressor.Zstd,
    digester: Digester.Blake3,
    chunkSize: DEFAULT_CHUNK_SIZE,
    blobToc: false,
    blobInlineMeta: false,
    explicitUidGid: true,
    alignedChunk: false,
    ...overrides,
  };
  validateOptions(o);
  return o;
}

export function validateOptions(o: BuildOptions): void {
  if (o.fsVersion !== 5 && o.fsVersion !== 6) throw new Error(`unsupported RAFS version ${String(o.fsVersion)} (expected 5 or 6)`);
  const cs = o.chunkSize;
  if (!Number.isInteger(cs) || cs < 0x1000 || cs > 0x1000000 || (cs & (cs - 1)) !== 0) {
    throw new Error(`invalid chunk size 0x${cs.toString(16)}: must be a power of two between 0x1000 and 0x1000000`);
  }
  if (!(o.compressor in Compressor)) throw new Error(`unknown compressor ${String(o.compressor)}`);
  if (!(o.digester in Digester)) throw new Error(`unknown digester ${String(o.digester)}`);
  if (o.fsVersion === 5 && o.blobToc) throw new Error('RAFS v5 does not support the blob-toc feature');
}

/** Key of the dedup dictionary: chunk digest hex. */
export function chunkKey(digest: Buffer): string {
  return digest.toString('hex');
}

/**
 * State shared by the steps of one build. `blobs` starts with the blobs of a parent bootstrap (their
 * chunks referenced by index), and the dumper appends the new blob when it stored any chunk.
 */
export class BuildContext {
  readonly opts: BuildOptions;
  readonly blobs: BlobInfo[];
  /** chunks that can be referenced instead of stored again (parent bootstrap / chunk dict) */
  readonly chunkDict: Map<string, ChunkInfo>;

  constructor(opts: BuildOptions, parentBlobs: BlobInfo[] = [], chunkDict: Map<string, ChunkInfo> = new Map()) {
    validateOptions(opts);
    this.opts = opts;
    this.blobs = parentBlobs.map((b, i) => ({ ...b, index: i }));
    this.chunkDict = chunkDict;
  }

  /** v6 always uses 4K-aligned uncompressed offsets; v5 only on request. */
  get aligned(): boolean {
    return this.opts.fsVersion === 6 || this.opts.alignedChunk;
  }
}
