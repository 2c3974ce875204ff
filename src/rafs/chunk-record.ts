// The 80-byte chunk record (rafs-format.md 1.5): inline after v5 file inodes, and the v6 chunk table entries.
import { RafsError, type BlobInfo, type ChunkInfo } from '../image-model.js';
import { need, u64 } from '../le.js';

export const CHUNK_RECORD_SIZE = 80;
const KNOWN_CHUNK_FLAGS = 0x1f;
const MAX_CHUNK = 0x100_0000;

export function parseChunkRecord(buf: Buffer, off: number, what: string): ChunkInfo {
  need(buf, off, CHUNK_RECORD_SIZE, what);
  const flags = buf.readUInt32LE(off + 36);
  if (flags & ~KNOWN_CHUNK_FLAGS) throw new RafsError(`${what}: flags has unknown bits 0x${((flags & ~KNOWN_CHUNK_FLAGS) >>> 0).toString(16)}`);
  const c: ChunkInfo = {
    digest: buf.subarray(off, off + 32),
    blobIndex: buf.readUInt32LE(off + 32),
    flags,
    compressedSize: buf.readUInt32LE(off + 40),
    uncompressedSize: buf.readUInt32LE(off + 44),
    compressedOffset: u64(buf, off + 48, `${what} compressed_offset`),
    uncompressedOffset: u64(buf, off + 56, `${what} uncompressed_offset`),
    fileOffset: u64(buf, off + 64, `${what} file_offset`),
    index: buf.readUInt32LE(off + 72),
    crc32: buf.readUInt32LE(off + 76),
  };
  if (c.uncompressedSize === 0 || c.uncompressedSize > MAX_CHUNK) throw new RafsError(`${what}: uncompressed_size ${c.uncompressedSize} invalid`);
  if (c.compressedSize > MAX_CHUNK) throw new RafsError(`${what}: compressed_size ${c.compressedSize} invalid`);
  return c;
}

export function encodeChunkRecord(c: ChunkInfo, out: Buffer, off: number): void {
  if (c.digest.length !== 32) throw new RafsError('chunk record: digest must be 32 bytes');
  c.digest.copy(out, off);
  out.writeUInt32LE(c.blobIndex, off + 32);
  out.writeUInt32LE(c.flags, off + 36);
  out.writeUInt32LE(c.compressedSize, off + 40);
  out.writeUInt32LE(c.uncompressedSize, off + 44);
  out.writeBigUInt64LE(BigInt(c.compressedOffset), off + 48);
  out.writeBigUInt64LE(BigInt(c.uncompressedOffset), off + 56);
  out.writeBigUInt64LE(BigInt(c.fileOffset), off + 64);
  out.writeUInt32LE(c.index, off + 72);
  out.writeUInt32LE(c.crc32 >>> 0, off + 76);
}

/**
 * A chunk's ranges must lie inside its blob wherever the blob table records the blob's sizes (0 = not recorded, as
 * in v5 images without the extended blob table): the storage layer reads and caches exactly these ranges.
 */
export function checkChunkInBlob(c: ChunkInfo, blob: BlobInfo, what: string): void {
  if (blob.chunkCount > 0 && c.index >= blob.chunkCount) throw new RafsError(`${what}: index ${c.index} beyond the ${blob.chunkCount} chunks of blob ${blob.index}`);
  if (blob.compressedSize > 0 && c.compressedOffset + c.compressedSize > blob.compressedSize) {
    throw new RafsError(`${what}: compressed range ${c.compressedOffset}+${c.compressedSize} beyond the ${blob.compressedSize} bytes of blob ${blob.index}`);
  }
  if (blob.uncompressedSize > 0 && c.uncompressedOffset + c.uncompressedSize > blob.uncompressedSize) {
    throw new RafsError(`${what}: uncompressed range ${c.uncompressedOffset}+${c.uncompressedSize} beyond the ${blob.uncompressedSize} bytes of blob ${blob.index}`);
  }
}
