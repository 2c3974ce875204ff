// The registry backend (nydusd-runtime.md 2.4, 7.2): blob ranges by ranged GET of `/v2/<repo>/blobs/sha256:<id>`,
// through RegistryClient (authentication) and the per-blob redirect cache (redirect.ts). The answer must be exactly
// the bytes asked for: a 206 whose Content-Range names that range and a body of that length. A 200 with the whole blob,
// a short or long body, or a missing or wrong Content-Range is a BackendError, never served (issue 11). Retries are a
// decorator (retry.ts); the exchange's timeout is the HTTP client's (7.1), so no timeout decorator goes around this.
import type { RegistryConfig } from '../../../config/model.js';
import type { Log } from '../../../log.js';
import { BLOB_ID, type BlobBackend, type ReadKind } from '../blob-backend.js';
import { BackendError, NetworkError, errorCode, type BackendErrorCode } from '../errors.js';
import { readExactly } from '../http/body.js';
import { HttpClient, type HttpResponse, type HttpTransport } from '../http/client.js';
import { ProxyTransport } from '../http/proxy.js';
import { RegistryClient } from './client.js';
import { checkCredential } from './credential.js';
import { RedirectCache } from './redirect.js';

export interface RegistryBackendOptions {
  /** the credential when the configuration has no `auth` (IMAGE_PULL_AUTH, 1.6); checked like `auth` */
  envCredential?: string;
  /**
   * The transport registry and redirect requests go through, built around the direct client. Token requests always
   * use `direct` (7.3). Default: the proxy transport of proxy mode (7.5; direct while no proxy URL is set).
   */
  route?: (direct: HttpClient) => HttpTransport;
  /** injected for tests: the proxy health check's ping (http/proxy-health.ts) */
  ping?: (url: URL, signal: AbortSignal) => Promise<number>;
  log?: Log;
}

function isSuccess(status: number): boolean {
  return status >= 200 && status < 400;
}

/** `bytes <first>-<last>/<total or *>` */
const CONTENT_RANGE = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i;

export class RegistryBackend implements BlobBackend {
  readonly kind = 'registry';
  readonly client: RegistryClient;
  readonly redirects = new RedirectCache();
  private readonly http: HttpClient;
  /** proxy mode (7.5), unless a route was given */
  readonly proxy?: ProxyTransport;
  private readonly log?: Log;

  constructor(config: RegistryConfig, opts: RegistryBackendOptions = {}) {
    // credentials are checked first: a bad one is the clearest error there is
    const credential = config.auth?.trim()
      ? checkCredential(config.auth, 'registry.auth')
      : checkCredential(opts.envCredential, 'IMAGE_PULL_AUTH');
    this.http = new HttpClient({
      timeout: config.timeout,
      connectTimeout: config.connect_timeout,
      skipVerify: config.skip_verify,
      caCertFiles: config.ca_cert_files,
    });
    this.log = opts.log;
    if (!opts.route) {
      // always there, so that a proxy_url set later through the API re-routes traffic (DECISIONS.md row 10)
      this.proxy = new ProxyTransport(this.http, {
        proxy: config.proxy,
        network: { timeout: config.timeout, connectTimeout: config.connect_timeout, skipVerify: config.skip_verify, caCertFiles: config.ca_cert_files },
        name: `registry ${config.host}`,
        log: opts.log,
        ping: opts.ping,
      });
    }
    this.client = new RegistryClient({
      scheme: config.scheme,
      host: config.host,
      repo: config.repo,
      credential,
      registryToken: config.registry_token?.trim() || undefined,
      blobUrlScheme: config.blob_url_scheme,
      blobRedirectedHost: config.blob_redirected_host,
      transport: opts.route ? opts.route(this.http) : this.proxy!,
      direct: this.http,
      skipVerify: config.skip_verify,
      log: opts.log,
    });
  }

  private checkId(blobId: string): void {
    if (!BLOB_ID.test(blobId)) throw new BackendError(`registry: blob id ${JSON.stringify(blobId)} cannot name a blob`, blobId, { code: 'ND_ERR_CONFIG' });
  }

  async read(blobId: string, offset: number, length: number, signal?: AbortSignal, into?: Buffer, kind?: ReadKind, bypassProxy?: boolean): Promise<Buffer> {
    this.checkId(blobId);
    const what = `registry: blob ${blobId} [${offset}, +${length})`;
    if (length === 0) return into?.length === 0 ? into : Buffer.alloc(0);
    const headers = { range: `bytes=${offset}-${offset + length - 1}` };
    try {
      const res = await this.ranged(blobId, headers, { signal, kind, bypassProxy });
      return await this.body(res, offset, length, into, what);
    } catch (err) {
      throw this.wrap(err, what, blobId, signal);
    }
  }

  /** The answer to a range GET: from the cached redirect target, or the registry (and a redirect it names). */
  private async ranged(blobId: string, headers: Record<string, string>, how: Via): Promise<HttpResponse> {
    const cached = this.redirects.get(blobId);
    if (cached) {
      const res = await this.client.direct(cached, { method: 'GET', headers, ...how });
      // 7.2 step 2: 401/403 from the redirect target means the signed URL expired; ask the registry again
      if (res.status !== 401 && res.status !== 403) return res;
      await res.discard();
      this.redirects.drop(blobId);
      this.log?.('debug', `registry: redirect of blob ${blobId} answered ${res.status}; resolving it again`);
    }
    const res = await this.client.request({ method: 'GET', path: `blobs/sha256:${blobId}`, headers, ...how });
    if (res.status < 300 || res.status >= 400) return res;
    return this.followRedirect(blobId, res, headers, how);
  }

  /** 7.2 step 5: follow a 3xx (no Authorization; through the proxy like any request, 7.5), require 200-399, cache the target for this blob. */
  private async followRedirect(blobId: string, res: HttpResponse, headers: Record<string, string>, how: Via): Promise<HttpResponse> {
    const location = res.header('location');
    await res.discard();
    const target = this.client.redirectTarget(location, this.client.url(`blobs/sha256:${blobId}`));
    const answer = await this.client.direct(target, { method: 'GET', headers, ...how });
    if (!isSuccess(answer.status) || (answer.status >= 300 && answer.status < 400)) {
      const text = await answer.text(512).catch(() => '');
      throw new NetworkError(`redirect target ${target.protocol}//${target.host} answered ${answer.status}${snippet(text)}`, 'ND_ERR_REDIRECT', { status: answer.status });
    }
    this.redirects.set(blobId, target);
    this.log?.('debug', `registry: blob ${blobId} redirected to ${target.protocol}//${target.host}`);
    return answer;
  }

  /** The body of a range answer, checked to be exactly the range (see the file's head). */
  private async body(res: HttpResponse, offset: number, length: number, into: Buffer | undefined, what: string): Promise<Buffer> {
    if (res.status >= 400) {
      const text = await res.text(512).catch(() => '');
      const code: BackendErrorCode = res.status === 401 || res.status === 403 ? 'ND_ERR_AUTH' : 'ND_ERR_STATUS';
      throw new NetworkError(`the registry answered ${res.status}${snippet(text)}`, code, { status: res.status });
    }
    if (res.status !== 206) {
      // a 200 may be the whole blob: not worth reading to the end
      res.abort();
      throw new NetworkError(
        `answered ${res.status} instead of 206 Partial Content${res.status === 200 ? ' (the whole blob, not the range)' : ''}`,
        'ND_ERR_RANGE',
        { status: res.status },
      );
    }
    const cr = res.header('content-range');
    const m = cr ? CONTENT_RANGE.exec(cr.trim()) : null;
    if (!m || Number(m[1]) !== offset || Number(m[2]) !== offset + length - 1) {
      res.abort();
      throw new NetworkError(
        cr ? `Content-Range ${JSON.stringify(cr)} is not bytes ${offset}-${offset + length - 1}` : 'the 206 answer has no Content-Range',
        'ND_ERR_RANGE',
      );
    }
    return readExactly(res.body, length, into, 'the range answer', (err) => res.mapBodyError(err));
  }

  private wrap(err: unknown, what: string, blobId: string, signal?: AbortSignal): unknown {
    // the caller's own abort stays what it is: it is not the backend's failure
    if (signal?.aborted && err === signal.reason) return err;
    if (err instanceof BackendError) return err;
    const code = errorCode(err) ?? 'ND_ERR_SOCKET';
    return new BackendError(`${what}: ${(err as Error).message}`, blobId, { cause: err, code });
  }

  /** The blob's size: HEAD through the same auth and redirect logic (7.2), its Content-Length. */
  async size(blobId: string): Promise<number> {
    this.checkId(blobId);
    const what = `registry: size of blob ${blobId}`;
    try {
      let res = await this.client.request({ method: 'HEAD', path: `blobs/sha256:${blobId}` });
      if (res.status >= 300 && res.status < 400) {
        const location = res.header('location');
        await res.discard();
        res = await this.client.follow(location, { method: 'HEAD' }, this.client.url(`blobs/sha256:${blobId}`));
      }
      await res.discard();
      if (!isSuccess(res.status) || res.status >= 300) {
        throw new NetworkError(`HEAD answered ${res.status}`, res.status === 401 || res.status === 403 ? 'ND_ERR_AUTH' : 'ND_ERR_STATUS', { status: res.status });
      }
      const len = Number(res.header('content-length'));
      if (!Number.isSafeInteger(len) || len < 0) throw new NetworkError('HEAD answered without a valid Content-Length', 'ND_ERR_RANGE');
      return len;
    } catch (err) {
      throw this.wrap(err, what, blobId);
    }
  }

  setCredential(value: string): void {
    let credential: string | undefined;
    try {
      credential = checkCredential(value, 'registry_auth');
    } catch (err) {
      // the store holds what was PUT; the backend keeps its credential rather than use one that cannot work
      this.log?.('warn', `registry: ${(err as Error).message}; the credential in use is kept`);
      return;
    }
    this.client.setCredential(credential ?? '');
  }

  setProxyUrl(url: string): void {
    if (!this.proxy) return;
    try {
      this.proxy.setUrl(url);
    } catch (err) {
      this.log?.('warn', `registry: proxy_url ${JSON.stringify(url)} refused (${(err as Error).message}); the proxy in use (${this.proxy.proxyUrl || 'none'}) stays`);
    }
  }

  setSchedulerEndpoint(endpoint: string): void {
    if (endpoint) this.proxy?.schedulerEndpointSet();
  }

  async close(): Promise<void> {
    await this.client.close();
    await this.proxy?.close();
    await this.http.close();
  }
}

/** How a read's requests travel (7.4, 7.5). */
interface Via {
  signal?: AbortSignal;
  kind?: ReadKind;
  bypassProxy?: boolean;
}

function snippet(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t ? `: ${t.slice(0, 200)}` : '';
}
