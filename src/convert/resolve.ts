// A reference -> one image manifest and its config: an index or manifest list is resolved to the entry of the
// wanted platform (anchors.md 5.1; the reference's --platform), and every document is checked against its digest.
import { isIndex, isManifest } from './media-types.js';
import {
  parseConfig, parseIndex, parseJson, parseManifest, platformName, sha256Digest, type ImageConfig, type Manifest, type Platform,
} from './image-json.js';
import type { ImageRef } from './image-store.js';

export interface ResolvedImage {
  manifest: Manifest;
  manifestMediaType: string;
  manifestDigest: string;
  config: ImageConfig;
  configBody: Buffer;
}

export async function resolveImage(image: ImageRef, platform: Platform): Promise<ResolvedImage> {
  const what = `${image.store.description}:${image.ref}`;
  let answer = await image.store.getManifest(image.ref);
  if (image.ref.startsWith('sha256:') && answer.digest !== image.ref) throw new Error(`${what}: manifest digest is ${answer.digest}`);
  let mediaType = answer.mediaType || mediaTypeOf(answer.body, what);
  if (isIndex(mediaType)) {
    const index = parseIndex(answer.body, `${what} index`);
    const entry = index.manifests.find(
      (m) => m.platform?.os === platform.os && m.platform.architecture === platform.architecture &&
        (platform.variant === undefined || m.platform.variant === platform.variant),
    );
    if (!entry) {
      const have = index.manifests.map((m) => (m.platform ? platformName(m.platform) : '?')).join(', ');
      throw new Error(`${what}: no manifest for platform ${platformName(platform)} (the index has: ${have || 'none'})`);
    }
    answer = await image.store.getManifest(entry.digest);
    if (answer.digest !== entry.digest) throw new Error(`${what}: manifest ${entry.digest} arrived as ${answer.digest}`);
    mediaType = entry.mediaType;
  }
  if (!isManifest(mediaType)) throw new Error(`${what}: unsupported manifest media type '${mediaType}'`);
  const manifest = parseManifest(answer.body, `${what} manifest`);
  const configBody = await readSmallBlob(image, manifest.config.digest, manifest.config.size);
  const config = parseConfig(configBody, `${what} config`);
  return { manifest, manifestMediaType: mediaType, manifestDigest: answer.digest, config, configBody };
}

function mediaTypeOf(body: Buffer, what: string): string {
  const o = parseJson(body, what);
  if (typeof o.mediaType === 'string') return o.mediaType;
  if (Array.isArray(o.manifests)) return 'application/vnd.oci.image.index.v1+json';
  return 'application/vnd.oci.image.manifest.v1+json';
}

/** A config or other small JSON blob, read whole and verified. */
export async function readSmallBlob(image: ImageRef, digest: string, size: number): Promise<Buffer> {
  if (size > 64 * 1024 * 1024) throw new Error(`${image.store.description}: blob ${digest} of ${size} bytes is too large for a JSON document`);
  const parts: Buffer[] = [];
  for await (const c of await image.store.getBlob(digest)) parts.push(c as Buffer);
  const body = Buffer.concat(parts);
  if (sha256Digest(body) !== digest || body.length !== size) {
    throw new Error(`${image.store.description}: blob ${digest} is corrupt: it hashes to ${sha256Digest(body)} (${body.length} bytes, expected ${size})`);
  }
  return body;
}
