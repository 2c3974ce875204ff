// nydusify end to end on OCI image layouts (offline): a real two-layer image built with umoci from this machine's
// files is converted, the result's manifest is checked field by field, `nydusify check` passes against the source
// and fails on a tampered blob, and `nydusify mount` serves a tree identical to the source's (attributes and md5s).
// gzip, zstd and uncompressed sources, RAFS v5 and v6, and the CLI's answers to bad input.
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createGunzip } from 'node:zlib';
import { mountAt } from '../../src/fuse/mountinfo.js';
import { openBootstrap } from '../../src/rafs/bootstrap.js';
import { removeDir, tempDir } from '../nydusd/helpers.js';
import {
  assertMountHasSource, buildSourceImage, layoutBlob, layoutManifest, nydusify, nydusifyOk, NydusifyMount, recompressed, requireTools, sha256, tamper, type SourceImage,
} from './helpers.js';

const NYDUS_BLOB = 'application/vnd.oci.image.layer.nydus.blob.v1';


async function gunzip(b: Buffer): Promise<Buffer> {
  const parts: Buffer[] = [];
  const z = createGunzip();
  z.end(b);
  for await (const c of z) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** The file image/image.boot inside a (plain) tar. */
function bootstrapFromTar(tar: Buffer): Buffer {
  for (let off = 0; off + 512 <= tar.length; ) {
    const name = tar.subarray(off, off + 100).toString('latin1').replace(/\0.*$/s, '');
    const size = parseInt(tar.subarray(off + 124, off + 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
    if (name === '') break;
    if (name === 'image/image.boot') return tar.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error('image/image.boot not found in the bootstrap layer');
}

describe('nydusify on OCI layouts', () => {
  let dir: string;
  let src: SourceImage;
  const mounts: NydusifyMount[] = [];

  before(() => {
    requireTools();
    dir = tempDir('nydusify-layout');
    src = buildSourceImage(dir);
  });

  after(async () => {
    for (const m of mounts) await m.cleanup();
    if (dir) removeDir(dir);
  });

  test('convert pushes Nydus blob layers, the bootstrap as the last layer, a matching config and manifest', async () => {
    const target = path.join(dir, 'nydus');
    const r = await nydusifyOk(['convert', '--source', `oci:${src.layout}:v1`, '--target', `oci:${target}:v1`]);
    const { digest, json: m } = layoutManifest(target, 'v1');
    assert.equal(r.stdout.trim(), digest, 'convert prints the pushed manifest digest');
    assert.equal(m.schemaVersion, 2);
    assert.equal(m.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    const srcLayers = layoutManifest(src.layout, 'v1').json.layers as unknown[];
    assert.equal(srcLayers.length, 2, 'the source has two layers');
    assert.equal(m.layers.length, 3, 'two blob layers and the bootstrap layer');
    for (const l of m.layers.slice(0, 2)) {
      assert.equal(l.mediaType, NYDUS_BLOB);
      assert.deepEqual(l.annotations, { 'containerd.io/uncompressed': l.digest, 'containerd.io/snapshot/nydus-blob': 'true' });
      const blob = readFileSync(layoutBlob(target, l.digest));
      assert.equal(sha256(blob), l.digest);
      assert.equal(blob.length, l.size);
    }
    const boot = m.layers[2];
    assert.equal(boot.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    const bootGz = readFileSync(layoutBlob(target, boot.digest));
    assert.equal(sha256(bootGz), boot.digest);
    const bootTar = await gunzip(bootGz);
    assert.deepEqual(boot.annotations, {
      'containerd.io/uncompressed': sha256(bootTar),
      'containerd.io/snapshot/nydus-bootstrap': 'true',
      'containerd.io/snapshot/nydus-fs-version': '6',
    });
    // the bootstrap is RAFS v6 and its blob table is exactly the two blob layers
    const bs = openBootstrap(bootstrapFromTar(bootTar));
    assert.equal(bs.superblock.version, 6);
    assert.deepEqual(bs.blobs.map((b) => `sha256:${b.blobId}`).sort(), m.layers.slice(0, 2).map((l: { digest: string }) => l.digest).sort());
    // the config's diff_ids name the Nydus layers; the rest of the source config is kept
    const config = JSON.parse(readFileSync(layoutBlob(target, m.config.digest), 'utf8'));
    assert.equal(m.config.mediaType, 'application/vnd.oci.image.config.v1+json');
    assert.deepEqual(config.rootfs, { type: 'layers', diff_ids: [m.layers[0].digest, m.layers[1].digest, sha256(bootTar)] });
    const srcConfig = JSON.parse(readFileSync(layoutBlob(src.layout, layoutManifest(src.layout, 'v1').json.config.digest), 'utf8'));
    assert.equal(config.architecture, srcConfig.architecture);
    assert.equal(config.os, srcConfig.os);
  });

  test('check passes against the source, then fails naming a tampered blob', async () => {
    const target = path.join(dir, 'nydus');
    const ok = await nydusifyOk(['check', '--source', `oci:${src.layout}:v1`, '--target', `oci:${target}:v1`]);
    const paths = Number(/(\d+) paths identical/.exec(ok.stdout)?.[1]);
    assert.ok(paths > 400, `check compared ${paths} paths: ${ok.stdout}`);
    const alone = await nydusifyOk(['check', '--target', `oci:${target}:v1`]);
    assert.equal(alone.stdout, 'check passed: 2 blobs verified\n', 'without a source: the image alone');

    const copy = path.join(dir, 'tampered');
    cpSync(target, copy, { recursive: true });
    const blobLayer = layoutManifest(copy, 'v1').json.layers[0];
    tamper(layoutBlob(copy, blobLayer.digest));
    const bad = await nydusify(['check', '--source', `oci:${src.layout}:v1`, '--target', `oci:${copy}:v1`]);
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stderr, new RegExp(`blob ${blobLayer.digest} is corrupt: its ${blobLayer.size} bytes hash to sha256:[0-9a-f]{64}`));
    assert.doesNotMatch(bad.stderr, /at .*\.js:\d+/, 'a clear message, no stack trace');
  });

  test('check fails when the tree differs from the source (another image given as source)', async () => {
    const target = path.join(dir, 'nydus');
    // the source's first layer alone is a different tree: what layer 2 deleted is there, what it added is not
    const other = path.join(dir, 'layer1-only');
    cpSync(src.layout, other, { recursive: true });
    const { json: m } = layoutManifest(other, 'v1');
    const cfgFile = layoutBlob(other, m.config.digest);
    const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
    cfg.rootfs.diff_ids = cfg.rootfs.diff_ids.slice(0, 1);
    delete cfg.history;
    const cfgBody = Buffer.from(JSON.stringify(cfg));
    const manifest = { ...m, layers: m.layers.slice(0, 1), config: { ...m.config, digest: sha256(cfgBody), size: cfgBody.length } };
    writeFileSync(layoutBlob(other, sha256(cfgBody)), cfgBody);
    const body = Buffer.from(JSON.stringify(manifest));
    writeFileSync(layoutBlob(other, sha256(body)), body);
    writeFileSync(path.join(other, 'index.json'), JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(body), size: body.length, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }],
    }));
    const bad = await nydusify(['check', '--source', `oci:${other}:v1`, '--target', `oci:${target}:v1`]);
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stderr, /\/data\/doomed\.txt: missing from the Nydus image/);
    assert.match(bad.stderr, /\/data\/layer2\/script\.sh: only in the Nydus image/);
    assert.match(bad.stderr, /\/data\/changed\.txt: differs: .*sha256=/);
  });

  test('mount serves the source tree: attributes, link counts and md5 of every file; SIGINT unmounts', async () => {
    const target = path.join(dir, 'nydus');
    const mnt = path.join(dir, 'mnt');
    const m = new NydusifyMount(['--target', `oci:${target}:v1`], mnt);
    mounts.push(m);
    await m.waitMounted();
    assertMountHasSource(src.rootfs, mnt);
    assert.equal(await m.stop('SIGINT'), 0, m.stderr);
    assert.equal(mountAt(mnt), undefined, 'unmounted after SIGINT');
  });

  for (const variant of [
    { how: 'zstd' as const, args: ['--fs-version', '5', '--compressor', 'lz4_block'], fsVersion: '5' },
    { how: 'none' as const, args: ['--compressor', 'none', '--chunk-size', '0x10000'], fsVersion: '6' },
  ]) {
    test(`a ${variant.how === 'none' ? 'uncompressed' : variant.how} source converts (${variant.args.join(' ')}) and checks`, async () => {
      const source = recompressed(src.layout, path.join(dir, `src-${variant.how}`), variant.how);
      const types = (layoutManifest(source, 'v1').json.layers as Array<{ mediaType: string }>).map((l) => l.mediaType);
      assert.deepEqual(types, Array(2).fill(variant.how === 'zstd' ? 'application/vnd.oci.image.layer.v1.tar+zstd' : 'application/vnd.oci.image.layer.v1.tar'));
      const target = path.join(dir, `nydus-${variant.how}`);
      await nydusifyOk(['convert', '--source', `oci:${source}:v1`, '--target', `oci:${target}:v1`, ...variant.args]);
      const boot = layoutManifest(target, 'v1').json.layers.at(-1);
      assert.equal(boot.annotations['containerd.io/snapshot/nydus-fs-version'], variant.fsVersion);
      const ok = await nydusifyOk(['check', '--source', `oci:${source}:v1`, '--target', `oci:${target}:v1`]);
      assert.match(ok.stdout, /check passed: 2 blobs verified, \d+ paths identical to the source/);
    });
  }

  test('bad input: clear one-line errors and exit statuses', async () => {
    const noTarget = await nydusify(['convert', '--source', `oci:${src.layout}:v1`]);
    assert.equal(noTarget.status, 2);
    assert.match(noTarget.stderr, /^error: convert: the option '--target' is required\n/);
    const unknown = await nydusify(['frobnicate']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown command 'frobnicate'/);
    const badFs = await nydusify(['convert', '--source', 'a', '--target', 'b', '--fs-version', '7']);
    assert.equal(badFs.status, 2);
    assert.match(badFs.stderr, /invalid fs version '7'/);
    const missingTag = await nydusify(['convert', '--source', `oci:${src.layout}:nope`, '--target', `oci:${dir}/x:v1`]);
    assert.equal(missingTag.status, 1);
    assert.equal(missingTag.stderr.trim().split('\n').at(-1), `Error: oci:${src.layout}: no manifest tagged 'nope'`);
    const notLayout = await nydusify(['check', '--target', `oci:${dir}/does-not-exist:v1`]);
    assert.equal(notLayout.status, 1);
    assert.match(notLayout.stderr, /is not an OCI image layout/);
    const badRef = await nydusify(['convert', '--source', 'Bad Ref', '--target', `oci:${dir}/x:v1`]);
    assert.equal(badRef.status, 1);
    assert.match(badRef.stderr, /invalid reference 'Bad Ref'/);
  });
});
