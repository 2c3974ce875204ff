// `nydusify convert` (anchors.md 5.3): pull an OCI/Docker image, build one Nydus data blob and bootstrap per
// layer (as `nydus-image create` does from a tar), merge the per-layer bootstraps into one (as `nydus-image
// merge`), and push the blobs as Nydus blob layers, the merged bootstrap as the last layer, a config whose
// rootfs.diff_ids match those layers, and the manifest (media types and annotations of anchors.md 5.2).
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Log } from '../log.js';
import type { Compressor } from '../image-model.js';
import { build } from '../builder/build.js';
import { defaultOptions } from '../builder/context.js';
import { mergeLayers, type MergeLayer } from '../builder/merge.js';
import { parseTarFile } from '../builder/source-tar.js';
import { openBootstrap } from '../rafs/bootstrap.js';
import { downloadBlob } from './blob-transfer.js';
import { writeBootstrapLayer } from './bootstrap-layer.js';
import { decodeLayer } from './layer-decode.js';
import { sha256Digest, type Descriptor, type Manifest, type Platform } from './image-json.js';
import type { ImageRef } from './image-store.js';
import {
  ANNOTATION_FS_VERSION, ANNOTATION_NYDUS_BLOB, ANNOTATION_NYDUS_BOOTSTRAP, ANNOTATION_UNCOMPRESSED, NYDUS_BLOB, OCI_CONFIG,
  OCI_LAYER_GZIP, OCI_MANIFEST, SOURCE_LAYER_TYPES,
} from './media-types.js';
import { resolveImage } from './resolve.js';

export interface ConvertOptions {
  fsVersion: 5 | 6;
  compressor: Compressor;
  chunkSize: number;
  platform: Platform;
  /** scratch space; a fresh directory is made (and removed) inside it */
  workDir: string;
  log: Log;
}

export interface ConvertResult {
  manifest: Manifest;
  manifestDigest: string;
  /** the Nydus blob ids (hex), in layer order */
  blobIds: string[];
  /** bytes pushed: blobs, bootstrap layer, config and manifest */
  pushedBytes: number;
}

interface BuiltLayer {
  bootstrap: Buffer;
  /** the layer's own data blob, absent when the layer stores no file data (only directories, links, ...) */
  blob?: { id: string; path: string; size: number };
}

export async function convertImage(source: ImageRef, target: ImageRef, o: ConvertOptions): Promise<ConvertResult> {
  mkdirSync(o.workDir, { recursive: true });
  const work = mkdtempSync(path.join(o.workDir, 'convert-'));
  try {
    const src = await resolveImage(source, o.platform);
    const { layers } = src.manifest;
    const diffIds = src.config.rootfs.diff_ids;
    if (diffIds.length !== layers.length) {
      throw new Error(`source image: its config lists ${diffIds.length} diff_ids for ${layers.length} layers`);
    }
    o.log('info', `converting ${source.store.description}:${source.ref} (${src.manifestDigest}, ${layers.length} layers)`);
    const built: BuiltLayer[] = [];
    for (const [i, desc] of layers.entries()) built.push(await convertLayer(source, desc, diffIds[i]!, i, work, o));

    const merged = mergeBootstraps(built, work);
    const bootLayer = await writeBootstrapLayer(merged, path.join(work, 'bootstrap.tar'), path.join(work, 'bootstrap.tar.gz'));

    const blobLayers: Descriptor[] = [];
    let pushedBytes = 0;
    for (const b of built) {
      if (!b.blob || blobLayers.some((l) => l.digest === `sha256:${b.blob!.id}`)) continue;
      const digest = `sha256:${b.blob.id}`;
      await target.store.putBlob(digest, b.blob.size, b.blob.path);
      pushedBytes += b.blob.size;
      blobLayers.push({
        mediaType: NYDUS_BLOB,
        digest,
        size: b.blob.size,
        annotations: { [ANNOTATION_UNCOMPRESSED]: digest, [ANNOTATION_NYDUS_BLOB]: 'true' },
      });
    }
    await target.store.putBlob(bootLayer.digest, bootLayer.size, path.join(work, 'bootstrap.tar.gz'));
    pushedBytes += bootLayer.size;
    const bootstrapDesc: Descriptor = {
      mediaType: OCI_LAYER_GZIP,
      digest: bootLayer.digest,
      size: bootLayer.size,
      annotations: {
        [ANNOTATION_UNCOMPRESSED]: bootLayer.diffId,
        [ANNOTATION_NYDUS_BOOTSTRAP]: 'true',
        [ANNOTATION_FS_VERSION]: String(o.fsVersion),
      },
    };

    // The source config is kept but for the layers: rootfs.diff_ids now name the Nydus layers (a Nydus blob is its
    // own uncompressed form); history is dropped, as its entries described the source layers.
    const { history: _history, ...rest } = src.config;
    const config = { ...rest, rootfs: { type: 'layers', diff_ids: [...blobLayers.map((l) => l.digest), bootLayer.diffId] } };
    const configBody = Buffer.from(JSON.stringify(config));
    const configDesc: Descriptor = { mediaType: OCI_CONFIG, digest: sha256Digest(configBody), size: configBody.length };
    const configFile = path.join(work, 'config.json');
    writeFileSync(configFile, configBody);
    await target.store.putBlob(configDesc.digest, configDesc.size, configFile);
    pushedBytes += configBody.length;

    const manifest: Manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: configDesc, layers: [...blobLayers, bootstrapDesc] };
    const manifestBody = Buffer.from(JSON.stringify(manifest));
    await target.store.putManifest(target.ref, OCI_MANIFEST, manifestBody);
    pushedBytes += manifestBody.length;
    const manifestDigest = sha256Digest(manifestBody);
    o.log('info', `pushed ${target.store.description}:${target.ref} (${manifestDigest}): ${blobLayers.length} blob layers and the bootstrap layer`);
    return { manifest, manifestDigest, blobIds: blobLayers.map((l) => l.digest.slice(7)), pushedBytes };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function convertLayer(source: ImageRef, desc: Descriptor, diffId: string, i: number, work: string, o: ConvertOptions): Promise<BuiltLayer> {
  if (!SOURCE_LAYER_TYPES.has(desc.mediaType)) throw new Error(`source layer ${i} (${desc.digest}): unsupported media type '${desc.mediaType}'`);
  const blobFile = path.join(work, `layer-${i}.blob`);
  const tarFile = path.join(work, `layer-${i}.tar`);
  await downloadBlob(source.store, desc, blobFile);
  const { diffId: got, compression } = await decodeLayer(blobFile, tarFile);
  rmSync(blobFile, { force: true });
  if (got !== diffId) throw new Error(`source layer ${i} (${desc.digest}): its uncompressed digest is ${got}, the config says ${diffId}`);
  const { root, files } = parseTarFile(tarFile, `source layer ${i}`);
  const outDir = path.join(work, `blob-${i}`);
  mkdirSync(outDir);
  const options = defaultOptions({ fsVersion: o.fsVersion, compressor: o.compressor, chunkSize: o.chunkSize });
  // each layer alone, its whiteouts kept as entries: the merge below applies them (rafs-format.md 5.5)
  const result = build({ root, options, outputDir: outDir, fileOrder: files.map((n) => n.inode) });
  rmSync(tarFile, { force: true });
  const blob = result.blobId && result.blobPath
    ? { id: result.blobId, path: result.blobPath, size: statSync(result.blobPath).size }
    : undefined;
  o.log('info', `layer ${i} (${compression}, ${desc.size} bytes): ${blob ? `blob ${blob.id}, ${blob.size} bytes` : 'no file data'}`);
  return { bootstrap: result.bootstrap, blob };
}

/** The per-layer bootstraps merged into one (what `nydus-image merge` does), blob ids from each layer's blob. */
function mergeBootstraps(built: BuiltLayer[], work: string): Buffer {
  const layers: MergeLayer[] = built.map((b, i) => ({
    bootstrap: openBootstrap(b.bootstrap, { fileName: b.blob?.id ?? `layer-${i}` }),
    fileName: b.blob?.id ?? `layer-${i}`,
  }));
  const m = mergeLayers(layers);
  const options = defaultOptions({
    fsVersion: m.fsVersion, compressor: m.compressor, digester: m.digester, chunkSize: m.chunkSize, explicitUidGid: m.explicitUidGid,
  });
  const scratch = path.join(work, 'merge');
  mkdirSync(scratch);
  const result = build({ root: m.root, options, outputDir: scratch, parentBlobs: m.blobs });
  if (result.blobPath) throw new Error('merge unexpectedly produced a data blob');
  return result.bootstrap;
}
