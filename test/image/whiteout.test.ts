// Three OCI layers with deletions and opaque directories, built one by one with `--whiteout-spec none`
// (as nydus-snapshotter does) and merged, must show what the kernel's overlayfs shows when the same
// layers (whiteouts converted to overlayfs form) are stacked as lowerdirs.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { native } from '../../src/native/index.js';
import {
  cleanup, diffSnapshots, loadImageFile, nydusImageOk, requireTool, run, snapshotDisk, snapshotImage,
  tempDir, writeCacheFiles, type Snapshot,
  unmountAll,
  withoutDirSizes,
} from './helpers.js';
import { LAYERS, overlaySnapshot, writeLayerTars } from './oci-layers.js';

describe('OCI whiteouts: merge equals overlayfs', () => {
  let work: string;
  let overlay: Snapshot;
  const mounts: string[] = [];

  before(() => {
    for (const t of ['tar', 'mount', 'umount', 'setfattr', 'getfattr', 'mknod']) requireTool(t);
    assert.equal(process.getuid?.(), 0, 'overlay and erofs mounts need root (CI runs as root)');
    work = tempDir('whiteout');
    writeLayerTars(work);
    overlay = overlaySnapshot(work, { content: true, mtime: true });
  });
  after(() => {
    unmountAll(mounts);
    cleanup(work);
  });

  for (const version of ['6', '5']) {
    it(`v${version}: per-layer builds with --whiteout-spec none, then merge`, () => {
      const out = path.join(work, `v${version}`);
      const blobs = path.join(out, 'blobs');
      const boots = LAYERS.map((_, i) => {
        const boot = path.join(out, `layer${i}.boot`);
        nydusImageOk(['create', '-v', version, '-t', 'tar-rafs', '--whiteout-spec', 'none', '--chunk-size', '0x1000',
          '-B', boot, '-D', blobs, path.join(work, `layer${i}.tar`)]);
        return boot;
      });
      // Whiteouts are kept verbatim in the layer images.
      const layer1 = snapshotImage(loadImageFile(boots[1]), undefined);
      assert.ok(layer1.has('/c/.wh..wh..opq') && layer1.has('/.wh.b'));

      const merged = path.join(out, 'merged.boot');
      nydusImageOk(['merge', '-B', merged, ...boots]);
      nydusImageOk(['check', '-B', merged, '-D', blobs]);
      const bs = loadImageFile(merged);
      const got = withoutDirSizes(snapshotImage(bs, { blobDir: blobs }, { content: true, mtime: true }));
      assert.deepEqual(diffSnapshots(overlay, got), []);

      // Layer 1's files are all deleted by layer 2: its blob is no longer referenced.
      const layerBlobs = boots.map((b) => loadImageFile(b).blobs[0].blobId);
      assert.deepEqual(new Set(bs.blobs.map((b) => b.blobId)), new Set([layerBlobs[0], layerBlobs[2]]));
      assert.deepEqual(bs.blobs.map((b) => b.index), [0, 1]);

      if (version === '6') {
        // The kernel reads the merged image with one cache file per blob.
        const caches = writeCacheFiles(bs, blobs, out);
        const mnt = path.join(out, 'mnt');
        mkdirSync(mnt);
        native.mount(merged, mnt, 'erofs', 1, caches.map((c) => `device=${c}`).join(','));
        mounts.push(mnt);
        const kernel = withoutDirSizes(snapshotDisk(mnt, { content: true, mtime: true }));
        run('umount', [mnt]);
        mounts.pop();
        assert.deepEqual(diffSnapshots(overlay, kernel), []);
      }
    });
  }

  for (const source of ['tar', 'dir']) {
  it(`create --parent-bootstrap applies OCI whiteouts on top of the parent (${source} layers)`, () => {
    const out = path.join(work, `parent-${source}`);
    const blobs = path.join(out, 'blobs');
    let parent: string | undefined;
    LAYERS.forEach((_, i) => {
      const boot = path.join(out, `stack${i}.boot`);
      const input = source === 'tar' ? path.join(work, `layer${i}.tar`) : path.join(work, `layer${i}`);
      nydusImageOk(['create', '--chunk-size', '0x1000', '-B', boot, '-D', blobs,
        ...(parent ? ['--parent-bootstrap', parent] : []), input]);
      parent = boot;
    });
    nydusImageOk(['check', '-B', parent!, '-D', blobs]);
    const got = withoutDirSizes(snapshotImage(loadImageFile(parent!), { blobDir: blobs }, { content: true, mtime: true }));
    assert.deepEqual(diffSnapshots(overlay, got), []);
  });
  }
});
