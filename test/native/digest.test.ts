import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';

import { crc32c, digest, digesterName, parseDigester, sha256 } from '../../src/digest.js';
import { native } from '../../src/native/index.js';
import { Digester } from '../../src/image-model.js';
import { noise, SIZES, text } from './data.js';

describe('blake3', () => {
  it('matches the known vectors', () => {
    assert.equal(
      native.blake3(Buffer.alloc(0)).toString('hex'),
      'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262',
    );
    assert.equal(
      native.blake3(Buffer.from('abc')).toString('hex'),
      '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85',
    );
  });

  it('is 32 bytes for every size and goes through digest()', () => {
    for (const n of SIZES) {
      const data = noise(n);
      const h = digest(Digester.Blake3, data);
      assert.equal(h.length, 32);
      assert.ok(h.equals(native.blake3(data)));
    }
  });
});

describe('crc32c', () => {
  it('matches the Castagnoli check value', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    assert.equal(crc32c(Buffer.alloc(0)), 0);
    assert.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa);
  });

  it('agrees with a bitwise reference at unaligned lengths and offsets', () => {
    const ref = (data: Uint8Array): number => {
      let c = ~0 >>> 0;
      for (const b of data) {
        c ^= b;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      }
      return ~c >>> 0;
    };
    const data = noise(1000);
    for (const [start, end] of [[0, 1], [1, 8], [3, 17], [5, 1000], [0, 999]]) {
      const view = data.subarray(start, end);
      assert.equal(crc32c(view), ref(view), `bytes ${start}..${end}`);
    }
  });
});

describe('sha256', () => {
  it('equals node:crypto', () => {
    for (const data of [Buffer.alloc(0), text(1), noise(4096), noise(1 << 20)]) {
      const want = createHash('sha256').update(data).digest();
      assert.ok(sha256(data).equals(want));
      assert.ok(digest(Digester.Sha256, data).equals(want));
    }
  });
});

describe('digester names', () => {
  it('round trips and rejects unknown names', () => {
    for (const d of [Digester.Blake3, Digester.Sha256]) assert.equal(parseDigester(digesterName(d)), d);
    assert.throws(() => parseDigester('md5'), /unknown digester 'md5'/);
    assert.throws(() => digesterName(7 as Digester), /unknown digester 7/);
    assert.throws(() => digest(7 as Digester, Buffer.alloc(1)), /unknown digester/);
  });
});
