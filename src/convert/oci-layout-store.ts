// An OCI image layout directory (OCI image-layout spec: `oci-layout`, `index.json`, `blobs/sha256/<hex>`) as an
// ImageStore: what `skopeo copy ... oci:DIR:TAG` and umoci write, so conversion runs and is tested offline.
// Tags are the `org.opencontainers.image.ref.name` annotations of index.json's entries.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { ANNOTATION_REF_NAME, OCI_INDEX } from './media-types.js';
import { checkDigest, parseIndex, sha256Digest, type Descriptor, type Index } from './image-json.js';
import type { ImageStore, ManifestAnswer } from './image-store.js';

export class OciLayoutStore implements ImageStore {
  readonly description: string;

  constructor(readonly dir: string) {
    this.description = `oci:${dir}`;
  }

  /** the directory of blob files named by their hex digest: also a localfs backend directory for nydusd */
  get blobDir(): string {
    return path.join(this.dir, 'blobs', 'sha256');
  }

  private blobPath(digest: string): string {
    return path.join(this.blobDir, checkDigest(digest, this.description).slice('sha256:'.length));
  }

  private readIndex(): Index {
    const file = path.join(this.dir, 'index.json');
    if (!existsSync(path.join(this.dir, 'oci-layout'))) throw new Error(`${this.description} is not an OCI image layout (no oci-layout file)`);
    return parseIndex(readFileSync(file), `${this.description} index.json`);
  }

  async getManifest(ref: string): Promise<ManifestAnswer> {
    let desc: Descriptor | undefined;
    const index = this.readIndex();
    if (ref.startsWith('sha256:')) desc = index.manifests.find((m) => m.digest === ref);
    else desc = index.manifests.find((m) => m.annotations?.[ANNOTATION_REF_NAME] === ref);
    if (!desc && ref.startsWith('sha256:') && existsSync(this.blobPath(ref))) {
      // a manifest of an index (a platform's) is a blob without its own index.json entry
      const body = readFileSync(this.blobPath(ref));
      const mt = (JSON.parse(body.toString('utf8')) as { mediaType?: unknown }).mediaType;
      return { mediaType: typeof mt === 'string' ? mt : '', body, digest: sha256Digest(body) };
    }
    if (!desc) throw new Error(`${this.description}: no manifest tagged '${ref}'`);
    const body = this.readBlobFile(desc.digest);
    return { mediaType: desc.mediaType, body, digest: desc.digest };
  }

  private readBlobFile(digest: string): Buffer {
    const p = this.blobPath(digest);
    if (!existsSync(p)) throw new Error(`${this.description}: blob ${digest} is missing`);
    return readFileSync(p);
  }

  async getBlob(digest: string): Promise<Readable> {
    const p = this.blobPath(digest);
    if (!existsSync(p)) throw new Error(`${this.description}: blob ${digest} is missing`);
    return createReadStream(p);
  }

  async hasBlob(digest: string): Promise<boolean> {
    return existsSync(this.blobPath(digest));
  }

  private ensureLayout(): void {
    mkdirSync(this.blobDir, { recursive: true });
    const marker = path.join(this.dir, 'oci-layout');
    if (!existsSync(marker)) writeFileSync(marker, JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    const index = path.join(this.dir, 'index.json');
    if (!existsSync(index)) writeFileSync(index, JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }));
  }

  async putBlob(digest: string, size: number, file: string): Promise<void> {
    this.ensureLayout();
    const dest = this.blobPath(digest);
    if (existsSync(dest) && statSync(dest).size === size) return;
    // written under a temporary name and renamed once its digest is proven, so a blob file is never wrong
    const tmp = `${dest}.tmp-${process.pid}`;
    const hash = createHash('sha256');
    let n = 0;
    const tee = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        n += chunk.length;
        cb(null, chunk);
      },
    });
    await pipeline(createReadStream(file), tee, createWriteStream(tmp));
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== digest || n !== size) throw new Error(`${this.description}: blob ${digest} (${size} bytes) from ${file} is ${got} (${n} bytes)`);
    renameSync(tmp, dest);
  }

  async putManifest(ref: string, mediaType: string, body: Buffer): Promise<void> {
    this.ensureLayout();
    const digest = sha256Digest(body);
    const dest = this.blobPath(digest);
    writeFileSync(`${dest}.tmp-${process.pid}`, body);
    renameSync(`${dest}.tmp-${process.pid}`, dest);
    const indexFile = path.join(this.dir, 'index.json');
    const raw = JSON.parse(readFileSync(indexFile, 'utf8')) as { manifests: Descriptor[] };
    this.readIndex();
    const entry: Descriptor = { mediaType, digest, size: body.length, annotations: { [ANNOTATION_REF_NAME]: ref } };
    raw.manifests = [...raw.manifests.filter((m) => m.annotations?.[ANNOTATION_REF_NAME] !== ref), entry];
    writeFileSync(`${indexFile}.tmp-${process.pid}`, JSON.stringify(raw));
    renameSync(`${indexFile}.tmp-${process.pid}`, indexFile);
  }
}
