import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';

import { compress, compressorName, decompress, decompressAsync, parseCompressor } from '../../src/compress.js';
import { Compressor } from '../../src/image-model.js';
import { noise, SIZES, text } from './data.js';

const ALL = [Compressor.None, Compressor.Lz4Block, Compressor.Zstd, Compressor.Gzip];

describe('compress/decompress', () => {
  for (const algo of ALL) {
    const name = compressorName(algo);
    it(`${name}: round trips every size`, () => {
      for (const n of SIZES) {
        for (const data of [noise(n, n + 7), text(n)]) {
          const c = compress(algo, data);
          assert.ok(decompress(algo, c, n).equals(data), `${name} ${n}`);
        }
      }
    });

    it(`${name}: decodes into a caller buffer`, () => {
      const data = text(10_000);
      const dst = Buffer.alloc(16_384, 0xee);
      const out = decompress(algo, compress(algo, data), data.length, dst);
      assert.equal(out.length, data.length);
      assert.equal(out.buffer, dst.buffer);
      assert.ok(out.equals(data));
      assert.equal(dst[data.length], 0xee, 'nothing written past the uncompressed size');
    });

    it(`${name}: rejects a wrong declared size naming both sizes`, () => {
      const data = text(5000);
      const c = compress(algo, data);
      const re = new RegExp(`${name}`);
      assert.throws(() => decompress(algo, c, 4999), re);
      assert.throws(() => decompress(algo, c, 5001), re);
      assert.throws(() => decompress(algo, c, 5001), /5001/);
    });
  }

  it('names both sizes when the data is shorter than declared', () => {
    const c = compress(Compressor.Zstd, text(5000));
    assert.throws(() => decompress(Compressor.Zstd, c, 6000), /zstd: chunk decodes to 5000 bytes, expected 6000/);
    const l = compress(Compressor.Lz4Block, text(5000));
    assert.throws(() => decompress(Compressor.Lz4Block, l, 6000), /lz4_block: chunk decodes to 5000 bytes, expected 6000/);
    const g = compress(Compressor.Gzip, text(5000));
    assert.throws(() => decompress(Compressor.Gzip, g, 6000), /gzip: chunk decodes to 5000 bytes, expected 6000/);
  });

  it('rejects corrupt input for every compressor', () => {
    const junk = noise(777);
    for (const algo of [Compressor.Lz4Block, Compressor.Zstd, Compressor.Gzip]) {
      assert.throws(() => decompress(algo, junk, 4096), new RegExp(compressorName(algo).split('_')[0]));
    }
  });

  it('bounds gzip output (no bomb)', () => {
    const bomb = gzipSync(Buffer.alloc(64 << 20));
    assert.throws(() => decompress(Compressor.Gzip, bomb, 4096), /gzip: chunk decodes to more than the expected 4096/);
  });

  it('rejects a too-small destination and a bad size', () => {
    const c = compress(Compressor.Lz4Block, text(100));
    assert.throws(() => decompress(Compressor.Lz4Block, c, 100, Buffer.alloc(99)), /destination of 99 bytes/);
    assert.throws(() => decompress(Compressor.Lz4Block, c, -1), /invalid uncompressed size/);
    assert.throws(() => decompress(9 as Compressor, c, 100), /unknown compressor/);
  });

  it('parses and names compressors', () => {
    for (const algo of ALL) assert.equal(parseCompressor(compressorName(algo)), algo);
    assert.deepEqual(ALL.map(compressorName), ['none', 'lz4_block', 'zstd', 'gzip']);
    assert.throws(() => parseCompressor('lz4'), /unknown compressor 'lz4'/);
  });
});

describe('decompressAsync (libuv pool)', () => {
  for (const algo of ALL) {
    const name = compressorName(algo);
    it(`${name}: decodes like decompress, many in parallel`, async () => {
      const inputs = SIZES.filter((n) => n > 0).map((n) => text(n));
      const outs = await Promise.all(inputs.map((d) => decompressAsync(algo, compress(algo, d), d.length)));
      outs.forEach((o, i) => assert.ok(o.equals(inputs[i]!), `${name} ${inputs[i]!.length}`));
    });
  }

  for (const algo of [Compressor.Lz4Block, Compressor.Zstd]) {
    const name = compressorName(algo);
    it(`${name}: corrupt input and a wrong declared size reject with a message`, async () => {
      const data = text(50_000);
      const c = compress(algo, data);
      await assert.rejects(decompressAsync(algo, Buffer.from('definitely not compressed data at all'), 1000), new RegExp(`^Error: ${name === 'zstd' ? 'zstd' : 'lz4_block'}`));
      await assert.rejects(decompressAsync(algo, c, data.length - 1), /more than the expected|decodes to/);
      await assert.rejects(decompressAsync(algo, c, data.length + 1), /decodes to 50000 bytes, expected 50001/);
    });
  }
});
