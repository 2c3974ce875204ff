// Reads whole files of a bootstrap from in-memory data blobs, checking each chunk's digest (or CRC).
import { decompress } from '../../../src/compress.js';
import { digest, crc32c } from '../../../src/digest.js';
import { ChunkFlag, type Bootstrap, type ChunkInfo } from '../../../src/image-model.js';

export type BlobSource = (blobIndex: number) => Buffer;

export function readChunk(bs: Bootstrap, c: ChunkInfo, blobs: BlobSource): Buffer {
  const blob = blobs(c.blobIndex);
  const info = bs.blobs[c.blobIndex];
  if (c.compressedOffset + c.compressedSize > blob.length) throw new Error(`chunk ${c.index} beyond blob ${info.blobId}`);
  const raw = blob.subarray(c.compressedOffset, c.compressedOffset + c.compressedSize);
  const data = c.flags & ChunkFlag.COMPRESSED ? decompress(info.compressor, raw, c.uncompressedSize) : raw;
  if (data.length !== c.uncompressedSize) throw new Error(`chunk ${c.index}: ${data.length} bytes, expected ${c.uncompressedSize}`);
  if (c.flags & ChunkFlag.HAS_CRC32) {
    if (crc32c(data) !== c.crc32) throw new Error(`chunk ${c.index}: crc32 mismatch`);
  } else if (c.digest.length > 0 && !digest(bs.superblock.digester, data).equals(c.digest)) {
    throw new Error(`chunk ${c.index} of blob ${info.blobId}: digest mismatch`);
  }
  return data;
}

/** Whole content of a regular file; bytes no chunk covers (v5 holes) read as zeros. */
export function readFile(bs: Bootstrap, ino: number, blobs: BlobSource): Buffer {
  const inode = bs.getInode(ino);
  const out = Buffer.alloc(inode.size);
  for (const c of bs.chunks(ino)) readChunk(bs, c, blobs).copy(out, c.fileOffset);
  return out;
}
