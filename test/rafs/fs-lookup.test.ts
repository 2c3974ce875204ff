// RafsFs.lookup on the sample images: a missing name is answered with node id 0 and the image's entry timeout,
// which the kernel keeps as a negative dentry (spec nydusd-runtime §9: negative lookups are cached), never with
// ENOENT, which the kernel forgets at once and asks again for. test/nydusd/negative-entry.test.ts shows the same on
// the real kernel.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';

import { FuseError } from '../../src/fuse/filesystem.js';
import { loadBootstrap } from '../../src/rafs/bootstrap.js';
import { RafsFs } from '../../src/rafs/fs.js';
import type { BlobDevice } from '../../src/storage/device.js';
import { projectRoot } from '../helpers/paths.js';

/** lookup and getattr never touch file data: a device that fails any use proves it. */
const NO_DEVICE = new Proxy({}, { get: (_t, p) => { throw new Error(`lookup used the blob device (${String(p)})`); } }) as BlobDevice;

for (const image of ['v5-zstd', 'v6-zstd']) {
  describe(`RafsFs.lookup on bootstrap-samples/${image}`, () => {
    const bootstrap = loadBootstrap(path.join(projectRoot, 'bootstrap-samples', image, 'bootstrap'));
    const fs = new RafsFs(bootstrap, NO_DEVICE, { amplifyIo: 0 });
    const name = (s: string) => Buffer.from(s);

    it('answers a missing name with node id 0 and a non-zero entry timeout (a negative entry the kernel caches)', async () => {
      const data = await fs.lookup(1n, name('data'));
      assert.notEqual(data.nodeId, 0n, 'data/ exists in the sample');
      for (const [parent, missing] of [[1n, 'no-such-entry'], [data.nodeId, 'no-such-entry'], [1n, 'dat'], [1n, 'data0']] as const) {
        const e = await fs.lookup(parent, name(missing));
        assert.equal(e.nodeId, 0n, `${missing}: node id`);
        assert.ok(e.entryTimeout > 0, `${missing}: entry timeout ${e.entryTimeout} makes the kernel drop the negative entry at once`);
      }
    });

    it('answers names that exist with their inode and attributes, and refuses a lookup below a file', async () => {
      const data = await fs.lookup(1n, name('data'));
      const big = await fs.lookup(data.nodeId, name('big.bin'));
      assert.notEqual(big.nodeId, 0n);
      assert.equal(big.attr.size, 0x100000 + 1000);
      assert.equal(big.attr.ino, big.nodeId);
      assert.ok(big.entryTimeout > 0);
      assert.equal((await fs.lookup(data.nodeId, name('..'))).nodeId, 1n);
      await assert.rejects(fs.lookup(big.nodeId, name('x')), (e: unknown) => e instanceof FuseError && e.code === 'ENOTDIR');
    });
  });
}
