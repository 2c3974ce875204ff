// Media types and annotations of OCI/Docker images and of Nydus images (anchors.md 5.2: what the nydus
// snapshotter expects of a converted image: blob layers, the bootstrap as the last layer, fs version).

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';

export const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const OCI_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
export const DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
/** layers a source image may carry: plain, gzip and zstd tars (the decoder looks at the bytes, not the type) */
export const SOURCE_LAYER_TYPES = new Set([
  OCI_LAYER_TAR,
  OCI_LAYER_GZIP,
  OCI_LAYER_ZSTD,
  DOCKER_LAYER_GZIP,
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
]);

/** Accept header of a manifest request: every kind we can read. */
export const MANIFEST_ACCEPT = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST].join(', ');

export const NYDUS_BLOB = 'application/vnd.oci.image.layer.nydus.blob.v1';

export const ANNOTATION_NYDUS_BLOB = 'containerd.io/snapshot/nydus-blob';
export const ANNOTATION_NYDUS_BOOTSTRAP = 'containerd.io/snapshot/nydus-bootstrap';
export const ANNOTATION_FS_VERSION = 'containerd.io/snapshot/nydus-fs-version';
export const ANNOTATION_UNCOMPRESSED = 'containerd.io/uncompressed';
/** OCI image layout: the tag of a manifest in index.json */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';

/** The path of the bootstrap inside the bootstrap layer's tar (anchors.md 5.2). */
export const BOOTSTRAP_PATH_IN_LAYER = 'image/image.boot';

export function isIndex(mediaType: string): boolean {
  return mediaType === OCI_INDEX || mediaType === DOCKER_MANIFEST_LIST;
}

export function isManifest(mediaType: string): boolean {
  return mediaType === OCI_MANIFEST || mediaType === DOCKER_MANIFEST;
}
