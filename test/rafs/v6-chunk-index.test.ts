// The v6 chunk table is indexed by chunk on first use and a record parsed only when a file needs it. Checked
// against an independent reading of the table (every record parsed, keyed by blob and chunk index): a table
// in digest order (as builders write it) resolves every file's chunks to the same records; a record that is
// not first for its key is ignored; a table whose chunk indexes are absurdly sparse is refused with a clear
// error instead of allocating for them.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { openBootstrap } from '../../src/rafs/bootstrap.js';
import { CHUNK_RECORD_SIZE, parseChunkRecord } from '../../src/rafs/chunk-record.js';
import type { ChunkInfo } from '../../src/image-model.js';
import { V6Bootstrap } from '../../src/rafs/v6.js';
import { walk } from '../../src/rafs/walk.js';
import { cleanup, nydusImageInProcess, tempDir } from '../image/helpers.js';

describe('v6 chunk table index', () => {
  let work: string;
  let boot: Buffer;

  before(async () => {
    work = tempDir('v6-chunk-index');
    const src = path.join(work, 'src');
    mkdirSync(src);
    // 300 one-chunk files and one of three 4 KiB chunks: chunk indexes 0..302, digests in no such order
    for (let i = 0; i < 300; i++) writeFileSync(path.join(src, `f${i}`), `content of file ${i}\n`);
    writeFileSync(path.join(src, 'multi'), Buffer.concat([0, 1, 2].map((k) => Buffer.alloc(4096, 0x41 + k))));
    const r = await nydusImageInProcess(['create', '--fs-version', '6', '--chunk-size', '0x1000', '-B', path.join(work, 'boot'), '-D', path.join(work, 'blobs'), src]);
    assert.equal(r.status, 0, r.stderr);
    boot = readFileSync(path.join(work, 'boot'));
  });
  after(() => cleanup(work));

  function tableRecords(bs: V6Bootstrap, buf: Buffer): ChunkInfo[] {
    const out: ChunkInfo[] = [];
    for (let i = 0; i < bs.chunkTableSize / CHUNK_RECORD_SIZE; i++) out.push(parseChunkRecord(buf, bs.chunkTableOffset + i * CHUNK_RECORD_SIZE, `record ${i}`));
    return out;
  }

  function fileChunks(bs: V6Bootstrap): Map<string, ChunkInfo[]> {
    const out = new Map<string, ChunkInfo[]>();
    walk(bs, (p, inode) => {
      if ((inode.mode & 0o170000) === 0o100000) out.set(p.toString(), bs.chunks(inode.ino));
    });
    return out;
  }

  it('resolves every chunk of every file to its record, in a table ordered by digest', () => {
    const bs = openBootstrap(boot) as V6Bootstrap;
    const records = tableRecords(bs, boot);
    assert.equal(records.length, 303);
    assert.ok(records.some((c, i) => i > 0 && c.index < records[i - 1]!.index), 'the table is not in chunk index order');
    const byKey = new Map(records.map((c) => [`${c.blobIndex}/${c.index}`, c]));
    const files = fileChunks(bs);
    assert.equal(files.size, 301);
    assert.equal(files.get('/multi')!.length, 3);
    for (const [file, chunks] of files) {
      for (const c of chunks) {
        const want = byKey.get(`${c.blobIndex}/${c.index}`)!;
        assert.ok(want, `${file}: chunk ${c.index} is in the table`);
        assert.deepEqual({ ...c, fileOffset: 0 }, { ...want, fileOffset: 0 }, file);
      }
    }
  });

  it('takes the first record of a key when the table repeats it', () => {
    const bs0 = openBootstrap(boot) as V6Bootstrap;
    const records = tableRecords(bs0, boot);
    // point the last record at the first record's chunk, with a wrong size: the first one must still win
    const damaged = Buffer.from(boot);
    const last = bs0.chunkTableOffset + (records.length - 1) * CHUNK_RECORD_SIZE;
    damaged.writeUInt32LE(records[0]!.index, last + 72);
    damaged.writeUInt32LE(records[0]!.uncompressedSize + 1, last + 44);
    const bs = openBootstrap(damaged) as V6Bootstrap;
    let seen = 0;
    walk(bs, (p, inode) => {
      if ((inode.mode & 0o170000) !== 0o100000) return;
      let chunks: ChunkInfo[];
      try {
        chunks = bs.chunks(inode.ino);
      } catch (e) {
        // the file whose own record was overwritten has lost it, and says so
        assert.match((e as Error).message, /missing from the chunk table/, p.toString());
        return;
      }
      for (const c of chunks) {
        if (c.index !== records[0]!.index) continue;
        seen++;
        assert.equal(c.uncompressedSize, records[0]!.uncompressedSize);
      }
    });
    assert.equal(seen, 1);
  });

  it('refuses a table whose chunk indexes are absurdly sparse, naming it', () => {
    const bs0 = openBootstrap(boot) as V6Bootstrap;
    const damaged = Buffer.from(boot);
    damaged.writeUInt32LE(0xff_fff0, bs0.chunkTableOffset + 72);
    const bs = openBootstrap(damaged) as V6Bootstrap;
    const anyFile = [...fileChunks(openBootstrap(boot) as V6Bootstrap).keys()][0]!;
    let ino = 0;
    walk(bs, (p, inode) => {
      if (p.toString() === anyFile) ino = inode.ino;
    });
    assert.throws(() => bs.chunks(ino), /v6 chunk table: chunk indexes of its 303 records are too sparse/);
  });
});
