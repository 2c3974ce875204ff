// The blob dumper (rafs-format.md 4.1–4.3, 4.7, 4.9, 4.11): splits regular files into chunks, dedups them,
// compresses each chunk on its own and streams the data blob to a temp file in the output directory
// while hashing it; then appends the CI table, the meta header, and the tar-framed trailer pieces,
// and finally renames the file to its blob id.
import { closeSync, fsyncSync, openSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { createHash, randomBytes, type Hash } from 'node:crypto';
import path from 'node:path';
import { compress } from '../compress.js';
import { crc32c, digest } from '../digest.js';
import { makeTarHeader, TAR_HEADER_SIZE } from '../blob/tar-header.js';
import { encodeCiV1, encodeMetaHeader, type CiEntry } from '../blob/meta.js';
import { encodeToc, TocFlag, TOC_NAME, type TocEntry } from '../blob/toc.js';
import { BlobFeature, ChunkFlag, Compressor, type BlobInfo, type ChunkInfo } from '../image-model.js';
import { chunkKey, type BuildContext } from './context.js';
import type { TreeInode } from './tree.js';

const ALIGN = 4096;
/** the id a bootstrap carries for a blob it is inlined into; readers substitute the file name */
export const INLINE_PLACEHOLDER_ID = 'x'.repeat(64);

const alignUp = (v: number, a: number): number => Math.ceil(v / a) * a;

function tocFlag(c: Compressor): number {
  switch (c) {
    case Compressor.None:
      return TocFlag.NONE;
    case Compressor.Zstd:
      return TocFlag.ZSTD;
    case Compressor.Lz4Block:
      return TocFlag.LZ4_BLOCK;
    default:
      throw new Error(`blob ToC cannot describe ${Compressor[c]} content`);
  }
}

/** Compress, falling back to the raw bytes when compression does not shrink them. */
function compressOrRaw(algo: Compressor, data: Buffer): { bytes: Buffer; compressed: boolean } {
  if (algo === Compressor.None || data.length === 0) return { bytes: data, compressed: false };
  const c = compress(algo, data);
  return c.length < data.length ? { bytes: c, compressed: true } : { bytes: data, compressed: false };
}

/** Sequential writer of the blob's temp file that keeps the running sha256 (the blob id). */
class HashingFile {
  readonly fd: number;
  pos = 0;
  readonly hash: Hash = createHash('sha256');
  constructor(readonly tmpPath: string) {
    this.fd = openSync(tmpPath, 'wx', 0o644);
  }
  write(buf: Buffer, hashed = true): void {
    let done = 0;
    while (done < buf.length) done += writeSync(this.fd, buf, done, buf.length - done, this.pos + done);
    if (hashed) this.hash.update(buf);
    this.pos += buf.length;
  }
  /** the 512-byte header that follows a trailer payload (rafs-format.md 4.1) */
  tar(name: string, size: number): Buffer {
    const h = makeTarHeader(name, size);
    this.write(h);
    return h;
  }
}

/** Reads a file's content in chunk-size pieces into one reused buffer. */
class ContentReader {
  private readonly buf: Buffer;
  constructor(chunkSize: number) {
    this.buf = Buffer.allocUnsafe(chunkSize);
  }
  *chunks(inode: TreeInode, chunkSize: number): Generator<Buffer> {
    const src = inode.source;
    if (!src) throw new Error('regular file without content source or chunks');
    if (src.kind === 'buffer') {
      if (src.data.length !== inode.size) throw new Error(`content buffer is ${src.data.length} bytes but the inode size is ${inode.size}`);
      for (let off = 0; off < src.data.length; off += chunkSize) yield src.data.subarray(off, Math.min(off + chunkSize, src.data.length));
      return;
    }
    if (src.length !== inode.size) throw new Error(`${src.path}: source range is ${src.length} bytes but the inode size is ${inode.size}`);
    const fd = openSync(src.path, 'r');
    try {
      for (let off = 0; off < src.length; off += chunkSize) {
        const want = Math.min(chunkSize, src.length - off);
        let got = 0;
        while (got < want) {
          const n = readSync(fd, this.buf, got, want - got, src.offset + off + got);
          if (n === 0) throw new Error(`${src.path}: file ended at ${src.offset + off + got}, expected ${src.length} bytes from offset ${src.offset} (changed while building?)`);
          got += n;
        }
        yield this.buf.subarray(0, want);
      }
    } finally {
      closeSync(fd);
    }
  }
}

/** A data blob whose chunk data and CI are written; the trailer may still need the bootstrap. */
export interface DumpedBlob {
  /** the blob table entry (id is the inline placeholder until `finish` when inline-meta) */
  info: BlobInfo;
  /** non-inline blobs are complete: id known, file renamed */
  blobId?: string;
  blobPath?: string;
  /** inline-meta: append the bootstrap (and the ToC), rename, and return the id */
  finishInline(bootstrap: Buffer): { blobId: string; blobPath: string };
  /** remove the blob (or its temp file) after a failure later in the build */
  abort(): void;
}

export interface DumpInput {
  ctx: BuildContext;
  /** regular-file inodes in dump order (hardlinks once), see dumpOrder() */
  files: TreeInode[];
  /** directory the blob file is written to */
  outputDir: string;
}

/**
 * Fills `chunks` of every file. Chunks found in the build or in the dictionary are referenced, the
 * others are stored in a new blob that is appended to ctx.blobs. Returns undefined when no chunk had
 * to be stored (no blob file, no blob table entry).
 */
export function dumpBlob(input: DumpInput): DumpedBlob | undefined {
  const { ctx, files, outputDir } = input;
  const o = ctx.opts;
  const v6 = o.fsVersion === 6;
  const blobIndex = ctx.blobs.length;
  if (blobIndex >= 255) throw new Error('too many blobs: a RAFS image references at most 254');
  const trailer = o.blobToc || o.blobInlineMeta;
  const local = new Map<string, ChunkInfo>();
  const ci: CiEntry[] = [];
  const digests: Buffer[] = [];
  const reader = new ContentReader(o.chunkSize);
  let file: HashingFile | undefined;
  let uncompressedEnd = 0;

  const tmpPath = path.join(outputDir, `.blob-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
  const abort = (): void => {
    if (file) {
      try {
        closeSync(file.fd);
      } catch {
        /* already closed */
      }
      try {
        unlinkSync(tmpPath);
      } catch {
        /* already gone */
      }
    }
  };

  try {
    for (const inode of files) {
      if (inode.chunks) continue;
      const chunks: ChunkInfo[] = [];
      let fileOffset = 0;
      for (const data of reader.chunks(inode, o.chunkSize)) {
        const d = digest(o.digester, data);
        const key = chunkKey(d);
        const known = local.get(key) ?? ctx.chunkDict.get(key);
        if (known) {
          chunks.push({ ...known, fileOffset });
          fileOffset += data.length;
          continue;
        }
        file ??= new HashingFile(tmpPath);
        if (ci.length >= 1 << 24) throw new Error('blob has more than 2^24 chunks');
        const { bytes, compressed } = compressOrRaw(o.compressor, data);
        const uncompressedOffset = ctx.aligned ? alignUp(uncompressedEnd, ALIGN) : uncompressedEnd;
        const chunk: ChunkInfo = {
          digest: d,
          blobIndex,
          index: ci.length,
          flags: ChunkFlag.HAS_CRC32 | (compressed ? ChunkFlag.COMPRESSED : 0),
          compressedOffset: file.pos,
          compressedSize: bytes.length,
          uncompressedOffset,
          uncompressedSize: data.length,
          fileOffset,
          crc32: crc32c(data) >>> 0,
        };
        file.write(bytes);
        uncompressedEnd = uncompressedOffset + data.length;
        ci.push({
          compressedOffset: chunk.compressedOffset,
          compressedSize: chunk.compressedSize,
          uncompressedOffset,
          uncompressedSize: data.length,
          compressed,
          flags: 0,
          data: 0n,
        });
        digests.push(d);
        local.set(key, chunk);
        chunks.push({ ...chunk });
        fileOffset += data.length;
      }
      inode.chunks = chunks;
    }
    if (!file) return undefined;
    const f = file;

    const dataSize = f.pos;
    const uncompressedSize = ctx.aligned ? alignUp(uncompressedEnd, ALIGN) : uncompressedEnd;
    let features = BlobFeature.CAP_TAR_TOC;
    if (o.blobInlineMeta) features |= BlobFeature.INLINED_FS_META | BlobFeature.HAS_TAR_HEADER;
    if (o.blobToc) features |= BlobFeature.HAS_TOC | BlobFeature.HAS_TAR_HEADER;
    const toc: TocEntry[] = [];

    if (trailer) {
      f.tar('image.blob', dataSize);
      if (o.blobToc) {
        // The data region's entry is hashed together with its tar header: the running hash so far.
        toc.push({
          flags: TocFlag.NONE,
          name: 'image.blob',
          digest: f.hash.copy().digest(),
          compressedOffset: 0,
          compressedSize: dataSize,
          uncompressedSize,
        });
      }
    }

    const info: BlobInfo = {
      blobId: '',
      index: blobIndex,
      chunkSize: o.chunkSize,
      chunkCount: ci.length,
      compressor: o.compressor,
      digester: o.digester,
      features: 0,
      compressedSize: 0,
      uncompressedSize,
      readaheadOffset: 0,
      readaheadSize: 0,
      ciCompressor: Compressor.None,
      ciOffset: 0,
      ciCompressedSize: 0,
      ciUncompressedSize: 0,
      tocSize: 0,
      tocDigest: Buffer.alloc(32),
      metaDigest: Buffer.alloc(32),
      metaSize: 0,
      mappedBlkaddr: 0,
    };

    if (v6) {
      features |= BlobFeature.ALIGNED;
      if (o.blobToc) features |= BlobFeature.INLINED_CHUNK_DIGEST;
      const ciRaw = encodeCiV1(ci);
      // Gzip is only a chunk codec of estargz-derived blobs; the CI of such a blob stays plain.
      const ciAlgo = o.compressor === Compressor.Gzip ? Compressor.None : o.compressor;
      const ciStored = compressOrRaw(ciAlgo, ciRaw);
      const ciCompressor = ciStored.compressed ? ciAlgo : Compressor.None;
      const ciOffset = f.pos;
      const header = encodeMetaHeader({
        features,
        ciCompressor,
        ciEntries: ci.length,
        ciOffset,
        ciCompressedSize: ciStored.bytes.length,
        ciUncompressedSize: ciRaw.length,
        zranOffset: 0,
        zranSize: 0,
        zranCount: 0,
      });
      f.write(ciStored.bytes);
      f.write(header);
      if (trailer) f.tar('blob.meta', ciStored.bytes.length + header.length);
      Object.assign(info, {
        ciCompressor,
        ciOffset,
        ciCompressedSize: ciStored.bytes.length,
        ciUncompressedSize: ciRaw.length,
      });
      if (o.blobToc) {
        toc.push({
          flags: tocFlag(ciCompressor),
          name: 'blob.meta',
          digest: createHash('sha256').update(ciRaw).digest(),
          compressedOffset: ciOffset,
          compressedSize: ciStored.bytes.length,
          uncompressedSize: ciRaw.length,
        });
        toc.push({
          flags: TocFlag.NONE,
          name: 'blob.meta.header',
          digest: createHash('sha256').update(header).digest(),
          compressedOffset: ciOffset + ciStored.bytes.length,
          compressedSize: header.length,
          uncompressedSize: header.length,
        });
        // The digest array is left out of the running hash (the blob id quirk of rafs-format.md 4.11).
        const arr = Buffer.concat(digests);
        const arrOffset = f.pos;
        f.write(arr, false);
        f.tar('blob.digest', arr.length);
        toc.push({
          flags: TocFlag.NONE,
          name: 'blob.digest',
          digest: createHash('sha256').update(arr).digest(),
          compressedOffset: arrOffset,
          compressedSize: arr.length,
          uncompressedSize: arr.length,
        });
      }
    }
    info.features = features;
    ctx.blobs.push(info);

    const finalize = (): { blobId: string; blobPath: string } => {
      const blobId = f.hash.digest('hex');
      fsyncSync(f.fd);
      closeSync(f.fd);
      const blobPath = path.join(outputDir, blobId);
      renameSync(tmpPath, blobPath);
      return { blobId, blobPath };
    };
    const writeToc = (): void => {
      if (!o.blobToc) return;
      const payload = encodeToc(toc);
      f.write(payload);
      const h = f.tar(TOC_NAME, payload.length);
      info.tocSize = payload.length + TAR_HEADER_SIZE;
      info.tocDigest = createHash('sha256').update(payload).update(h).digest();
    };

    if (o.blobInlineMeta) {
      info.blobId = INLINE_PLACEHOLDER_ID;
      // The bootstrap records the blob size as it was before the bootstrap itself was appended.
      info.compressedSize = f.pos;
      let finished = false;
      return {
        info,
        finishInline(bootstrap: Buffer) {
          if (finished) throw new Error('blob already finished');
          finished = true;
          try {
            const bootOffset = f.pos;
            let stored = bootstrap;
            let algo = Compressor.None;
            if (o.blobToc) {
              const z = compressOrRaw(Compressor.Zstd, bootstrap);
              stored = z.bytes;
              algo = z.compressed ? Compressor.Zstd : Compressor.None;
            }
            f.write(stored);
            f.tar('image.boot', stored.length);
            if (o.blobToc) {
              toc.push({
                flags: tocFlag(algo),
                name: 'image.boot',
                digest: createHash('sha256').update(bootstrap).digest(),
                compressedOffset: bootOffset,
                compressedSize: stored.length,
                uncompressedSize: bootstrap.length,
              });
            }
            writeToc();
            return finalize();
          } catch (e) {
            abort();
            throw e;
          }
        },
        abort,
      };
    }

    writeToc();
    info.compressedSize = f.pos;
    const done = finalize();
    info.blobId = done.blobId;
    return {
      info,
      blobId: done.blobId,
      blobPath: done.blobPath,
      finishInline() {
        throw new Error('blob was not built with inline meta');
      },
      abort() {
        // The bootstrap that would reference this blob failed: do not leave an orphan behind.
        try {
          unlinkSync(done.blobPath);
        } catch {
          /* already gone */
        }
      },
    };
  } catch (e) {
    abort();
    throw e;
  }
}
