import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { texture } from '../helpers/paths.js';
import { loadBootstrap, openBootstrap } from '../../src/rafs/bootstrap.js';
import { V6Bootstrap } from '../../src/rafs/v6.js';
import { walk } from '../../src/rafs/walk.js';
import { sha256, digest } from '../../src/digest.js';
import { readTrailer, findRecord } from '../../src/blob/trailer.js';
import { readToc, readTocEntry } from '../../src/blob/inline.js';
import { parseMetaHeader, parseCiTable } from '../../src/blob/meta.js';
import { makeTarHeader } from '../../src/blob/tar-header.js';
import { BlobFeature, Compressor, Digester, RafsError } from '../../src/image-model.js';
import { readFile } from './helpers/file-data.js';

const BLOB_ID = 'be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef';
const bootFile = texture('bootstrap', 'rafs-v6-2.2.boot');
const blob = readFileSync(texture('blobs', BLOB_ID));

test('v6 rafs-v6-2.2.boot: superblocks, device slot and blob table', () => {
  const bs = loadBootstrap(bootFile) as V6Bootstrap;
  assert.equal(bs.superblock.version, 6);
  assert.equal(bs.superblock.rootIno, 128);
  assert.equal(bs.metaBlkaddr, 2);
  assert.equal(bs.superblock.compressor, Compressor.Zstd);
  assert.equal(bs.superblock.digester, Digester.Blake3);
  assert.equal(bs.superblock.explicitUidGid, true);
  assert.equal(bs.superblock.chunkSize, 0x100000);
  assert.equal(bs.superblock.blockSize, 4096);
  const b = bs.blobs[0];
  assert.equal(bs.blobs.length, 1);
  assert.equal(b.blobId, BLOB_ID);
  assert.equal(b.features, BlobFeature.ALIGNED | BlobFeature.INLINED_CHUNK_DIGEST | BlobFeature.HAS_TAR_HEADER | BlobFeature.HAS_TOC | BlobFeature.CAP_TAR_TOC);
  assert.equal(b.compressor, Compressor.Zstd);
  assert.equal(b.chunkCount, 2);
  assert.equal(b.ciOffset, 8314);
  assert.equal(b.ciUncompressedSize, 32);
  assert.equal(b.tocSize, 1024);
  assert.equal(b.mappedBlkaddr, 512);
  assert.ok(bs.hasChunkTable());
});

test('v6 rafs-v6-2.2.boot: tree, lookup, parent and every chunk digest', () => {
  const bs = loadBootstrap(bootFile);
  const seen: string[] = [];
  walk(bs, (p, inode, parent) => {
    seen.push(p.toString());
    assert.equal(parent, 128);
    if ((inode.mode & 0o170000) === 0o100000) {
      const data = readFile(bs, inode.ino, () => blob);
      assert.equal(data.length, inode.size);
      assert.deepEqual(bs.xattrs(inode.ino), new Map());
    }
  });
  assert.deepEqual(seen, ['/', '/lib.rs', '/sync_io.rs']);
  assert.equal(bs.getInode(bs.lookup(128, Buffer.from('lib.rs'))!.ino).size, 16931);
  assert.equal(bs.lookup(128, Buffer.from('sync_io.rs'))!.size, 13400);
  assert.equal(bs.lookup(128, Buffer.from('zzz')), undefined);
  assert.equal(bs.lookup(128, Buffer.from('..')), undefined);
  assert.equal(bs.parentOf(128), 128);
  assert.throws(() => bs.readdir(bs.lookup(128, Buffer.from('lib.rs'))!.ino), RafsError);
});

test('v6 blob be7d77ee: CI table agrees with the chunk table, blob.digest and ToC verify', () => {
  const bs = loadBootstrap(bootFile);
  const info = bs.blobs[0];
  const records = readTrailer(blob);
  assert.deepEqual(records.map((r) => r.name), ['image.blob', 'blob.meta', 'blob.digest', 'rafs.blob.toc']);
  const header = parseMetaHeader(blob.subarray(info.ciOffset + info.ciCompressedSize, info.ciOffset + info.ciCompressedSize + 4096));
  assert.equal(header.ciEntries, info.chunkCount);
  assert.equal(header.ciOffset, info.ciOffset);
  assert.equal(header.features, info.features);
  const ci = parseCiTable(blob.subarray(info.ciOffset, info.ciOffset + info.ciCompressedSize), header.ciEntries, false);
  const byIndex = new Map<number, Buffer>();
  walk(bs, (_p, inode) => {
    if ((inode.mode & 0o170000) !== 0o100000) return;
    for (const c of bs.chunks(inode.ino)) {
      const e = ci[c.index];
      assert.equal(e.compressedOffset, c.compressedOffset);
      assert.equal(e.compressedSize, c.compressedSize);
      assert.equal(e.uncompressedOffset, c.uncompressedOffset);
      assert.equal(e.uncompressedSize, c.uncompressedSize);
      assert.equal(e.compressed, (c.flags & 1) === 1);
      byIndex.set(c.index, c.digest);
    }
  });
  assert.equal(byIndex.size, 2);
  const dig = findRecord(records, 'blob.digest')!;
  const ciOrder = Buffer.concat([0, 1].map((i) => byIndex.get(i)!));
  assert.ok(blob.subarray(dig.offset, dig.offset + dig.size).equals(ciOrder));

  const toc = readToc(blob, records)!;
  assert.deepEqual(toc.map((e) => e.name), ['image.blob', 'blob.meta', 'blob.meta.header', 'blob.digest']);
  for (const e of toc.filter((x) => x.name !== 'image.blob')) readTocEntry(blob, e);
  const imageBlob = findRecord(records, 'image.blob')!;
  assert.ok(sha256(blob.subarray(0, imageBlob.size + 512)).equals(toc[0].digest));
  const tocRec = findRecord(records, 'rafs.blob.toc')!;
  assert.ok(sha256(blob.subarray(tocRec.offset, blob.length)).equals(info.tocDigest));
  assert.equal(blob.length - tocRec.offset, info.tocSize);
  // blob id = sha256 of every byte except the blob.digest payload (rafs-format.md 4.11)
  const id = sha256(Buffer.concat([blob.subarray(0, dig.offset), blob.subarray(dig.offset + dig.size)])).toString('hex');
  assert.equal(id, BLOB_ID);
  assert.ok(makeTarHeader('rafs.blob.toc', 512).equals(blob.subarray(blob.length - 512)));
});

test('v6: a bootstrap cut at its chunk table still resolves chunks, without digests', () => {
  const full = readFileSync(bootFile);
  const v6 = openBootstrap(full) as V6Bootstrap;
  const cut = openBootstrap(full.subarray(0, v6.chunkTableOffset)) as V6Bootstrap;
  assert.equal(cut.hasChunkTable(), false);
  const lib = cut.lookup(128, Buffer.from('lib.rs'))!;
  const [c] = cut.chunks(lib.ino);
  assert.equal(c.blobIndex, 0);
  assert.equal(c.index, 0);
  assert.equal(c.uncompressedOffset, 0);
  assert.equal(c.uncompressedSize, 16931);
  assert.equal(c.digest.length, 0);
  assert.equal(c.compressedSize, 0);
  const [full0] = v6.chunks(lib.ino);
  assert.ok(digest(Digester.Blake3, readFile(v6, lib.ino, () => blob)).equals(full0.digest));
});
