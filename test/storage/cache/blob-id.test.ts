// Cache files are named after blob ids, which come from the (untrusted) bootstrap: an id that is not a plain file
// name must fail the reads of that blob with a clear error, never create or read files outside work_dir.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadBootstrap } from '../../../src/rafs/bootstrap.js';
import { BlobDevice } from '../../../src/storage/device.js';
import { localfsDirConfig } from '../../../src/config/parse.js';
import { createBackend } from '../../../src/storage/backend/factory.js';
import { buildImage, mixedBytes, tempDir, type BuiltImage } from '../../nydusd/helpers.js';

describe('blob ids that cannot name a cache file', () => {
  let work: string;
  let img: BuiltImage;

  before(() => {
    work = tempDir('blob-id');
    const src = path.join(work, 'src');
    mkdirSync(src, { recursive: true });
    writeFileSync(path.join(src, 'file'), mixedBytes(200_000, 3));
    img = buildImage(src, path.join(work, 'image'), { version: 6, compressor: 'zstd', chunkSize: '0x10000' });
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  for (const id of ['../escaped', '..', '.hidden', 'a/b', '', 'x'.repeat(256)]) {
    it(`refuses ${JSON.stringify(id.length > 20 ? `${id.slice(0, 8)}... (${id.length})` : id)} and writes nothing`, async () => {
      const bootstrap = loadBootstrap(img.bootstrap);
      const blobs = bootstrap.blobs.map((b) => ({ ...b, blobId: id }));
      const workDir = path.join(work, 'cache', String(id.length));
      const backend = await createBackend(localfsDirConfig(img.blobDir).backend);
      const device = new BlobDevice(blobs, {
        backend, workDir, useBlobMeta: true, amplifyIo: 0, validateFetch: false, validateCache: false, digester: bootstrap.superblock.digester,
      });
      const chunk = { ...bootstrap.chunks(bootstrap.lookup(bootstrap.superblock.rootIno, Buffer.from('file'))!.ino)[0]! };
      await assert.rejects(device.read([{ chunk, start: 0, end: 10 }]), /which cannot name a cache file/);
      await device.close();
      assert.deepEqual(readdirSync(workDir), []);
      assert.equal(existsSync(path.join(work, 'cache', 'escaped.blob.data')), false);
    });
  }
});
