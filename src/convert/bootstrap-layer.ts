// The bootstrap layer of a Nydus image (anchors.md 5.2): a gzip'ed tar holding the merged bootstrap at
// `image/image.boot`, pushed as the image's last layer. Written reproducibly (fixed times, root-owned) so the same
// bootstrap always makes the same layer digest.
import { closeSync, createReadStream, createWriteStream, openSync, readFileSync, readSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { gunzipTo, readTarEntries } from '../builder/source-tar.js';
import { TarWriter } from '../unpack/tar-writer.js';
import { HashingStream } from './blob-transfer.js';
import { BOOTSTRAP_PATH_IN_LAYER } from './media-types.js';

export interface BootstrapLayer {
  /** digest and size of the gzip'ed layer */
  digest: string;
  size: number;
  /** digest of the tar inside (diff_id, `containerd.io/uncompressed`) */
  diffId: string;
}

/** Writes `bootstrap` as a layer: `tarFile` (kept for its diff_id) and `layerFile` (its gzip). */
export async function writeBootstrapLayer(bootstrap: Buffer, tarFile: string, layerFile: string): Promise<BootstrapLayer> {
  const fd = openSync(tarFile, 'w');
  try {
    const tw = new TarWriter(fd);
    const [dir] = BOOTSTRAP_PATH_IN_LAYER.split('/');
    tw.entry({ path: Buffer.from(`${dir}/`), type: '5', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 });
    tw.entry({ path: Buffer.from(BOOTSTRAP_PATH_IN_LAYER), type: '0', mode: 0o644, uid: 0, gid: 0, size: bootstrap.length, mtime: 0 });
    tw.data(bootstrap);
    tw.pad(bootstrap.length);
    tw.finish();
  } finally {
    closeSync(fd);
  }
  const plain = new HashingStream();
  const packed = new HashingStream();
  await pipeline(createReadStream(tarFile), plain, createGzip(), packed, createWriteStream(layerFile));
  return { digest: packed.digest(), size: packed.bytes, diffId: plain.digest() };
}

/** The bootstrap inside a bootstrap layer file (gzip'ed or plain tar); `tarFile` is scratch space. */
export async function readBootstrapLayer(layerFile: string, tarFile: string, what: string): Promise<Buffer> {
  const fd = openSync(layerFile, 'r');
  const magic = Buffer.alloc(2);
  readSync(fd, magic, 0, 2, 0);
  closeSync(fd);
  let tar = layerFile;
  if (magic[0] === 0x1f && magic[1] === 0x8b) {
    await gunzipTo(layerFile, tarFile);
    tar = tarFile;
  }
  let found: { offset: number; size: number } | undefined;
  readTarEntries(tar, what, (e) => {
    const name = e.path.toString().replace(/^\.?\//, '');
    if (name === BOOTSTRAP_PATH_IN_LAYER && e.type === '0') found = { offset: e.dataOffset, size: e.size };
  });
  if (!found) throw new Error(`${what} has no ${BOOTSTRAP_PATH_IN_LAYER}`);
  return readFileSync(tar).subarray(found.offset, found.offset + found.size);
}
