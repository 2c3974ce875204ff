// The Linux EROFS driver is an independent reader of RAFS v6: a bootstrap built by `create` must mount
// (file-backed) and list exactly the source tree; with an uncompressed cache file as its device the
// kernel reads the file contents too.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { native } from '../../src/native/index.js';
import {
  cleanup, diffSnapshots, generateTree, loadImageFile, nydusImageOk, requireTool, run, snapshotDisk,
  tempDir, writeCacheFiles,
  unmountAll,
  withoutDirSizes,
} from './helpers.js';

const MS_RDONLY = 1;

describe('kernel EROFS mount of v6 images', () => {
  let work: string;
  let src: string;
  const mounts: string[] = [];

  before(() => {
    for (const t of ['mount', 'umount', 'setfattr', 'getfattr', 'mknod', 'mkfifo']) requireTool(t);
    assert.equal(process.getuid?.(), 0, 'the kernel mount test needs root (CI runs as root)');
    work = tempDir('kernel');
    src = path.join(work, 'src');
    generateTree(src, { seed: 6, chunkSize: 0x1000, bigDir: 600, largeFiles: 2 });
  });
  after(() => {
    unmountAll(mounts);
    cleanup(work);
  });

  for (const compressor of ['zstd', 'none']) {
    it(`metadata of a ${compressor} image: listing, modes, sizes, links, xattrs`, () => {
      const out = path.join(work, `meta-${compressor}`);
      const boot = path.join(out, 'boot');
      nydusImageOk(['create', '-c', compressor, '--chunk-size', '0x1000', '-B', boot, '-D', path.join(out, 'blobs'), src]);
      const mnt = path.join(out, 'mnt');
      mkdirSync(mnt);
      run('mount', ['-t', 'erofs', '-o', 'ro', boot, mnt]);
      mounts.push(mnt);
      const got = withoutDirSizes(snapshotDisk(mnt, { mtime: true }));
      const want = withoutDirSizes(snapshotDisk(src, { mtime: true }));
      run('umount', [mnt]);
      mounts.pop();
      assert.deepEqual(diffSnapshots(want, got), []);
    });
  }

  it('contents through an uncompressed cache file as the EROFS device', () => {
    const out = path.join(work, 'data');
    const boot = path.join(out, 'boot');
    const blobs = path.join(out, 'blobs');
    nydusImageOk(['create', '--compressor', 'none', '--chunk-size', '0x1000', '-B', boot, '-D', blobs, src]);
    const bs = loadImageFile(boot);
    const caches = writeCacheFiles(bs, blobs, out);
    assert.equal(caches.length, 1);
    const mnt = path.join(out, 'mnt');
    mkdirSync(mnt);
    // mount(8) would put the bootstrap on a loop device, and a loop-backed EROFS refuses a plain file as
    // extra device; mount(2) on the file itself is the file-backed mode where both may be files.
    native.mount(boot, mnt, 'erofs', MS_RDONLY, caches.map((c) => `device=${c}`).join(','));
    mounts.push(mnt);
    const got = withoutDirSizes(snapshotDisk(mnt, { content: true, mtime: true }));
    const want = withoutDirSizes(snapshotDisk(src, { content: true, mtime: true }));
    run('umount', [mnt]);
    mounts.pop();
    assert.deepEqual(diffSnapshots(want, got), []);
    assert.ok([...got.values()].filter((e) => e.md5).length > 600);
  });
});
