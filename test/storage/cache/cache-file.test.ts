// The cache files of one blob (src/storage/cache/cache-file.ts): what opening does with what an earlier run, another
// layout or an operator left in work_dir, and how a file cut short under a running daemon stops being trusted.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Compressor, Digester, type BlobInfo, type ChunkInfo } from '../../../src/image-model.js';
import { CacheFile } from '../../../src/storage/cache/cache-file.js';
import { ChunkMap } from '../../../src/storage/cache/chunk-map.js';

const ID = 'ab'.repeat(32);
const SIZE = 4 * 4096;

function blob(): BlobInfo {
  return {
    blobId: ID, index: 0, chunkSize: 4096, chunkCount: 4, compressor: Compressor.None, digester: Digester.Blake3, features: 0,
    compressedSize: SIZE, uncompressedSize: SIZE, readaheadOffset: 0, readaheadSize: 0, ciCompressor: Compressor.None, ciOffset: 0,
    ciCompressedSize: 0, ciUncompressedSize: 0, tocSize: 0, tocDigest: Buffer.alloc(32), metaDigest: Buffer.alloc(32), metaSize: 0, mappedBlkaddr: 0,
  } as BlobInfo;
}

function chunk(index: number): ChunkInfo {
  const off = index * 4096;
  return { digest: Buffer.alloc(32), blobIndex: 0, index, flags: 0, compressedOffset: off, compressedSize: 4096, uncompressedOffset: off, uncompressedSize: 4096, fileOffset: 0, crc32: 0 };
}

function workDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'cache-file-'));
}

function logged(): { log: (level: string, msg: string) => void; lines: string[] } {
  const lines: string[] = [];
  return { lines, log: (level, msg) => lines.push(`${level} ${msg}`) };
}

describe('cache files of one blob', () => {
  it('creates the data file sized in full and the chunk map beside it, in the reference names', () => {
    const dir = workDir();
    const f = new CacheFile(blob(), { workDir: dir, compressed: false });
    assert.equal(fs.statSync(path.join(dir, `${ID}.blob.data`)).size, SIZE);
    assert.deepEqual(f.underlyingFiles(), [path.join(dir, `${ID}.blob.data`), path.join(dir, `${ID}.blob.data.chunk_map`)]);
    f.close();
    const raw = new CacheFile(blob(), { workDir: dir, compressed: true });
    assert.equal(raw.dataPath, path.join(dir, `${ID}.blob.raw`));
    // the default layout's file is gone: the shared chunk map could not tell which file its bits describe
    assert.ok(!fs.existsSync(path.join(dir, `${ID}.blob.data`)));
    raw.close();
  });

  it('a data file larger than the blob, or cut short, starts afresh with no chunk ready (and says so)', () => {
    for (const size of [SIZE + 1, SIZE / 2]) {
      const dir = workDir();
      fs.writeFileSync(path.join(dir, `${ID}.blob.data`), Buffer.alloc(size, 7));
      const m = ChunkMap.open(path.join(dir, `${ID}.blob.data.chunk_map`), 4);
      m.markReady([0, 1, 2, 3]);
      m.close();
      const { log, lines } = logged();
      const f = new CacheFile(blob(), { workDir: dir, compressed: false, log });
      assert.equal(f.map!.ready, 0, `size ${size}`);
      assert.equal(fs.statSync(f.dataPath).size, SIZE);
      assert.match(lines.join('\n'), size > SIZE ? /larger than the blob/ : /shorter than the blob/);
      f.close();
    }
  });

  it("takes over nydusd 2.2's chunk map name by a hard link", () => {
    const dir = workDir();
    fs.writeFileSync(path.join(dir, `${ID}.blob.data`), Buffer.alloc(SIZE, 1));
    const legacy = ChunkMap.open(path.join(dir, `${ID}.chunk_map`), 4);
    legacy.markReady([2]);
    legacy.close();
    const f = new CacheFile(blob(), { workDir: dir, compressed: false });
    assert.ok(f.map!.isReady(2) && f.map!.ready === 1);
    assert.equal(fs.statSync(f.mapPath).ino, fs.statSync(path.join(dir, `${ID}.chunk_map`)).ino);
    f.close();
  });

  it('a file cut short while open: the read fails, what lies past the cut is distrusted until written again', async () => {
    const dir = workDir();
    const { log, lines } = logged();
    const f = new CacheFile(blob(), { workDir: dir, compressed: false, log });
    const want = Buffer.alloc(4096, 9);
    fs.writeSync(f.dataFd, want, 0, 4096, 3 * 4096);
    assert.ok((await f.read(chunk(3), 3, 3 * 4096, 4096)).equals(want));
    fs.truncateSync(f.dataPath, 2 * 4096);
    await assert.rejects(f.read(chunk(3), 3, 3 * 4096, 4096), /short read of chunk 3/);
    assert.match(lines.join('\n'), /cut short to 8192 bytes while in use/);
    // chunk 2 lies past the cut too (once anything past the cut is written, the file extends again and chunk 2 would
    // read as zeros): distrusted; chunk 1 ends at the cut
    assert.deepEqual([1, 2, 3].map((i) => f.beyondCut(chunk(i), i)), [false, true, true]);
    fs.writeSync(f.dataFd, want, 0, 4096, 3 * 4096);
    f.written(3);
    assert.deepEqual([1, 2, 3].map((i) => f.beyondCut(chunk(i), i)), [false, true, false]);
    assert.ok((await f.read(chunk(3), 3, 3 * 4096, 4096)).equals(want));
    f.close();
  });
});
