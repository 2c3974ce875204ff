import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { native } from '../../src/native/index.js';
import { noise, SIZES, text } from './data.js';

const inputs = SIZES.flatMap((n) => [
  { label: `noise ${n}`, data: noise(n, n + 1) },
  { label: `text ${n}`, data: text(n) },
]);

describe('lz4 block', () => {
  for (const { label, data } of inputs) {
    it(`round trips ${label}`, () => {
      const c = native.lz4Compress(data);
      assert.ok(c.length > 0);
      const out = Buffer.alloc(data.length);
      assert.equal(native.lz4DecompressInto(c, out), data.length);
      assert.ok(out.equals(data));
    });
  }

  it('compresses repetitive data', () => {
    const data = text(1 << 20);
    assert.ok(native.lz4Compress(data).length < data.length / 2);
  });

  it('decodes into a larger buffer and reports the real size', () => {
    const data = text(1000);
    const out = Buffer.alloc(5000);
    assert.equal(native.lz4DecompressInto(native.lz4Compress(data), out), 1000);
    assert.ok(out.subarray(0, 1000).equals(data));
  });

  it('throws when the destination is too small', () => {
    const data = text(4096);
    assert.throws(() => native.lz4DecompressInto(native.lz4Compress(data), Buffer.alloc(4095)), /lz4: corrupt input/);
  });

  it('throws on corrupt and empty input', () => {
    const c = native.lz4Compress(text(65536));
    const out = Buffer.alloc(65536);
    assert.throws(() => native.lz4DecompressInto(c.subarray(0, c.length >> 1), out), /lz4/);
    assert.throws(() => native.lz4DecompressInto(Buffer.from([0xf0, 0xff, 0xff, 0xff]), out), /lz4/);
    assert.throws(() => native.lz4DecompressInto(Buffer.alloc(0), out), /lz4: empty input/);
    assert.throws(() => native.lz4DecompressInto(noise(1000), out), /lz4/);
  });

  it('accepts plain Uint8Arrays and rejects other arguments', () => {
    const data = new Uint8Array(text(300));
    const out = new Uint8Array(300);
    assert.equal(native.lz4DecompressInto(new Uint8Array(native.lz4Compress(data)), out), 300);
    assert.deepEqual(out, data);
    assert.throws(() => native.lz4Compress('abc' as unknown as Buffer), /'src' must be a Buffer/);
    assert.throws(() => native.lz4DecompressInto(Buffer.alloc(1), new Uint16Array(4) as unknown as Buffer), /'dst'/);
    assert.throws(() => (native.lz4DecompressInto as (...a: unknown[]) => number)(), /'src'/);
  });
});

describe('zstd', () => {
  for (const { label, data } of inputs) {
    it(`round trips ${label}`, () => {
      const c = native.zstdCompress(data, 3);
      assert.equal(c.readUInt32LE(0), 0xfd2fb528, 'standard zstd frame magic');
      const out = Buffer.alloc(data.length);
      assert.equal(native.zstdDecompressInto(c, out), data.length);
      assert.ok(out.equals(data));
    });
  }

  it('supports levels, including the default and negative ones', () => {
    const data = text(200_000);
    for (const level of [-5, 1, 3, 19, undefined]) {
      const c = native.zstdCompress(data, level);
      const out = Buffer.alloc(data.length);
      assert.equal(native.zstdDecompressInto(c, out), data.length);
      assert.ok(out.equals(data));
    }
    assert.throws(() => native.zstdCompress(data, 1000), /'level' must be an integer/);
    assert.throws(() => native.zstdCompress(data, 1.5), /'level'/);
  });

  it('throws when the destination is too small', () => {
    const c = native.zstdCompress(text(4096), 1);
    assert.throws(() => native.zstdDecompressInto(c, Buffer.alloc(4095)), /zstd: Destination buffer is too small/);
  });

  it('throws on corrupt, truncated and empty input', () => {
    const c = native.zstdCompress(text(65536), 3);
    const out = Buffer.alloc(65536);
    assert.throws(() => native.zstdDecompressInto(c.subarray(0, c.length - 3), out), /zstd:/);
    assert.throws(() => native.zstdDecompressInto(noise(1000), out), /zstd: Unknown frame descriptor|zstd:/);
    assert.throws(() => native.zstdDecompressInto(Buffer.alloc(0), out), /zstd:/);
    const flipped = Buffer.from(c);
    flipped[flipped.length >> 1] ^= 0x55;
    flipped[(flipped.length >> 1) + 1] ^= 0xaa;
    try {
      // Flipped bits may still decode (zstd frames carry no checksum by default), but never crash.
      native.zstdDecompressInto(flipped, out);
    } catch (e) {
      assert.match((e as Error).message, /zstd:/);
    }
  });
});
