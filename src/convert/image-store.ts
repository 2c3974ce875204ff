// Where images live, seen by the converter: one repository of manifests (by tag or digest) and blobs (by
// digest). Two kinds implement it: an OCI image layout directory (oci-layout-store.ts, offline) and a registry
// speaking the Distribution API (registry-store.ts, anchors.md 5.1).
import type { Readable } from 'node:stream';

export interface ManifestAnswer {
  /** the media type the store reports (Content-Type, or the layout's descriptor) */
  mediaType: string;
  body: Buffer;
  /** sha256 of body */
  digest: string;
}

export interface ImageStore {
  /** how the store is named in messages: `oci:/dir` or `host/repo` */
  readonly description: string;
  /** a manifest or index by tag or digest; a missing one is an error naming it */
  getManifest(ref: string): Promise<ManifestAnswer>;
  /** the bytes of a blob, as stored (the caller verifies the digest) */
  getBlob(digest: string): Promise<Readable>;
  hasBlob(digest: string): Promise<boolean>;
  /** stores the file `file` as the blob `digest` of `size` bytes (refused when its bytes do not match) */
  putBlob(digest: string, size: number, file: string): Promise<void>;
  /** stores a manifest and points `ref` (a tag) at it */
  putManifest(ref: string, mediaType: string, body: Buffer): Promise<void>;
}

/** One image: a store and the tag or digest within it. */
export interface ImageRef {
  store: ImageStore;
  ref: string;
}
