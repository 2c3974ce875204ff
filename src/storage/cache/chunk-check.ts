// Chunk validation: whether decoded bytes are the chunk the bootstrap describes, by its crc32c (chunks that carry
// one) or its digest in the image's digester (blake3 or sha256; spec rafs-format.md).
import { crc32c, digest } from '../../digest.js';
import { ChunkFlag, Digester, type ChunkInfo } from '../../image-model.js';

/** Why `plain` is not the chunk's content (expected and actual digest), or undefined when it is (or nothing can tell). */
export function chunkMismatch(chunk: ChunkInfo, plain: Buffer, digester: Digester): string | undefined {
  if (chunk.flags & ChunkFlag.HAS_CRC32) {
    const got = crc32c(plain) >>> 0;
    const want = chunk.crc32 >>> 0;
    return got === want ? undefined : `crc32c ${want.toString(16).padStart(8, '0')} expected, ${got.toString(16).padStart(8, '0')} computed`;
  }
  if (chunk.digest.length !== 32) return undefined;
  const got = digest(digester, plain);
  return got.equals(chunk.digest) ? undefined : `${Digester[digester].toLowerCase()} ${chunk.digest.toString('hex')} expected, ${got.toString('hex')} computed`;
}
