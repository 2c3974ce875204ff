// A repository of an OCI Distribution registry as an ImageStore (anchors.md 5.1): manifests by tag or digest, blobs
// by digest (redirects to object storage followed without the registry's credentials), monolithic blob uploads
// (POST an upload session, PUT its Location with ?digest=) and manifest PUTs. Authentication (Basic, the Bearer
// token flow) is the registry client's (src/storage/backend/registry/client.ts), the one way the project does it.
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Log } from '../log.js';
import { RegistryClient } from '../storage/backend/registry/client.js';
import type { HttpResponse } from '../storage/backend/http/client.js';
import { errorCode } from '../storage/backend/errors.js';
import { dockerConfigFile } from './docker-config.js';
import { MANIFEST_ACCEPT } from './media-types.js';
import { sha256Digest } from './image-json.js';
import type { ImageStore, ManifestAnswer } from './image-store.js';

export interface RegistryStoreOptions {
  host: string;
  repository: string;
  /** plain HTTP, or https without certificate verification (the reference's --source-insecure/--target-insecure) */
  insecure: boolean;
  /** base64 user:password (docker-config.ts) */
  credential?: string;
  log?: Log;
}

/** Seconds allowed for one exchange with the registry, body included (large blobs: generous). */
const TIMEOUT_SEC = 600;

export class RegistryStore implements ImageStore {
  readonly description: string;
  readonly client: RegistryClient;

  constructor(readonly o: RegistryStoreOptions) {
    this.description = `${o.host}/${o.repository}`;
    this.client = new RegistryClient({
      // insecure: https without verification first; the client drops to plain HTTP when the registry does not speak TLS
      scheme: 'https',
      host: o.host,
      repo: o.repository,
      credential: o.credential,
      skipVerify: o.insecure,
      timeout: TIMEOUT_SEC,
      connectTimeout: 10,
      log: o.log,
    });
  }

  /** One request through the client; an authentication failure says where nydusify looks for credentials. */
  private async request(req: Parameters<RegistryClient['request']>[0]): Promise<HttpResponse> {
    try {
      return await this.client.request(req);
    } catch (e) {
      const where = errorCode(e) === 'ND_ERR_AUTH' ? ` (nydusify takes credentials from auths."${this.o.host}".auth in ${dockerConfigFile()})` : '';
      throw new Error(`${this.description}: ${(e as Error).message}${where}`);
    }
  }

  private async fail(res: HttpResponse, what: string): Promise<never> {
    const text = (await res.text(512).catch(() => '')).trim().replace(/\s+/g, ' ');
    throw new Error(`${this.description}: ${what} answered ${res.status}${text ? `: ${text}` : ''}`);
  }

  async getManifest(ref: string): Promise<ManifestAnswer> {
    const res = await this.request({ method: 'GET', path: `manifests/${ref}`, headers: { accept: MANIFEST_ACCEPT } });
    if (res.status === 404) {
      await res.discard();
      throw new Error(`${this.description}: no manifest '${ref}' (404)`);
    }
    if (res.status !== 200) return this.fail(res, `GET manifest '${ref}'`);
    const parts: Buffer[] = [];
    for await (const c of res.body) parts.push(c as Buffer);
    const body = Buffer.concat(parts);
    const mediaType = (res.header('content-type') ?? '').split(';')[0]!.trim();
    return { mediaType, body, digest: sha256Digest(body) };
  }

  async getBlob(digest: string): Promise<Readable> {
    let res = await this.request({ method: 'GET', path: `blobs/${digest}` });
    if ([301, 302, 303, 307, 308].includes(res.status)) {
      const location = res.header('location');
      await res.discard();
      res = await this.client.follow(location, { method: 'GET' });
    }
    if (res.status !== 200) return this.fail(res, `GET blob ${digest}`);
    return res.body;
  }

  async hasBlob(digest: string): Promise<boolean> {
    const res = await this.request({ method: 'HEAD', path: `blobs/${digest}` });
    await res.discard();
    if (res.status === 404) return false;
    if (res.status < 400) return true;
    throw new Error(`${this.description}: HEAD blob ${digest} answered ${res.status}`);
  }

  async putBlob(digest: string, size: number, file: string): Promise<void> {
    if (await this.hasBlob(digest)) return;
    const start = await this.request({ method: 'POST', path: 'blobs/uploads/', headers: { 'content-length': '0' } });
    if (start.status !== 202) return this.fail(start, `starting the upload of blob ${digest}`);
    const location = start.header('location');
    await start.discard();
    if (!location) throw new Error(`${this.description}: the upload session for blob ${digest} has no Location`);
    const url = new URL(location, this.client.url('/v2/'));
    url.searchParams.set('digest', digest);
    const res = await this.request({
      method: 'PUT',
      path: url.toString(),
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: () => createReadStream(file),
    });
    if (res.status !== 201) return this.fail(res, `uploading blob ${digest}`);
    await res.discard();
  }

  async putManifest(ref: string, mediaType: string, body: Buffer): Promise<void> {
    const res = await this.request({ method: 'PUT', path: `manifests/${ref}`, headers: { 'content-type': mediaType }, body });
    if (res.status !== 201) return this.fail(res, `PUT manifest '${ref}'`);
    await res.discard();
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
