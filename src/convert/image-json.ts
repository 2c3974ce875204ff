// The JSON documents of an image (OCI image spec: descriptor, manifest, index, config), parsed with checks so a
// malformed document is one clear error naming what is wrong rather than a TypeError later.
import { createHash } from 'node:crypto';

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
}

export interface ImageConfig {
  architecture?: string;
  os?: string;
  rootfs: { type: string; diff_ids: string[] };
  [key: string]: unknown;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

export function sha256Digest(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function checkDigest(d: unknown, what: string): string {
  if (typeof d !== 'string' || !DIGEST.test(d)) throw new Error(`${what}: digest ${JSON.stringify(d)} is not sha256:<64 hex>`);
  return d;
}

function object(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

export function parseJson(body: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new Error(`${what} is not valid JSON: ${(e as Error).message}`);
  }
  return object(v, what);
}

export function parseDescriptor(v: unknown, what: string): Descriptor {
  const o = object(v, what);
  if (typeof o.mediaType !== 'string') throw new Error(`${what} has no mediaType`);
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) throw new Error(`${what} has no valid size`);
  const d: Descriptor = { mediaType: o.mediaType, digest: checkDigest(o.digest, what), size: o.size };
  if (o.annotations !== undefined) d.annotations = stringMap(o.annotations, `${what} annotations`);
  if (o.platform !== undefined) {
    const p = object(o.platform, `${what} platform`);
    if (typeof p.os !== 'string' || typeof p.architecture !== 'string') throw new Error(`${what} platform lacks os or architecture`);
    d.platform = { os: p.os, architecture: p.architecture, ...(typeof p.variant === 'string' ? { variant: p.variant } : {}) };
  }
  return d;
}

function stringMap(v: unknown, what: string): Record<string, string> {
  const o = object(v, what);
  for (const [k, x] of Object.entries(o)) if (typeof x !== 'string') throw new Error(`${what}: ${k} is not a string`);
  return o as Record<string, string>;
}

export function parseManifest(body: Buffer, what: string): Manifest {
  const o = parseJson(body, what);
  if (o.schemaVersion !== 2) throw new Error(`${what}: schemaVersion ${JSON.stringify(o.schemaVersion)} is not 2`);
  if (!Array.isArray(o.layers)) throw new Error(`${what} has no layers array`);
  return {
    schemaVersion: 2,
    ...(typeof o.mediaType === 'string' ? { mediaType: o.mediaType } : {}),
    config: parseDescriptor(o.config, `${what} config descriptor`),
    layers: o.layers.map((l, i) => parseDescriptor(l, `${what} layer ${i}`)),
    ...(o.annotations !== undefined ? { annotations: stringMap(o.annotations, `${what} annotations`) } : {}),
  };
}

export function parseIndex(body: Buffer, what: string): Index {
  const o = parseJson(body, what);
  if (o.schemaVersion !== 2) throw new Error(`${what}: schemaVersion ${JSON.stringify(o.schemaVersion)} is not 2`);
  if (!Array.isArray(o.manifests)) throw new Error(`${what} has no manifests array`);
  return {
    schemaVersion: 2,
    ...(typeof o.mediaType === 'string' ? { mediaType: o.mediaType } : {}),
    manifests: o.manifests.map((m, i) => parseDescriptor(m, `${what} entry ${i}`)),
  };
}

export function parseConfig(body: Buffer, what: string): ImageConfig {
  const o = parseJson(body, what);
  const rootfs = object(o.rootfs, `${what} rootfs`);
  if (!Array.isArray(rootfs.diff_ids)) throw new Error(`${what} has no rootfs.diff_ids`);
  rootfs.diff_ids.forEach((d, i) => checkDigest(d, `${what} diff_id ${i}`));
  return o as ImageConfig;
}

/** `linux/amd64`, `linux/arm64/v8`, or just `amd64` (linux implied, as the reference's --platform takes). */
export function parsePlatform(s: string): Platform {
  const parts = s.split('/');
  if (parts.length === 1 && parts[0] !== '') return { os: 'linux', architecture: parts[0]! };
  if ((parts.length === 2 || parts.length === 3) && parts.every((p) => p !== '')) {
    return { os: parts[0]!, architecture: parts[1]!, ...(parts[2] ? { variant: parts[2] } : {}) };
  }
  throw new Error(`invalid platform '${s}': expected os/arch[/variant], e.g. linux/amd64`);
}

/** This machine's platform in OCI terms (Node's arch names differ for x64 and ia32). */
export function hostPlatform(): Platform {
  const arch = ({ x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[process.arch];
  return { os: 'linux', architecture: arch ?? process.arch };
}

export function platformName(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}
