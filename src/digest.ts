// Chunk and blob digests: blake3 through the native addon, sha256 through node:crypto (which is
// already at native speed with SHA-NI).
import { hash } from 'node:crypto';

import { native } from './native/index.js';
import { Digester } from './image-model.js';

const NAMES: Record<Digester, string> = {
  [Digester.Blake3]: 'blake3',
  [Digester.Sha256]: 'sha256',
};

export function digesterName(d: Digester): string {
  const name = NAMES[d];
  if (name === undefined) throw new Error(`unknown digester ${String(d)}`);
  return name;
}

export function parseDigester(name: string): Digester {
  for (const [value, n] of Object.entries(NAMES)) {
    if (n === name) return Number(value) as Digester;
  }
  throw new Error(`unknown digester '${name}' (expected blake3 or sha256)`);
}

export function sha256(data: Uint8Array): Buffer {
  // The one-shot form avoids a Hash object per chunk (about 15 % faster on 4 KiB chunks).
  return hash('sha256', data, 'buffer');
}

/** 32-byte digest of `data`. */
export function digest(algo: Digester, data: Uint8Array): Buffer {
  switch (algo) {
    case Digester.Blake3:
      return native.blake3(data);
    case Digester.Sha256:
      return sha256(data);
    default:
      throw new Error(`unknown digester ${String(algo)}`);
  }
}

/** CRC32C (Castagnoli) as an unsigned 32-bit number. */
export function crc32c(data: Uint8Array): number {
  return native.crc32c(data);
}
