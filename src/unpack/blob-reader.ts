// Reads file contents of an image straight from its data blob files (the offline side of `check` and
// `unpack`; nydusd has its own cached storage layer). Every chunk is bounds-checked against the blob
// file and, when asked, verified against its digest.
import { closeSync, readSync } from 'node:fs';
import { openInputFile, type InputFileError, type OpenedInput } from '../input-file.js';
import path from 'node:path';
import { decompress } from '../compress.js';
import { digest } from '../digest.js';
import { CiTable, type CiEntry } from '../blob/meta.js';
import { BlobFeature, ChunkFlag, Compressor, type BlobInfo, type Bootstrap, type ChunkInfo } from '../image-model.js';

export interface BlobLocation {
  /** directory holding blobs named by their id */
  blobDir?: string;
  /** an explicit blob file (used for the image's only blob, or the last one when several) */
  blobFile?: string;
}

interface OpenBlob {
  fd: number;
  size: number;
  path: string;
  ci?: CiTable;
}

export class BlobReader {
  private readonly open = new Map<number, OpenBlob>();

  constructor(private readonly bs: Bootstrap, private readonly where: BlobLocation) {}

  /** the file a blob is read from, or undefined when none was given for it */
  blobPath(blob: BlobInfo): string | undefined {
    if (this.where.blobFile && (this.bs.blobs.length === 1 || blob.index === this.bs.blobs.length - 1)) {
      return this.where.blobFile;
    }
    if (this.where.blobDir) return path.join(this.where.blobDir, blob.blobId);
    return undefined;
  }

  private get(blobIndex: number): OpenBlob {
    let o = this.open.get(blobIndex);
    if (o) return o;
    const blob = this.bs.blobs[blobIndex];
    if (!blob) throw new Error(`chunk refers to blob index ${blobIndex}, but the image has ${this.bs.blobs.length} blobs`);
    const p = this.blobPath(blob);
    if (!p) throw new Error(`no blob file given for blob ${blob.blobId} (use --blob or --blob-dir)`);
    let input: OpenedInput;
    try {
      input = openInputFile(p, 'blob');
    } catch (e) {
      const err = e as InputFileError;
      throw new Error(`cannot open blob ${blob.blobId} at ${p}: ${err.reason ?? err.message}`);
    }
    // reads stay within the size at open (readAt), so a blob still being written cannot make them endless
    o = { fd: input.fd, size: input.size, path: p };
    this.open.set(blobIndex, o);
    return o;
  }

  private readAt(o: OpenBlob, off: number, len: number, what: string): Buffer {
    if (off < 0 || len < 0 || off + len > o.size) {
      throw new Error(`${what}: range ${off}+${len} lies outside blob file ${o.path} (${o.size} bytes)`);
    }
    const b = Buffer.alloc(len);
    let done = 0;
    while (done < len) {
      const n = readSync(o.fd, b, done, len - done, off + done);
      if (n === 0) throw new Error(`${what}: unexpected end of ${o.path}`);
      done += n;
    }
    return b;
  }

  /** Entry `index` of the blob's CI table (undefined beyond its end), for chunk records that lack sizes and for `check`. */
  ciEntry(blobIndex: number, index: number): CiEntry | undefined {
    const ci = this.ciTable(blobIndex);
    return index >= 0 && index < ci.count ? ci.entry(index) : undefined;
  }

  /** The blob's CI table, read in place (v6 bootstraps without a chunk table). */
  private ciTable(blobIndex: number): CiTable {
    const o = this.get(blobIndex);
    if (o.ci) return o.ci;
    const blob = this.bs.blobs[blobIndex];
    const raw = this.readAt(o, blob.ciOffset, blob.ciCompressedSize, `CI table of blob ${blob.blobId}`);
    const v2 = (blob.features & BlobFeature.CHUNK_INFO_V2) !== 0;
    const entrySize = v2 ? 24 : 16;
    if (blob.ciUncompressedSize < blob.chunkCount * entrySize) {
      throw new Error(`CI table of blob ${blob.blobId}: ${blob.ciUncompressedSize} bytes cannot hold ${blob.chunkCount} entries`);
    }
    const plain =
      blob.ciCompressor === Compressor.None || blob.ciCompressedSize === blob.ciUncompressedSize
        ? raw
        : decompress(blob.ciCompressor, raw, blob.ciUncompressedSize);
    o.ci = new CiTable(plain, blob.chunkCount, v2);
    return o.ci;
  }

  /** The uncompressed bytes of one chunk, digest-checked when `verify`. */
  readChunk(c: ChunkInfo, verify: boolean): Buffer {
    const blob = this.bs.blobs[c.blobIndex];
    if (!blob) throw new Error(`chunk refers to blob index ${c.blobIndex}, but the image has ${this.bs.blobs.length} blobs`);
    let { compressedOffset, compressedSize, uncompressedSize } = c;
    let compressed = (c.flags & ChunkFlag.COMPRESSED) !== 0;
    if (compressedSize === 0 && uncompressedSize > 0) {
      const ci = this.ciEntry(c.blobIndex, c.index);
      if (!ci) throw new Error(`chunk index ${c.index} is beyond the CI table of blob ${blob.blobId}`);
      ({ compressedOffset, compressedSize, uncompressedSize, compressed } = ci);
    }
    const what = `chunk ${c.index} of blob ${blob.blobId}`;
    const raw = this.readAt(this.get(c.blobIndex), compressedOffset, compressedSize, what);
    let data: Buffer;
    if (compressed) {
      try {
        data = decompress(blob.compressor, raw, uncompressedSize);
      } catch (e) {
        throw new Error(`${what}: ${(e as Error).message}`);
      }
    } else {
      if (compressedSize !== uncompressedSize) {
        throw new Error(`${what}: stored uncompressed but sizes differ (${compressedSize} != ${uncompressedSize})`);
      }
      data = raw;
    }
    if (verify && c.digest.length > 0) {
      const d = digest(blob.digester, data);
      if (!d.equals(c.digest)) throw new Error(`${what}: digest mismatch (expected ${c.digest.toString('hex')}, got ${d.toString('hex')})`);
    }
    return data;
  }

  /** A regular file's content, assembled from its chunks (holes read as zeros). */
  readFile(ino: number, verify: boolean, onChunk?: (data: Buffer, fileOffset: number) => void): Buffer | undefined {
    const inode = this.bs.getInode(ino);
    const chunks = this.bs.chunks(ino);
    const out = onChunk ? undefined : Buffer.alloc(inode.size);
    for (const c of chunks) {
      const data = this.readChunk(c, verify);
      if (c.fileOffset + data.length > inode.size) {
        throw new Error(`inode ${ino}: chunk at file offset ${c.fileOffset} (${data.length} bytes) runs past the file size ${inode.size}`);
      }
      if (out) data.copy(out, c.fileOffset);
      else onChunk!(data, c.fileOffset);
    }
    return out;
  }

  close(): void {
    for (const o of this.open.values()) closeSync(o.fd);
    this.open.clear();
  }
}
