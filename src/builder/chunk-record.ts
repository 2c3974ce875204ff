// Checks on chunks before they go into 80-byte records (the encoder itself is src/rafs/chunk-record.ts).
import type { ChunkInfo } from '../image-model.js';

/** Sizes the formats can hold; anything else would be truncated silently by the u32 fields. */
export function checkChunk(c: ChunkInfo, what: string): void {
  if (!Number.isInteger(c.compressedSize) || c.compressedSize < 0 || c.compressedSize > 0xffffffff) throw new Error(`${what}: bad compressed size ${c.compressedSize}`);
  if (!Number.isInteger(c.uncompressedSize) || c.uncompressedSize <= 0 || c.uncompressedSize > 0x1000000) throw new Error(`${what}: bad uncompressed size ${c.uncompressedSize}`);
  if (!Number.isInteger(c.index) || c.index < 0 || c.index >= 1 << 24) throw new Error(`${what}: chunk index ${c.index} out of range`);
  if (c.digest.length !== 32) throw new Error(`${what}: digest must be 32 bytes`);
}
