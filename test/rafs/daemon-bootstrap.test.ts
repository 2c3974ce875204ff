import { test } from 'node:test';
import assert from 'node:assert/strict';
import { texture } from '../helpers/paths.js';
import { loadBootstrap } from '../../src/rafs/bootstrap.js';
import { walk } from '../../src/rafs/walk.js';
import { Compressor, RafsError } from '../../src/image-model.js';

test('nydusd_daemon_test_bootstrap: superblock and blob table parse, inode access fails cleanly', () => {
  const bs = loadBootstrap(texture('bootstrap', 'nydusd_daemon_test_bootstrap'));
  assert.equal(bs.superblock.version, 5);
  assert.equal(bs.superblock.compressor, Compressor.None);
  assert.equal(bs.superblock.chunkSize, 0x100000);
  assert.equal(bs.superblock.inodeCount, 16816);
  assert.equal(bs.blobs.length, 1);
  assert.equal(bs.blobs[0].blobId.slice(0, 8), '66b413a7');
  assert.throws(() => bs.getInode(1), (e: unknown) => e instanceof RafsError && /v5 inode 1/.test(e.message));
  assert.throws(() => walk(bs, () => {}), RafsError);
  assert.throws(() => bs.getInode(16833), /no such inode/);
});
