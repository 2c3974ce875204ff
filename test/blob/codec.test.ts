import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeTarHeader, parseTarHeader } from '../../src/blob/tar-header.js';
import { encodeMetaHeader, parseMetaHeader, encodeCiV1, encodeCiV2, parseCiTable, CiTable, CiFlag, type CiEntry } from '../../src/blob/meta.js';
import { encodeToc, parseToc } from '../../src/blob/toc.js';
import { readTrailer } from '../../src/blob/trailer.js';
import { RafsError } from '../../src/image-model.js';

test('tar header: round trip, checksum and GNU base-256 sizes', () => {
  for (const size of [0, 1, 7802, 0o77777777777, 2 ** 40 + 3]) {
    const h = makeTarHeader('blob.meta', size);
    assert.equal(h.length, 512);
    assert.deepEqual(parseTarHeader(h), { name: 'blob.meta', size });
  }
  const h = makeTarHeader('image.boot', 10);
  h[0] ^= 1;
  assert.throws(() => parseTarHeader(h), /checksum/);
  assert.throws(() => parseTarHeader(Buffer.alloc(512)), /magic/);
  assert.throws(() => makeTarHeader('x'.repeat(101), 1), RafsError);
});

test('blob meta header round trip; corrupt magic rejected', () => {
  const h = { features: 0x4000_0001, ciCompressor: 3, ciEntries: 5, ciOffset: 12345, ciCompressedSize: 60, ciUncompressedSize: 80, zranOffset: 0, zranSize: 0, zranCount: 0 };
  const b = encodeMetaHeader(h);
  assert.equal(b.length, 4096);
  assert.deepEqual(parseMetaHeader(b), h);
  b.writeUInt32LE(0, 4092);
  assert.throws(() => parseMetaHeader(b), /magic2/);
});

test('CI v1 and v2 round trips over the bit-field edges', () => {
  const v1: CiEntry[] = [
    { compressedOffset: 0, compressedSize: 100, uncompressedOffset: 0, uncompressedSize: 4096, compressed: true, flags: CiFlag.COMPRESSED, data: 0n },
    { compressedOffset: 2 ** 40 - 1, compressedSize: 1 << 24, uncompressedOffset: 2 ** 44 - 4096, uncompressedSize: 1 << 24, compressed: false, flags: 0, data: 0n },
    { compressedOffset: 0x12_3456_789a, compressedSize: 0x9abcd, uncompressedOffset: 0x0abc_def0_1000, uncompressedSize: 0xfedcb, compressed: true, flags: CiFlag.COMPRESSED, data: 0n },
  ];
  assert.deepEqual(parseCiTable(encodeCiV1(v1), 3, false), v1);
  const v2: CiEntry[] = [
    { compressedOffset: 7, compressedSize: 0, uncompressedOffset: 8192, uncompressedSize: 1, compressed: true, flags: CiFlag.COMPRESSED | CiFlag.BATCH, data: (3n << 32n) | 77n },
    { compressedOffset: 2 ** 40 - 1, compressedSize: (1 << 24) - 1, uncompressedOffset: (2 ** 32 - 1) * 4096, uncompressedSize: 1 << 24, compressed: false, flags: CiFlag.HAS_CRC32, data: 0xdeadbeefn },
  ];
  assert.deepEqual(parseCiTable(encodeCiV2(v2), 2, true), v2);
  // the table is read in place through 32-bit words; one at an odd address (inside a bigger buffer) reads the same
  for (const [bytes, n, isV2, want] of [[encodeCiV1(v1), 3, false, v1], [encodeCiV2(v2), 2, true, v2]] as const) {
    const odd = Buffer.concat([Buffer.from([0xee]), bytes]).subarray(1);
    assert.equal(odd.byteOffset % 4, 1);
    assert.deepEqual(parseCiTable(odd, n, isV2), want);
    const table = new CiTable(odd, n, isV2);
    assert.equal(table.count, n);
    assert.equal(table.uncompressedOffset(n - 1), want[n - 1]!.uncompressedOffset);
  }
  assert.throws(() => parseCiTable(Buffer.alloc(20), 2, false), RafsError);
  assert.throws(() => encodeCiV1([{ ...v1[0], uncompressedOffset: 100 }]), RafsError);
});

test('ToC round trip and trailer walk of a synthetic blob', () => {
  const entries = [
    { flags: 1, name: 'blob.meta', digest: Buffer.alloc(32, 1), compressedOffset: 10, compressedSize: 20, uncompressedSize: 20 },
    { flags: 2, name: 'image.boot', digest: Buffer.alloc(32, 2), compressedOffset: 2 ** 33, compressedSize: 5, uncompressedSize: 4096 },
  ];
  const toc = encodeToc(entries);
  assert.equal(toc.length, 256);
  assert.deepEqual(parseToc(toc), entries);
  assert.throws(() => parseToc(toc.subarray(1)), RafsError);
  const data = Buffer.alloc(33, 9);
  const blob = Buffer.concat([data, makeTarHeader('image.blob', 33), toc, makeTarHeader('rafs.blob.toc', toc.length)]);
  assert.deepEqual(readTrailer(blob), [
    { name: 'image.blob', offset: 0, size: 33 },
    { name: 'rafs.blob.toc', offset: 545, size: 256 },
  ]);
  assert.deepEqual(readTrailer(Buffer.alloc(1000)), []);
  const lying = Buffer.concat([Buffer.alloc(10), makeTarHeader('blob.meta', 5000)]);
  assert.throws(() => readTrailer(lying), /starts before the blob/);
});
