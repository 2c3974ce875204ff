// Extracts the bootstrap inlined in a data blob (rafs-format.md 4.10): through the ToC (zstd, sha256-verified), or as
// the last raw `image.boot` tar record of blobs without a ToC.
import { RafsError, Compressor } from '../image-model.js';
import { decompress } from '../compress.js';
import { sha256 } from '../digest.js';
import { readTrailer, type TrailerRecord } from './trailer.js';
import { parseToc, tocCompression, TOC_NAME, type TocEntry } from './toc.js';

/** RAFS v5 bootstraps are ≤ 2 GiB; anything larger in a ToC entry is corruption, not a reason to allocate. */
const MAX_BOOTSTRAP = 2 ** 31;

export function readToc(blob: Buffer, records: TrailerRecord[] = readTrailer(blob)): TocEntry[] | undefined {
  const last = records[records.length - 1];
  if (last === undefined || last.name !== TOC_NAME) return undefined;
  return parseToc(blob.subarray(last.offset, last.offset + last.size));
}

const ZSTD_MAGIC = 0xfd2fb528;

/** Frame_Content_Size of a zstd frame header, when the frame declares it. */
export function zstdContentSize(frame: Buffer): number | undefined {
  if (frame.length < 6 || frame.readUInt32LE(0) !== ZSTD_MAGIC) return undefined;
  const fhd = frame[4];
  const fcsFlag = fhd >> 6;
  const singleSegment = (fhd >> 5) & 1;
  const dictLen = [0, 1, 2, 4][fhd & 3];
  const fcsLen = fcsFlag === 0 ? singleSegment : [0, 2, 4, 8][fcsFlag];
  if (fcsLen === 0) return undefined;
  const at = 5 + (singleSegment ? 0 : 1) + dictLen;
  if (at + fcsLen > frame.length) return undefined;
  if (fcsLen === 1) return frame[at];
  if (fcsLen === 2) return frame.readUInt16LE(at) + 256;
  if (fcsLen === 4) return frame.readUInt32LE(at);
  const v = frame.readBigUInt64LE(at);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

/** Payload of a ToC entry, decompressed and checked against its sha256. */
export function readTocEntry(blob: Buffer, e: TocEntry): Buffer {
  if (e.compressedOffset + e.compressedSize > blob.length) {
    throw new RafsError(`toc entry ${e.name}: range ${e.compressedOffset}+${e.compressedSize} outside ${blob.length}-byte blob`);
  }
  if (e.uncompressedSize > MAX_BOOTSTRAP) throw new RafsError(`toc entry ${e.name}: uncompressed size ${e.uncompressedSize} too large`);
  const raw = blob.subarray(e.compressedOffset, e.compressedOffset + e.compressedSize);
  const kind = tocCompression(e);
  let data: Buffer;
  if (kind === 'none') {
    if (e.compressedSize !== e.uncompressedSize) throw new RafsError(`toc entry ${e.name}: uncompressed entry has differing sizes`);
    data = raw;
  } else {
    // A corrupt size field must not make us allocate gigabytes: the frame states its own size.
    const declared = kind === 'zstd' ? zstdContentSize(raw) : undefined;
    if (declared !== undefined && declared !== e.uncompressedSize) {
      throw new RafsError(`toc entry ${e.name}: uncompressed_size ${e.uncompressedSize} differs from the zstd frame's ${declared}`);
    }
    if (declared === undefined && e.uncompressedSize > Math.max(e.compressedSize * 1024, 1 << 20)) {
      throw new RafsError(`toc entry ${e.name}: uncompressed_size ${e.uncompressedSize} implausible for ${e.compressedSize} compressed bytes`);
    }
    data = decompress(kind === 'zstd' ? Compressor.Zstd : Compressor.Lz4Block, raw, e.uncompressedSize);
  }
  if (!sha256(data).equals(e.digest)) throw new RafsError(`toc entry ${e.name}: sha256 mismatch`);
  return data;
}

export function extractBootstrap(blob: Buffer): Buffer {
  const records = readTrailer(blob);
  const toc = readToc(blob, records);
  if (toc !== undefined) {
    const boot = toc.find((e) => e.name === 'image.boot');
    if (boot === undefined) throw new RafsError('blob has a ToC without an image.boot entry: no inlined bootstrap');
    return Buffer.from(readTocEntry(blob, boot));
  }
  const last = records[records.length - 1];
  if (last === undefined || last.name !== 'image.boot') throw new RafsError('blob has no inlined bootstrap (no ToC and no trailing image.boot record)');
  return Buffer.from(blob.subarray(last.offset, last.offset + last.size));
}
