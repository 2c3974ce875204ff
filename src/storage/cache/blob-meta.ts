// The chunk-information (CI) table of a v6 blob, which is where nydusd looks chunks up at runtime. It is
// kept in work_dir as `<blob_id>.blob.meta` (the uncompressed CI zero-padded to 4K, then the 4096-byte
// header), and fetched from the blob's tail when that file is missing or does not match the bootstrap.
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { encodeMetaHeader, parseMetaHeader, CiFlag, META_HEADER_SIZE, type CiTable } from '../../blob/meta.js';
import { parseBlobMetaFile } from '../../blob/meta-file.js';
import { decompress } from '../../compress.js';
import { ChunkFlag, RafsError, type BlobInfo, type ChunkInfo } from '../../image-model.js';
import type { BlobBackend } from '../backend/blob-backend.js';
import { openOutputFile, readInputFile } from '../../input-file.js';
import { pwriteAll } from './pwrite-all.js';
import type { Log } from '../../log.js';

const EMPTY = Buffer.alloc(0);

export class BlobMeta {
  private constructor(
    readonly blob: BlobInfo,
    /** read in place: a chunk's record is decoded when a read asks for it (no object per chunk) */
    private readonly table: CiTable,
    readonly path: string,
    /** settles once a table fetched from the backend is in work_dir (or could not be written, with a warning) */
    readonly written: Promise<void> = Promise.resolve(),
  ) {}

  get count(): number {
    return this.table.count;
  }

  /** The chunk with CI index `index`, as a ChunkInfo (digest unknown here: empty). */
  chunk(index: number): ChunkInfo | undefined {
    const t = this.table;
    if (!Number.isInteger(index) || index < 0 || index >= t.count) return undefined;
    const flags = t.flags(index);
    const crc = (flags & CiFlag.HAS_CRC32) !== 0;
    return {
      digest: EMPTY,
      blobIndex: this.blob.index,
      index,
      flags: (flags & CiFlag.COMPRESSED ? ChunkFlag.COMPRESSED : 0) | (crc ? ChunkFlag.HAS_CRC32 : 0),
      compressedOffset: t.compressedOffset(index),
      compressedSize: t.compressedSize(index),
      uncompressedOffset: t.uncompressedOffset(index),
      uncompressedSize: t.uncompressedSize(index),
      fileOffset: 0,
      crc32: crc ? t.dataLow(index) : 0,
    };
  }

  /**
   * Opens the CI table of `blob`: from work_dir when a valid `.blob.meta` matching the bootstrap is there,
   * otherwise from the backend (then written to work_dir for the next start).
   */
  static async open(blob: BlobInfo, workDir: string, backend: BlobBackend, log?: Log): Promise<BlobMeta> {
    const file = path.join(workDir, `${blob.blobId}.blob.meta`);
    const cached = readIfValid(file, blob);
    if (cached) return new BlobMeta(blob, cached, file);

    if (blob.ciCompressedSize === 0 && blob.chunkCount > 0) {
      throw new RafsError(`blob ${blob.blobId}: the bootstrap records no chunk-information table`);
    }
    const raw = await backend.read(blob.blobId, blob.ciOffset, blob.ciCompressedSize + META_HEADER_SIZE);
    const header = parseMetaHeader(raw.subarray(blob.ciCompressedSize));
    mustMatch(blob, header, `blob ${blob.blobId}: meta header`);
    // the file's layout: the uncompressed table zero-padded to 4K, then the header; decoded straight into place
    const padded = Math.ceil(blob.ciUncompressedSize / 4096) * 4096;
    const out = Buffer.alloc(padded + META_HEADER_SIZE);
    const stored = raw.subarray(0, blob.ciCompressedSize);
    if (blob.ciCompressedSize === blob.ciUncompressedSize) stored.copy(out, 0);
    else decompress(blob.ciCompressor, stored, blob.ciUncompressedSize, out);
    encodeMetaHeader(header).copy(out, padded);
    const parsed = parseBlobMetaFile(out);
    // written while the first reads go on: synchronously it held a shared daemon's first read of a small file for 8 ms
    // (issue 11, --cpu-prof); whoever closes the blob waits for it (`written`)
    return new BlobMeta(blob, parsed.table, file, persist(file, workDir, out, log));
  }
}

/**
 * Writes a fetched table to `<blob_id>.blob.meta` in place, the header last, so the file turns valid only once
 * whole: a crash or a second daemon writing the same table leaves a file `readIfValid` refuses, never a wrong one.
 * No temporary name: the snapshotter's cache GC deletes every file in work_dir whose blob id (its name less a known
 * suffix) is not in `underlying_files` (snapshotter-contract.md 5.3), which a `.tmp` name would be. Not truncated
 * on open, so a daemon reading the file while another writes it never sees a valid header over missing bytes; a FIFO
 * or device planted there is refused by openOutputFile, not waited on. A full or failing disk leaves the table in
 * memory for this run.
 */
async function persist(file: string, workDir: string, out: Buffer, log?: Log): Promise<void> {
  const headerAt = out.length - META_HEADER_SIZE;
  let fd: number | undefined;
  try {
    await fs.promises.mkdir(workDir, { recursive: true });
    fd = openOutputFile(file, 'blob meta', 0);
    await pwriteAll(fd, out.subarray(0, headerAt), 0);
    await pwriteAll(fd, out.subarray(headerAt), headerAt);
    // whatever a longer file held past the end goes (readIfValid refuses a file of the wrong length)
    await ftruncate(fd, out.length);
  } catch (err) {
    // the next start fetches it again
    log?.('warn', `blob meta ${file}: cannot be written (${(err as Error).message}); the chunk table is kept in memory for this run`);
  } finally {
    if (fd !== undefined) await close(fd).catch(() => undefined);
  }
}

const ftruncate = promisify(fs.ftruncate);
const close = promisify(fs.close);

function mustMatch(
  blob: BlobInfo,
  h: { ciEntries: number; ciOffset: number; ciCompressedSize: number; ciUncompressedSize: number; ciCompressor: number },
  what: string,
): void {
  const diffs: string[] = [];
  if (h.ciEntries !== blob.chunkCount) diffs.push(`entries ${h.ciEntries} != chunk_count ${blob.chunkCount}`);
  if (h.ciOffset !== blob.ciOffset) diffs.push(`ci_offset ${h.ciOffset} != ${blob.ciOffset}`);
  if (h.ciCompressedSize !== blob.ciCompressedSize) diffs.push(`ci_compressed_size ${h.ciCompressedSize} != ${blob.ciCompressedSize}`);
  if (h.ciUncompressedSize !== blob.ciUncompressedSize) diffs.push(`ci_uncompressed_size ${h.ciUncompressedSize} != ${blob.ciUncompressedSize}`);
  if (h.ciCompressor !== blob.ciCompressor) diffs.push(`ci_compressor ${h.ciCompressor} != ${blob.ciCompressor}`);
  if (diffs.length) throw new RafsError(`${what} does not match the bootstrap: ${diffs.join(', ')}`);
}

/** A cached `.blob.meta` is used only when it parses and agrees with the bootstrap; anything else is refetched. */
function readIfValid(file: string, blob: BlobInfo): CiTable | undefined {
  let buf: Buffer;
  try {
    // a FIFO or device planted in work_dir is refused, not read (it would block or never end); a valid file
    // is exactly the padded table and its header, so anything longer is not read either
    buf = readInputFile(file, 'cached blob meta', Math.ceil(blob.ciUncompressedSize / 4096) * 4096 + META_HEADER_SIZE);
  } catch {
    return undefined;
  }
  try {
    const parsed = parseBlobMetaFile(buf);
    mustMatch(blob, parsed.header, 'cached blob meta');
    return parsed.table;
  } catch {
    return undefined;
  }
}
