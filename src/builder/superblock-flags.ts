// Superblock flag bits for the build's algorithms (rafs-format.md 1.2), shared by both bootstrap writers.
import { Compressor, Digester, SuperFlag } from '../image-model.js';

export function compressorFlag(c: Compressor): bigint {
  switch (c) {
    case Compressor.None:
      return SuperFlag.COMPRESSION_NONE;
    case Compressor.Lz4Block:
      return SuperFlag.COMPRESSION_LZ4;
    case Compressor.Gzip:
      return SuperFlag.COMPRESSION_GZIP;
    case Compressor.Zstd:
      return SuperFlag.COMPRESSION_ZSTD;
    default:
      throw new Error(`unknown compressor ${String(c)}`);
  }
}

export function digesterFlag(d: Digester): bigint {
  switch (d) {
    case Digester.Blake3:
      return SuperFlag.HASH_BLAKE3;
    case Digester.Sha256:
      return SuperFlag.HASH_SHA256;
    default:
      throw new Error(`unknown digester ${String(d)}`);
  }
}
