import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { texture } from '../helpers/paths.js';
import { parseBlobMetaFile } from '../../src/blob/meta-file.js';
import { BlobFeature, RafsError } from '../../src/image-model.js';
import { CiFlag } from '../../src/blob/meta.js';

const file = readFileSync(texture('zran', '233c72f2b6b698c07021c4da367cfe2dff4f049efbaa885ca0ff760ea297865a.blob.meta'));

test('zran blob.meta cache file: header, 163 v2 entries, 21 contexts, totals', () => {
  const m = parseBlobMetaFile(file);
  assert.equal(m.header.features, BlobFeature.ALIGNED | BlobFeature.INLINED_FS_META | BlobFeature.CHUNK_INFO_V2 | BlobFeature.ZRAN);
  assert.equal(m.table.count, 0xa3);
  assert.equal(m.zranContexts.length, 0x15);
  assert.equal(m.zranContexts.reduce((s, z) => s + z.dict.length, 0), 655360);
  assert.equal(m.table.uncompressedEnd(), 0x16c6000);
  let prev = -1;
  for (let i = 0; i < m.table.count; i++) {
    const e = m.table.entry(i);
    assert.ok(e.flags & CiFlag.ZRAN && e.compressed);
    assert.equal(e.uncompressedOffset % 4096, 0);
    assert.ok(e.uncompressedOffset > prev);
    prev = e.uncompressedOffset;
    const z = m.zranContexts[Number(e.data >> 32n)];
    assert.ok(Number(e.data & 0xffffffffn) + e.uncompressedSize <= z.outLen);
    assert.ok(e.compressedOffset >= z.inOffset && e.compressedOffset + e.compressedSize <= z.inOffset + z.inLen + 1);
  }
});

test('zran blob.meta: wrong length and bad magic are RafsErrors', () => {
  assert.throws(() => parseBlobMetaFile(file.subarray(4096)), RafsError);
  const bad = Buffer.from(file);
  bad[bad.length - 1] ^= 1;
  assert.throws(() => parseBlobMetaFile(bad), /magic2/);
});
