// The committed sample images in bootstrap-samples/: each lists exactly tree.list, verifies with its
// blob, carries the committed tree's file contents, and scripts/build-samples.sh rebuilds them byte
// for byte.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../helpers/paths.js';
import { Compressor } from '../../src/image-model.js';
import type { Bootstrap } from '../../src/image-model.js';
import { BlobReader } from '../../src/unpack/blob-reader.js';
import { modeString } from '../../src/cli/nydus-image/inspect.js';
import { walk } from '../../src/rafs/walk.js';
import { cleanup, loadImageFile, nydusImageInProcess, requireTool, run, tempDir } from './helpers.js';

const SAMPLES = path.join(projectRoot, 'bootstrap-samples');
const IMAGES = ['v5-none', 'v5-lz4_block', 'v5-zstd', 'v6-none', 'v6-lz4_block', 'v6-zstd'];
const COMPRESSOR: Record<string, Compressor> = { none: Compressor.None, lz4_block: Compressor.Lz4Block, zstd: Compressor.Zstd };

/** The tree.list format of scripts/build-samples.sh, rendered from an image. */
function listing(bs: Bootstrap): string {
  const lines: string[] = [];
  walk(bs, (p, i) => {
    if (p.toString() === '/') return;
    const fmt = i.mode & 0o170000;
    let line = `${modeString(i.mode)} ${fmt === 0o040000 ? '-' : i.size} ${p.toString().slice(1)}`;
    if (fmt === 0o120000) line += ` -> ${bs.readlink(i.ino).toString()}`;
    if (i.hasXattr) {
      const xs = [...bs.xattrs(i.ino)].map(([k, v]) => `${k}="${v.toString()}"`).sort();
      if (xs.length > 0) line += ` [${xs.join(' ')}]`;
    }
    lines.push(line);
  });
  return lines.join('\n') + '\n';
}

describe('bootstrap samples', () => {
  const expected = readFileSync(path.join(SAMPLES, 'tree.list'), 'utf8');
  const digests = new Map<string, string>();

  for (const name of IMAGES) {
    it(`${name} lists tree.list, verifies, and holds the committed contents`, async () => {
      const [v, comp] = name.split('-');
      const dir = path.join(SAMPLES, name);
      const bs = loadImageFile(path.join(dir, 'bootstrap'));
      assert.equal(`v${bs.superblock.version}`, v);
      assert.equal(bs.superblock.compressor, COMPRESSOR[comp]);
      assert.equal(bs.blobs.length, 1);
      assert.deepEqual(readdirSync(path.join(dir, 'blobs')), [bs.blobs[0].blobId]);
      assert.equal(listing(bs), expected);
      const r = await nydusImageInProcess(['check', '-B', path.join(dir, 'bootstrap'), '-D', path.join(dir, 'blobs')]);
      assert.equal(r.status, 0, r.stderr);

      // Every committed file's bytes, and one digest over everything for cross-image comparison.
      const reader = new BlobReader(bs, { blobDir: path.join(dir, 'blobs') });
      const all = createHash('sha256');
      let hardlinks = 0;
      try {
        walk(bs, (p, i) => {
          if ((i.mode & 0o170000) !== 0o100000) return;
          const data = reader.readFile(i.ino, true)!;
          all.update(p).update(data);
          if (i.nlink > 1) hardlinks++;
          const committed = path.join(SAMPLES, 'tree', p.toString());
          if (!['/data/big.bin', '/data/readme-hardlink'].includes(p.toString())) {
            assert.ok(data.equals(readFileSync(committed)), `content of ${p.toString()}`);
          }
        });
      } finally {
        reader.close();
      }
      assert.equal(hardlinks, 2);
      digests.set(name, all.digest('hex'));
    });
  }

  it('all six images hold the same contents', () => {
    // each image's test above records its digest only once its contents checked out: all six must have
    assert.deepEqual([...digests.keys()].sort(), [...IMAGES].sort(), 'images whose contents were not read');
    assert.equal(new Set(digests.values()).size, 1, JSON.stringify([...digests]));
  });

  let work: string | undefined;
  after(() => work && cleanup(work));
  it('scripts/build-samples.sh rebuilds them byte for byte', () => {
    requireTool('setfattr');
    work = tempDir('samples');
    run('bash', [path.join(projectRoot, 'scripts', 'build-samples.sh'), work]);
    assert.equal(readFileSync(path.join(work, 'tree.list'), 'utf8'), expected);
    for (const name of IMAGES) {
      const committed = path.join(SAMPLES, name);
      const rebuilt = path.join(work, name);
      assert.ok(readFileSync(path.join(rebuilt, 'bootstrap')).equals(readFileSync(path.join(committed, 'bootstrap'))), `${name} bootstrap`);
      const blobs = readdirSync(path.join(committed, 'blobs'));
      assert.deepEqual(readdirSync(path.join(rebuilt, 'blobs')), blobs, `${name} blob id`);
      for (const b of blobs) {
        assert.ok(readFileSync(path.join(rebuilt, 'blobs', b)).equals(readFileSync(path.join(committed, 'blobs', b))), `${name} blob`);
      }
    }
  });
});
