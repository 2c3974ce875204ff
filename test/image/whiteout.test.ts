// Three OCI layers with deletions and opaque directories, built one by one with `--whiteout-spec none`
// (as nydus-snapshotter does) and merged, must show what the kernel's overlayfs shows when the same
// layers (whiteouts converted to overlayfs form) are stacked as lowerdirs.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { native } from '../../src/native/index.js';
import {
  cleanup, diffSnapshots, loadImageFile, nydusImageOk, prng, requireTool, run, snapshotDisk, snapshotImage,
  tempDir, writeCacheFiles, type Snapshot,
  unmountAll,
  withoutDirSizes,
} from './helpers.js';

type Layer = Record<string, string | { dir: true } | { hardlinkTo: string } | { xattr: [string, string]; data: string }>;

const big = (seed: number) => {
  const r = prng(seed);
  return Buffer.from(Array.from({ length: 3 * 4096 + 77 }, () => Math.floor(r() * 256))).toString('latin1');
};

const LAYERS: Layer[] = [
  {
    'a/x': 'x1', 'a/y': { xattr: ['user.layer', '1'], data: 'y1' }, 'a/sub/z': 'z1', b: 'b1', 'c/1': 'c1', 'c/2': 'c2',
    d: 'd1', 'e/k': 'k1', h1: 'hardlinked', h2: { hardlinkTo: 'h1' }, keep: 'keep', big: big(1), 'deep/er/path/file': 'deep',
  },
  {
    'a/.wh.x': '', '.wh.b': '', 'c/.wh..wh..opq': '', 'c/3': 'c3', 'd/new': 'new2', e: 'e2', 'newdir/f': 'f2', 'a/y': 'y2',
    'deep/er/.wh..wh..opq': '', 'deep/er/other': 'o2',
  },
  {
    '.wh.newdir': '', 'c/.wh.3': '', 'c/4': 'c4', 'a/.wh.sub': '', b: { xattr: ['user.layer', '3'], data: 'b3' }, 'a/x': 'x3',
    '.wh.h1': '', 'd/.wh.new': '', '.wh.e': '', 'a/.wh.y': '', 'deep/er/.wh.other': '',
  },
];

function writeLayer(dir: string, layer: Layer): void {
  mkdirSync(dir, { recursive: true });
  for (const [p, v] of Object.entries(layer)) {
    const full = path.join(dir, p);
    mkdirSync(path.dirname(full), { recursive: true });
    if (typeof v === 'string') writeFileSync(full, Buffer.from(v, 'latin1'));
    else if ('dir' in v) mkdirSync(full, { recursive: true });
    else if ('hardlinkTo' in v) linkSync(path.join(dir, v.hardlinkTo), full);
    else {
      writeFileSync(full, v.data);
      run('setfattr', ['-n', v.xattr[0], '-v', v.xattr[1], full]);
    }
  }
}

/** OCI whiteouts -> overlayfs ones: `.wh.<n>` becomes a 0/0 char device, `.wh..wh..opq` the opaque xattr. */
function toOverlayfs(dir: string): void {
  // Replacing entries bumps the directory's mtime; the layer's own mtime is what overlayfs must show.
  const st = statSync(dir);
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, name.name);
    if (name.name === '.wh..wh..opq') {
      rmSync(full);
      run('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', dir]);
    } else if (name.name.startsWith('.wh.')) {
      rmSync(full);
      run('mknod', [path.join(dir, name.name.slice(4)), 'c', '0', '0']);
    } else if (name.isDirectory()) {
      toOverlayfs(full);
    }
  }
  utimesSync(dir, st.atime, st.mtime);
}


describe('OCI whiteouts: merge equals overlayfs', () => {
  let work: string;
  let overlay: Snapshot;
  const mounts: string[] = [];

  before(() => {
    for (const t of ['tar', 'mount', 'umount', 'setfattr', 'getfattr', 'mknod']) requireTool(t);
    assert.equal(process.getuid?.(), 0, 'overlay and erofs mounts need root (CI runs as root)');
    work = tempDir('whiteout');
    LAYERS.forEach((l, i) => {
      const d = path.join(work, `layer${i}`);
      writeLayer(d, l);
      run('tar', ['--format=pax', '--xattrs', '--xattrs-include=*', '-cf', path.join(work, `layer${i}.tar`), '-C', d, '.']);
    });
    // The reference: the same tars extracted, whiteouts converted, stacked by the kernel.
    const lowers = LAYERS.map((_, i) => {
      const d = path.join(work, `ovl${i}`);
      mkdirSync(d);
      run('tar', ['--xattrs', '--xattrs-include=*', '-xpf', path.join(work, `layer${i}.tar`), '-C', d]);
      toOverlayfs(d);
      return d;
    });
    const mnt = path.join(work, 'ovl-mnt');
    mkdirSync(mnt);
    run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${[...lowers].reverse().join(':')}`, mnt]);
    mounts.push(mnt);
    overlay = withoutDirSizes(snapshotDisk(mnt, { content: true, mtime: true }));
    run('umount', [mnt]);
    mounts.pop();
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
