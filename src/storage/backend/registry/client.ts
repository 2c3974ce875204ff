// RegistryClient: requests to one repository of an OCI Distribution registry (nydusd-runtime.md 7.2, anchors.md 5.1),
// with the registry's authentication done for the caller. The registry backend reads blob ranges with it; nydusify pulls
// manifests and pushes blobs and manifests with it. Its API is small and meant to stay:
//
//   const c = new RegistryClient({ scheme: 'http', host: '127.0.0.1:5000', repo: 'library/app', credential });
//   const res = await c.request({ method: 'GET', path: 'manifests/latest', headers: { accept: MEDIA_TYPES } });
//   if (res.status >= 300 && res.status < 400) res2 = await c.follow(res.header('location'), { method: 'GET' });
//   await c.close();
//
// `request` resolves with whatever the registry finally answers (the caller judges the status and must consume or
// discard the body); it rejects with a NetworkError (errors.ts) on transport failures and when authentication cannot
// proceed. Redirects are never followed automatically: a 3xx comes back to the caller, who may `follow` it (without
// Authorization: the registry's credentials never go to a redirect target).
//
// What it does per request (7.2): sends the cached Authorization (none at first, or `Bearer <registry_token>`); on a
// 401 to a request that carried one, resends once without it to get a fresh challenge (Harbor answers expired tokens
// with a Basic challenge); then answers the challenge (Bearer: token service, token.ts; Basic: the credential) and
// resends; a resend answered 200-399 caches that Authorization for all later requests. The first request runs alone
// while the others wait (the first-request gate: a cold start sends one unauthenticated request, not a burst).
import type { Log } from '../../../log.js';
import { NetworkError, errorCode } from '../errors.js';
import { HttpClient, type HttpMethod, type HttpResponse, type HttpTransport, type RequestBody } from '../http/client.js';
import type { ReadKind } from '../blob-backend.js';
import { RegistryAuth, type Authorization } from './auth.js';
import { parseChallenge } from './challenge.js';
import { redirectTarget } from './redirect.js';
import { TokenFetcher } from './token.js';
import { untilAborted } from '../abort.js';

export interface RegistryClientOptions {
  /** 'http' for plain HTTP; anything else is https (2.4) */
  scheme: string;
  /** host[:port] */
  host: string;
  /** repository, e.g. 'library/ubuntu' */
  repo: string;
  /** base64 of user:password (checked by the caller, credential.ts); a secret */
  credential?: string;
  /** a pre-obtained Bearer token, sent from the first request; a secret */
  registryToken?: string;
  /** force this scheme / host onto redirect Locations (2.4 blob_url_scheme, blob_redirected_host) */
  blobUrlScheme?: string;
  blobRedirectedHost?: string;
  /**
   * Where registry and redirect requests go (a proxying transport in proxy mode, 7.5). Default: an HttpClient made from
   * the network options below, closed with this client.
   */
  transport?: HttpTransport;
  /** where token requests go: always directly, never through a proxy (7.3). Default: `transport` */
  direct?: HttpTransport;
  /** network options of the HttpClient made when `transport` is not given */
  timeout?: number;
  connectTimeout?: number;
  skipVerify?: boolean;
  caCertFiles?: string[];
  log?: Log;
}

export interface RegistryRequest {
  method: HttpMethod;
  /**
   * Relative to `/v2/<repo>/` ('manifests/latest', 'blobs/sha256:…', 'blobs/uploads/'), or absolute on the registry:
   * a path starting with '/' ('/v2/') or a full URL (an upload's Location). Only requests to the registry's own
   * origin carry Authorization.
   */
  path: string;
  headers?: Record<string, string>;
  /** resent as is after a 401: bytes, or a function returning a fresh stream each time */
  body?: RequestBody;
  signal?: AbortSignal;
  /** who waits (the Dragonfly priority in proxy mode, 7.5) */
  kind?: ReadKind;
  /** never through a proxy (7.4) */
  bypassProxy?: boolean;
}

/** Statuses that say the first request did not get through authentication (or the registry is struggling). */
function gateStaysClosed(status: number): boolean {
  return status === 401 || status === 403 || status === 407 || status === 429 || status >= 500;
}

export class RegistryClient {
  private scheme: 'http' | 'https';
  readonly host: string;
  readonly repo: string;
  private readonly transport: HttpTransport;
  private readonly owned?: HttpClient;
  private readonly auth: RegistryAuth;
  private readonly tokens: TokenFetcher;
  private readonly skipVerify: boolean;
  private readonly rewrite: { scheme: string; host: string };
  private readonly log?: Log;
  private opened = false;
  private gate: Promise<void> | undefined;
  /** 401 flows run (challenges answered), for tests and diagnostics */
  authFlows = 0;

  constructor(opts: RegistryClientOptions) {
    this.scheme = opts.scheme === 'http' ? 'http' : 'https';
    this.host = opts.host;
    this.repo = opts.repo.replace(/^\/+|\/+$/g, '');
    if (!this.host || /[/\s@]/.test(this.host)) throw new NetworkError(`registry host ${JSON.stringify(opts.host)} is not host[:port]`, 'ND_ERR_CONFIG');
    if (!this.repo) throw new NetworkError('registry repo is empty', 'ND_ERR_CONFIG');
    if (!opts.transport) {
      this.owned = new HttpClient({
        timeout: opts.timeout ?? 0,
        connectTimeout: opts.connectTimeout ?? 5,
        skipVerify: opts.skipVerify ?? false,
        caCertFiles: opts.caCertFiles ?? [],
      });
    }
    this.transport = opts.transport ?? this.owned!;
    this.tokens = new TokenFetcher(opts.direct ?? this.transport);
    this.auth = new RegistryAuth(this.tokens, { credential: opts.credential, registryToken: opts.registryToken, log: opts.log });
    this.skipVerify = opts.skipVerify ?? false;
    this.rewrite = { scheme: opts.blobUrlScheme ?? '', host: opts.blobRedirectedHost ?? '' };
    this.log = opts.log;
    // the URL is checked now: a host that cannot form one is a configuration error, not a failing read
    try {
      void this.origin;
    } catch {
      throw new NetworkError(`registry host ${JSON.stringify(opts.host)} does not form a URL`, 'ND_ERR_CONFIG');
    }
  }

  /** `<scheme>://<host>` as requests go now (skip_verify may have switched https to http, 7.2 step 3) */
  get origin(): string {
    return new URL(`${this.scheme}://${this.host}`).origin;
  }

  /** token requests made so far (POST and GET fallback each count) */
  get tokenRequests(): number {
    return this.tokens.requests;
  }

  /** The URL of a request path (RegistryRequest.path). */
  url(path: string): URL {
    if (/^https?:\/\//i.test(path)) return new URL(path);
    if (path.startsWith('/')) return new URL(path, this.origin);
    return new URL(`/v2/${this.repo}/${path}`, this.origin);
  }

  /** A request to the registry with its authentication done (see the file's head). */
  async request(req: RegistryRequest): Promise<HttpResponse> {
    while (!this.opened) {
      if (!this.gate) {
        const p = this.authorized(req);
        this.gate = p.then(
          (res) => {
            if (!gateStaysClosed(res.status)) this.opened = true;
          },
          () => undefined,
        ).finally(() => {
          this.gate = undefined;
        });
        return p;
      }
      await untilAborted(this.gate, req.signal);
    }
    return this.authorized(req);
  }

  /**
   * Follows a redirect `location` (relative to `base`, default the registry) after the configured rewrite (redirect.ts),
   * without Authorization. The caller judges the answer.
   */
  follow(location: string | undefined, req: Omit<RegistryRequest, 'path'>, base?: URL): Promise<HttpResponse> {
    const url = redirectTarget(location, base ?? new URL(this.origin), this.rewrite);
    return this.transport.request({ method: req.method, url, headers: withoutAuthorization(req.headers), body: req.body, signal: req.signal, kind: req.kind, bypassProxy: req.bypassProxy });
  }

  /** Sends to a URL that is not the registry (a cached redirect target): never with Authorization. */
  direct(url: URL, req: Omit<RegistryRequest, 'path'>): Promise<HttpResponse> {
    return this.transport.request({ method: req.method, url, headers: withoutAuthorization(req.headers), body: req.body, signal: req.signal, kind: req.kind, bypassProxy: req.bypassProxy });
  }

  /** The redirect target of a Location, rewritten as configured. */
  redirectTarget(location: string | undefined, base?: URL): URL {
    return redirectTarget(location, base ?? new URL(this.origin), this.rewrite);
  }

  /** The credential changed (2.6; checked by the caller); '' drops it. */
  setCredential(value: string): void {
    this.auth.setCredential(value);
  }

  /** Stops the token refresh and closes the connections this client opened. */
  async close(): Promise<void> {
    this.auth.close();
    await this.owned?.close();
  }

  private async authorized(req: RegistryRequest): Promise<HttpResponse> {
    const cached = this.auth.header;
    let res = await this.send(req, cached);
    if (res.status !== 401 || !res.toRegistry) return res;
    if (cached) {
      // a 401 to a request that carried Authorization: ask again without it for a fresh challenge (7.2 step 4)
      await res.discard();
      res = await this.send(req, undefined);
      if (res.status !== 401) return res;
    }
    const challenge = parseChallenge(res.header('www-authenticate'));
    await res.discard();
    this.authFlows++;
    const auth: Authorization = await this.auth.authorize(challenge, req.signal);
    this.log?.('debug', `registry ${this.host}: answering a ${challenge?.scheme ?? 'missing'} challenge`);
    const again = await this.send(req, auth.header);
    if (again.status >= 200 && again.status < 400) this.auth.accept(auth);
    return again;
  }

  /** One exchange; Authorization only to the registry's origin. The skip_verify TLS fallback of 7.2 step 3. */
  private async send(req: RegistryRequest, authorization: string | undefined): Promise<HttpResponse & { toRegistry: boolean }> {
    const attempt = async () => {
      const url = this.url(req.path);
      const toRegistry = url.origin === this.origin;
      const headers = withoutAuthorization(req.headers);
      if (authorization && toRegistry) headers.authorization = authorization;
      const res = await this.transport.request({ method: req.method, url, headers, body: req.body, signal: req.signal, kind: req.kind, bypassProxy: req.bypassProxy });
      return Object.assign(res, { toRegistry });
    };
    try {
      return await attempt();
    } catch (err) {
      const msg = `${(err as Error).message} ${((err as Error).cause as Error | undefined)?.message ?? ''}`;
      const fallback = this.skipVerify && this.scheme === 'https' && errorCode(err) !== 'ND_ERR_TIMEOUT'
        && !req.signal?.aborted && /wrong version number|connection refused|ssl/i.test(msg)
        && (/^https?:\/\//i.test(req.path) ? new URL(req.path).origin === this.origin : true);
      if (!fallback) throw err;
      // 7.2 step 3: with skip_verify, a registry that does not speak TLS is used over plain HTTP from now on
      this.scheme = 'http';
      this.log?.('warn', `registry ${this.host}: https failed (${(err as Error).message}); using http from now on (skip_verify)`);
      return attempt();
    }
  }
}

function withoutAuthorization(h: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) if (k.toLowerCase() !== 'authorization') out[k.toLowerCase()] = v;
  return out;
}
