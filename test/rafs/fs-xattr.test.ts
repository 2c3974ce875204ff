// When RafsFs answers xattr requests at all. The image's HAS_XATTR flag decides, whatever rafs.enable_xattr
// says: an image without xattrs answers ENOSYS, the one answer the kernel keeps (spec nydusd-runtime §9.2),
// so `ls -l` of a huge directory costs no round trip per entry. That is only safe if the flag is set whenever
// an inode carries xattrs, which is checked here for the real nydus-image's fixtures and for our builder.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { FuseError } from '../../src/fuse/filesystem.js';
import { loadBootstrap } from '../../src/rafs/bootstrap.js';
import { RafsFs } from '../../src/rafs/fs.js';
import { SuperFlag, type Bootstrap } from '../../src/image-model.js';
import { walk } from '../../src/rafs/walk.js';
import type { BlobDevice } from '../../src/storage/device.js';
import { projectRoot, texture } from '../helpers/paths.js';
import { cleanup, nydusImageInProcess, run, tempDir } from '../image/helpers.js';
import { listPage } from './helpers/fs-listing.js';

/** xattr requests never touch file data, so the filesystem gets no device */
const NO_DEVICE = {} as BlobDevice;
const SAMPLES = path.join(projectRoot, 'bootstrap-samples');

function hasXattrFlag(bs: Bootstrap): boolean {
  return (bs.superblock.flags & SuperFlag.HAS_XATTR) !== 0n;
}

function inodesWithXattrs(bs: Bootstrap): string[] {
  const out: string[] = [];
  walk(bs, (p, inode) => {
    if (inode.hasXattr && bs.xattrs(inode.ino).size > 0) out.push(p.toString());
  });
  return out;
}

async function errnoOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof FuseError, `expected a FuseError, got ${String(e)}`);
    return e.code;
  }
  return 'no error';
}

async function nodeOf(fs: RafsFs, rel: string): Promise<bigint> {
  let node = 1n;
  for (const part of rel.split('/')) node = (await fs.lookup(node, Buffer.from(part))).nodeId;
  assert.notEqual(node, 0n, `${rel} is in the image`);
  return node;
}

describe('RafsFs xattrs follow the image HAS_XATTR flag', () => {
  const realImages = [
    ['v5, nydus-image 2.x', texture('repeatable', 'sha256-nocompress-repeatable')],
    ['v6, nydus-image 2.2', texture('bootstrap', 'rafs-v6-2.2.boot')],
  ] as const;
  for (const [what, file] of realImages) {
    it(`answers ENOSYS to getxattr and listxattr on an image without xattrs (${what})`, async () => {
      const bs = loadBootstrap(file);
      assert.equal(hasXattrFlag(bs), false, 'the real nydus-image left HAS_XATTR clear');
      assert.deepEqual(inodesWithXattrs(bs), [], 'and indeed no inode carries xattrs');
      const fs = new RafsFs(bs, NO_DEVICE, { amplifyIo: 0 });
      const child = (await listPage(fs, 1n, 0n, true)).find((e) => e.entry !== undefined && e.entry.nodeId !== 0n);
      assert.ok(child?.entry, 'the root has an entry');
      for (const node of [1n, child.entry.nodeId]) {
        assert.equal(await errnoOf(fs.getxattr(node, Buffer.from('security.selinux'))), 'ENOSYS');
        assert.equal(await errnoOf(fs.getxattr(node, Buffer.from('system.posix_acl_access'))), 'ENOSYS');
        assert.equal(await errnoOf(fs.listxattr(node)), 'ENOSYS');
      }
    });
  }

  for (const version of [5, 6]) {
    it(`serves values, ENODATA and lists on an image with xattrs (v${version} sample)`, async () => {
      const bs = loadBootstrap(path.join(SAMPLES, `v${version}-zstd`, 'bootstrap'));
      assert.equal(hasXattrFlag(bs), true);
      const fs = new RafsFs(bs, NO_DEVICE, { amplifyIo: 0 });
      const readme = await nodeOf(fs, 'docs/readme.txt');
      assert.equal((await fs.getxattr(readme, Buffer.from('user.sample'))).toString(), 'hello xattr');
      assert.deepEqual((await fs.listxattr(readme)).map((n) => n.toString()), ['user.sample']);
      assert.equal(await errnoOf(fs.getxattr(readme, Buffer.from('security.selinux'))), 'ENODATA');
      // an inode without xattrs in an image with some: absent, not unsupported
      assert.equal(await errnoOf(fs.getxattr(1n, Buffer.from('user.sample'))), 'ENODATA');
      assert.deepEqual(await fs.listxattr(1n), []);
    });
  }

  describe('our builder sets HAS_XATTR exactly when some inode carries xattrs', () => {
    let work: string;
    before(() => {
      work = tempDir('xattr-flag');
      for (const withXattr of [false, true]) {
        const deep = path.join(work, `src-${withXattr}`, 'a', 'b', 'c');
        mkdirSync(deep, { recursive: true });
        for (let i = 0; i < 50; i++) writeFileSync(path.join(deep, `f${i}`), `${i}\n`);
        // a single xattr, deep down on the last file, is enough to need the flag
        if (withXattr) run('setfattr', ['-n', 'user.only', '-v', 'here', path.join(deep, 'f49')]);
      }
    });
    after(() => cleanup(work));

    for (const version of [5, 6]) {
      for (const withXattr of [false, true]) {
        it(`v${version}, ${withXattr ? 'one xattr deep in the tree' : 'no xattrs'}`, async () => {
          const boot = path.join(work, `boot-${version}-${withXattr}`);
          const r = await nydusImageInProcess(['create', '--fs-version', String(version), '-B', boot, '-D', path.join(work, 'blobs'), path.join(work, `src-${withXattr}`)]);
          assert.equal(r.status, 0, r.stderr);
          const bs = loadBootstrap(boot);
          assert.deepEqual(inodesWithXattrs(bs), withXattr ? ['/a/b/c/f49'] : []);
          assert.equal(hasXattrFlag(bs), withXattr);
        });
      }
    }
  });
});
