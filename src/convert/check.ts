// `nydusify check`: validates a pushed Nydus image and compares it with its source. The manifest's shape (Nydus
// blob layers, then the bootstrap layer with the annotations of anchors.md 5.2), the config's diff_ids, every
// blob's digest and size, and the bootstrap's blob table against the blob layers; then, given the source image,
// the whole tree (attributes and file digests) of the Nydus image against the source's layers stacked with OCI
// whiteouts. Every problem found is reported; any problem fails the check.
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Log } from '../log.js';
import { applyLayer } from '../builder/overlay.js';
import { parseTarFile } from '../builder/source-tar.js';
import type { TreeNode } from '../builder/tree.js';
import { openBootstrap } from '../rafs/bootstrap.js';
import { unpackToTar } from '../unpack/unpack.js';
import { downloadBlob } from './blob-transfer.js';
import { readBootstrapLayer } from './bootstrap-layer.js';
import { decodeLayer } from './layer-decode.js';
import type { Descriptor, Platform } from './image-json.js';
import type { ImageRef } from './image-store.js';
import {
  ANNOTATION_FS_VERSION, ANNOTATION_NYDUS_BLOB, ANNOTATION_NYDUS_BOOTSTRAP, ANNOTATION_UNCOMPRESSED, DOCKER_LAYER_GZIP, NYDUS_BLOB,
  OCI_LAYER_GZIP, OCI_LAYER_TAR,
} from './media-types.js';
import { resolveImage } from './resolve.js';
import { diffListings, listTree } from './tree-listing.js';

export interface CheckOptions {
  platform: Platform;
  workDir: string;
  log: Log;
}

export interface CheckReport {
  blobs: number;
  /** paths compared with the source (0 without a source) */
  paths: number;
}

export class CheckFailed extends Error {
  constructor(readonly problems: string[]) {
    super(`the Nydus image failed the check:\n  ${problems.join('\n  ')}`);
    this.name = 'CheckFailed';
  }
}

export async function checkImage(target: ImageRef, source: ImageRef | undefined, o: CheckOptions): Promise<CheckReport> {
  mkdirSync(o.workDir, { recursive: true });
  const work = mkdtempSync(path.join(o.workDir, 'check-'));
  const problems: string[] = [];
  try {
    const img = await resolveImage(target, o.platform);
    const layers = img.manifest.layers;
    if (layers.length === 0) throw new CheckFailed(['the manifest has no layers']);
    const boot = layers[layers.length - 1]!;
    const blobLayers = layers.slice(0, -1);
    problems.push(...checkManifestShape(boot, blobLayers));
    const diffIds = img.config.rootfs.diff_ids;
    if (diffIds.length !== layers.length) problems.push(`the config lists ${diffIds.length} diff_ids for ${layers.length} layers`);
    blobLayers.forEach((l, i) => {
      if (diffIds[i] !== undefined && diffIds[i] !== l.digest) problems.push(`layer ${i} (${l.digest}): diff_id is ${diffIds[i]}, a Nydus blob is its own diff`);
    });

    // every blob, verified against its digest and size
    const blobDir = path.join(work, 'blobs');
    mkdirSync(blobDir);
    const fetched = new Set<string>();
    for (const l of blobLayers) {
      try {
        await downloadBlob(target.store, l, path.join(blobDir, l.digest.slice(7)));
        fetched.add(l.digest.slice(7));
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    const bootFile = path.join(work, 'bootstrap.layer');
    let bootstrap: Buffer | undefined;
    try {
      await downloadBlob(target.store, boot, bootFile);
      const tarFile = path.join(work, 'bootstrap.tar');
      bootstrap = await readBootstrapLayer(bootFile, tarFile, `bootstrap layer ${boot.digest}`);
      const tarDigest = await fileDigest(tarFile);
      const bootDiff = diffIds[layers.length - 1];
      if (bootDiff !== undefined && bootDiff !== tarDigest) problems.push(`bootstrap layer: diff_id is ${bootDiff}, its tar is ${tarDigest}`);
      const un = boot.annotations?.[ANNOTATION_UNCOMPRESSED];
      if (un !== undefined && un !== tarDigest) problems.push(`bootstrap layer: ${ANNOTATION_UNCOMPRESSED} is ${un}, its tar is ${tarDigest}`);
    } catch (e) {
      problems.push((e as Error).message);
    }
    if (!bootstrap) throw new CheckFailed(problems);

    const bs = openBootstrap(bootstrap, { fileName: 'image.boot' });
    const fsVersion = boot.annotations?.[ANNOTATION_FS_VERSION];
    if (fsVersion !== undefined && fsVersion !== String(bs.superblock.version)) {
      problems.push(`bootstrap layer: ${ANNOTATION_FS_VERSION} is "${fsVersion}", the bootstrap is RAFS v${bs.superblock.version}`);
    }
    const layerIds = new Set(blobLayers.map((l) => l.digest.slice(7)));
    const tableIds = new Set(bs.blobs.map((b) => b.blobId));
    for (const b of bs.blobs) {
      if (!layerIds.has(b.blobId)) problems.push(`the bootstrap's blob table names blob ${b.blobId}, which no layer carries`);
      const layer = blobLayers.find((l) => l.digest === `sha256:${b.blobId}`);
      if (layer && b.compressedSize > layer.size) problems.push(`blob ${b.blobId}: the bootstrap says ${b.compressedSize} bytes of data, the layer has ${layer.size}`);
    }
    for (const id of layerIds) if (!tableIds.has(id)) problems.push(`layer blob ${id} is not in the bootstrap's blob table`);
    if (problems.length > 0) throw new CheckFailed(problems);

    let paths = 0;
    if (source) {
      const nydusTar = path.join(work, 'nydus.tar');
      unpackToTar(bs, { blobDir }, nydusTar);
      const nydusRoot = parseTarFile(nydusTar, 'the unpacked Nydus image').root;
      // a tar has no entry for its root: the root's attributes come from the bootstrap itself
      const r = bs.getInode(bs.superblock.rootIno);
      nydusRoot.inode = { ...nydusRoot.inode, mode: r.mode, uid: r.uid, gid: r.gid, mtime: r.mtime };
      const actual = listTree(nydusRoot);
      const expected = listTree(await sourceTree(source, o, work));
      paths = expected.size;
      problems.push(...diffListings(expected, actual));
      if (problems.length > 0) throw new CheckFailed(problems);
      o.log('info', `the Nydus image's ${actual.size} paths match the source's ${expected.size} (attributes and file digests)`);
    }
    o.log('info', `${target.store.description}:${target.ref}: manifest, ${blobLayers.length} blobs and the bootstrap are valid`);
    return { blobs: fetched.size, paths };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function checkManifestShape(boot: Descriptor, blobLayers: Descriptor[]): string[] {
  const problems: string[] = [];
  if (boot.annotations?.[ANNOTATION_NYDUS_BOOTSTRAP] !== 'true') {
    problems.push(`the last layer (${boot.digest}) lacks the annotation ${ANNOTATION_NYDUS_BOOTSTRAP}: "true"`);
  }
  if (![OCI_LAYER_GZIP, DOCKER_LAYER_GZIP, OCI_LAYER_TAR].includes(boot.mediaType)) {
    problems.push(`the bootstrap layer has media type '${boot.mediaType}', not a tar layer`);
  }
  const v = boot.annotations?.[ANNOTATION_FS_VERSION];
  if (v !== undefined && v !== '5' && v !== '6') problems.push(`the bootstrap layer's ${ANNOTATION_FS_VERSION} is "${v}", not "5" or "6"`);
  blobLayers.forEach((l, i) => {
    if (l.mediaType !== NYDUS_BLOB) problems.push(`layer ${i} (${l.digest}) has media type '${l.mediaType}', not ${NYDUS_BLOB}`);
    if (l.annotations?.[ANNOTATION_NYDUS_BLOB] !== 'true') problems.push(`layer ${i} (${l.digest}) lacks the annotation ${ANNOTATION_NYDUS_BLOB}: "true"`);
    if (l.annotations?.[ANNOTATION_NYDUS_BOOTSTRAP] === 'true') problems.push(`layer ${i} (${l.digest}) is marked as a bootstrap but is not the last layer`);
  });
  return problems;
}

/** The source image's tree: its layers, verified against the config's diff_ids, stacked with OCI whiteouts. */
async function sourceTree(source: ImageRef, o: CheckOptions, work: string): Promise<TreeNode> {
  const img = await resolveImage(source, o.platform);
  let merged: TreeNode | undefined;
  for (const [i, desc] of img.manifest.layers.entries()) {
    const blobFile = path.join(work, `source-${i}.blob`);
    const tarFile = path.join(work, `source-${i}.tar`);
    await downloadBlob(source.store, desc, blobFile);
    const { diffId } = await decodeLayer(blobFile, tarFile);
    rmSync(blobFile, { force: true });
    if (diffId !== img.config.rootfs.diff_ids[i]) throw new Error(`source layer ${i}: uncompressed digest ${diffId} is not the config's ${img.config.rootfs.diff_ids[i]}`);
    const { root } = parseTarFile(tarFile, `source layer ${i}`);
    // the bottom layer's whiteouts hide nothing: applied onto an empty root they go, as in the merge
    merged = applyLayer(merged ?? { name: root.name, inode: root.inode, children: [] }, root, 'oci');
  }
  if (!merged) throw new Error('the source image has no layers');
  return merged;
}

async function fileDigest(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}
