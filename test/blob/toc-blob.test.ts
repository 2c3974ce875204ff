import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { texture } from '../helpers/paths.js';
import { readTrailer } from '../../src/blob/trailer.js';
import { extractBootstrap, readToc } from '../../src/blob/inline.js';
import { openBootstrap, loadBootstrap } from '../../src/rafs/bootstrap.js';
import { walk } from '../../src/rafs/walk.js';
import { decompress } from '../../src/compress.js';
import { sha256 } from '../../src/digest.js';
import { Compressor } from '../../src/image-model.js';
import { readFile } from '../rafs/helpers/file-data.js';

const NAME = '2fa78cad554b75ac91a4a125ed148d0ddeb25efa4aaa8bd80e5dc292690a4dca';
const blobFile = texture('toc', NAME);
const blob = readFileSync(blobFile);

test('toc blob: tar records walked backwards', () => {
  assert.deepEqual(readTrailer(blob), [
    { name: 'image.blob', offset: 0, size: 2829 },
    { name: 'blob.meta', offset: 3341, size: 4144 },
    { name: 'image.boot', offset: 7997, size: 501 },
    { name: 'rafs.blob.toc', offset: 9010, size: 512 },
  ]);
  const toc = readToc(blob)!;
  assert.deepEqual(toc.map((e) => e.name), ['image.blob', 'blob.meta', 'blob.meta.header', 'image.boot']);
  assert.equal(sha256(blob.subarray(9010)).toString('hex').slice(0, 8), '4fdfbb36');
  assert.equal(sha256(blob).toString('hex'), NAME);
});

test('toc blob: inlined bootstrap extracts, parses, and its files read with valid digests', () => {
  const boot = extractBootstrap(blob);
  assert.equal(boot.length, 20480);
  const direct = openBootstrap(boot);
  // the id recorded inside is the sha256 of the blob prefix before image.boot (an older builder)
  assert.equal(direct.blobs[0].blobId, sha256(blob.subarray(0, 7997)).toString('hex'));
  const bs = loadBootstrap(blobFile);
  assert.equal(bs.blobs[0].blobId, NAME, 'pre-2.2 blob of an extracted bootstrap is named after the file');
  const files: string[] = [];
  walk(bs, (p, inode) => {
    if ((inode.mode & 0o170000) !== 0o100000) return;
    files.push(p.toString());
    assert.equal(readFile(bs, inode.ino, () => blob).length, inode.size);
  });
  assert.deepEqual(files, ['/error.rs', '/lib.rs', '/logger.rs']);
});

test('zstd fixture decompresses to the toc blob', () => {
  const z = readFileSync(texture('zstd', `${NAME}.zst`));
  assert.ok(decompress(Compressor.Zstd, z, blob.length).equals(blob));
});

test('extractBootstrap: blobs without an inlined bootstrap fail clearly', () => {
  const plain = readFileSync(texture('blobs', 'be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef'));
  assert.throws(() => extractBootstrap(plain), /without an image.boot entry/);
  assert.throws(() => extractBootstrap(Buffer.alloc(100)), /no inlined bootstrap/);
  const bad = Buffer.from(blob);
  bad[7997 + 10] ^= 0xff;
  assert.throws(() => extractBootstrap(bad), /zstd|sha256|image.boot/i);
});
