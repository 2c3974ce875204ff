// Deterministic test inputs: incompressible noise and text-like data that compresses well.

/** xorshift32 noise, so a failure reproduces with the same bytes. */
export function noise(size: number, seed = 0x9e3779b9): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Repetitive text with some variation. */
export function text(size: number): Buffer {
  const words = ['nydus', 'chunk', 'blob', 'rafs', 'bootstrap', 'inode', 'lz4', 'zstd', '\n'];
  const parts: string[] = [];
  let len = 0;
  for (let i = 0; len < size; i++) {
    const w = words[(i * 7 + (i >> 3)) % words.length] + (i % 13 === 0 ? String(i) : ' ');
    parts.push(w);
    len += w.length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

export const SIZES = [0, 1, 2, 15, 4095, 4096, 65543, 1 << 20];
