// The CLI on images made by the real nydus-image: `check` verifies them, `unpack` yields the file
// contents the fixture's own expected-result file lists, and `merge` / `--parent-bootstrap` accept them.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import path from 'node:path';
import { texture } from '../helpers/paths.js';
import { readTarEntries } from '../../src/builder/source-tar.js';
import { cleanup, loadImageFile, nydusImageInProcess, snapshotImage, tempDir } from './helpers.js';

async function ok(args: string[]): Promise<string> {
  const r = await nydusImageInProcess(args);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** md5 of every regular file in a tar (hardlinks resolved), as "md5  /path" lines sorted like md5sum | sort. */
function md5Lines(tarFile: string): string[] {
  const lines: string[] = [];
  const byPath = new Map<string, string>();
  const fd = openSync(tarFile, 'r');
  try {
    readTarEntries(tarFile, tarFile, (e) => {
      const p = '/' + e.path.toString().replace(/\/$/, '');
      if (e.type === '0') {
        const b = Buffer.alloc(e.size);
        if (e.size > 0) readSync(fd, b, 0, e.size, e.dataOffset);
        byPath.set(p, createHash('md5').update(b).digest('hex'));
      } else if (e.type === '1') {
        byPath.set(p, byPath.get('/' + e.linkname.toString())!);
      }
    });
  } finally {
    closeSync(fd);
  }
  for (const [p, m] of byPath) lines.push(`${m}  ${p}`);
  return lines.sort();
}

describe('real nydus-image fixtures', () => {
  let work: string;
  before(() => {
    work = tempDir('fixtures');
  });
  after(() => cleanup(work));

  for (const name of ['sha256-nocompress-repeatable', 'blake3-lz4_block-non_repeatable']) {
    it(`v5 ${name}: check, and unpack gives the md5s of its .result file`, async () => {
      const boot = texture('repeatable', name);
      const blobs = texture('repeatable', 'blobs');
      assert.match(await ok(['check', '-B', boot, '-D', blobs]), /RAFS v5 image OK: 54 entries/);
      const tarFile = path.join(work, `${name}.tar`);
      await ok(['unpack', '-B', boot, '-D', blobs, '-o', tarFile]);
      const expected = readFileSync(texture('repeatable', `${name}.result`), 'utf8')
        .split('\n')
        .filter((l) => /^[0-9a-f]{32}  \//.test(l))
        .sort();
      assert.equal(expected.length, 23);
      assert.deepEqual(md5Lines(tarFile), expected);
    });
  }

  it('v6 rafs-v6-2.2.boot: check, inspect --json', async () => {
    const boot = texture('bootstrap', 'rafs-v6-2.2.boot');
    await ok(['check', '-B', boot, '-D', texture('blobs')]);
    const j = JSON.parse(await ok(['inspect', '-B', boot, '--json']));
    assert.equal(j.superblock.version, 6);
    assert.deepEqual(j.entries.map((e: { path: string }) => e.path), ['/', '/lib.rs', '/sync_io.rs']);
  });

  it('ToC blob with an inlined bootstrap is a complete image for check', async () => {
    const blob = texture('toc', '2fa78cad554b75ac91a4a125ed148d0ddeb25efa4aaa8bd80e5dc292690a4dca');
    assert.match(await ok(['check', '-B', blob]), /3 regular files/);
  });

  it('merge of the v6 fixture as two layers, and a layered build on top of it', async () => {
    const boot = texture('bootstrap', 'rafs-v6-2.2.boot');
    const merged = path.join(work, 'merged.boot');
    await ok(['merge', '-B', merged, boot, boot]);
    await ok(['check', '-B', merged, '-D', texture('blobs')]);
    const bs = loadImageFile(merged);
    assert.equal(bs.blobs.length, 1, 'the same blob twice is one blob table entry');
    const want = snapshotImage(loadImageFile(boot), { blobDir: texture('blobs') }, { content: true });
    assert.deepEqual(snapshotImage(bs, { blobDir: texture('blobs') }, { content: true }), want);

    // A layer on top: same chunk size as the parent, its unchanged chunks are referenced, not stored.
    const blobDir = path.join(work, 'blobs');
    const layered = path.join(work, 'layered.boot');
    const tarFile = path.join(work, 'top.tar');
    await ok(['unpack', '-B', boot, '-D', texture('blobs'), '-o', tarFile]);
    await ok(['create', '-t', 'tar-rafs', '--parent-bootstrap', boot, '-B', layered, '-D', blobDir, tarFile]);
    const top = loadImageFile(layered);
    assert.deepEqual(top.blobs.map((b) => b.blobId), [bs.blobs[0].blobId], 'no new blob: every chunk deduplicated against the parent');
  });
});
