// A fake OCI Distribution registry on loopback (node:http or node:https), for unit tests of the registry backend and
// of anything else that talks to a registry (nydusify). It follows the Distribution contract where it matters to a
// client (anchors.md 5.1): blobs by digest with Range (206 + Content-Range), HEAD with Content-Length, monolithic
// uploads, manifests; 401 challenges for Basic or Bearer with a token endpoint on the same server. On demand it
// misbehaves: POST-only or GET-only token endpoints (Harbor), short token lifetimes, a 307 to a second server (a fake
// object store) that can answer 403 like an expired signed URL, connection resets, 500/429, short or corrupt bodies,
// 200 with the whole blob, a wrong Content-Range, a stall mid-body. Every request is recorded with its headers.
import crypto from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { RegistryConfig } from '../../../src/config/model.js';

export type BlobFault =
  | 'reset' // destroy the connection before answering
  | 500
  | 429
  | 'short' // 206 with the right headers, then half the body and close
  | 'corrupt' // 206, right length, one byte flipped
  | 'whole' // 200 with the whole blob (Range ignored)
  | 'wrong-range' // 206 with a Content-Range one byte off
  | 'stall'; // 206, half the body, then nothing until the client gives up

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

export type FakeAuth =
  | { kind: 'none' }
  | { kind: 'basic'; user: string; password: string }
  | {
      kind: 'bearer';
      /** credentials the token endpoint requires (none: anonymous tokens) */
      user?: string;
      password?: string;
      /** methods the token endpoint accepts (default both): ['GET'] is Harbor's behaviour */
      tokenMethods?: ('GET' | 'POST')[];
      /** lifetime of issued tokens in seconds (default 600); sent as expires_in unless omitExpiresIn */
      expiresIn?: number;
      omitExpiresIn?: boolean;
      /** the JSON field the token goes in (default 'token') */
      tokenField?: 'token' | 'access_token';
      /** the challenge sent for an expired or unknown token (default Bearer; Harbor sends Basic) */
      expiredChallenge?: 'bearer' | 'basic';
    };

export interface TlsPair {
  key: string;
  cert: string;
}

/** A server that records requests and can be stopped with every connection cut. */
abstract class FakeServer {
  readonly requests: RecordedRequest[] = [];
  protected server!: http.Server;
  host = '';
  protected scheme = 'http';

  protected async listen(tls: TlsPair | undefined, handler: (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void): Promise<void> {
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        this.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
        handler(req, res, Buffer.concat(parts));
      });
    };
    this.server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, onRequest) : http.createServer(onRequest);
    this.scheme = tls ? 'https' : 'http';
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.host = `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  get url(): string {
    return `${this.scheme}://${this.host}`;
  }

  /** Requests whose path starts with `prefix` (and method, when given). */
  count(prefix: string, method?: string): number {
    return this.requests.filter((r) => r.url.startsWith(prefix) && (!method || r.method === method)).length;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Serves a blob (or a range of it), applying `fault`. */
function serveBlob(req: http.IncomingMessage, res: http.ServerResponse, data: Buffer, fault: BlobFault | undefined): void {
  if (fault === 'reset') {
    req.socket.destroy();
    return;
  }
  if (fault === 500 || fault === 429) {
    res.writeHead(fault, { 'content-type': 'text/plain' }).end(fault === 500 ? 'internal error (injected)' : 'too many requests (injected)');
    return;
  }
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  if (!m || fault === 'whole') {
    res.writeHead(200, { 'content-length': data.length, 'content-type': 'application/octet-stream' });
    if (req.method === 'HEAD') res.end();
    else res.end(data);
    return;
  }
  const first = Number(m[1]);
  const last = Math.min(Number(m[2]), data.length - 1);
  if (first >= data.length || first > last) {
    res.writeHead(416, { 'content-range': `bytes */${data.length}` }).end();
    return;
  }
  let body = Buffer.from(data.subarray(first, last + 1));
  const shift = fault === 'wrong-range' ? 1 : 0;
  const headers = { 'content-length': body.length, 'content-range': `bytes ${first + shift}-${last + shift}/${data.length}`, 'content-type': 'application/octet-stream' };
  if (fault === 'corrupt') {
    body[Math.floor(body.length / 2)]! ^= 0xff;
  }
  if (fault === 'short' || fault === 'stall') {
    res.writeHead(206, headers);
    res.write(body.subarray(0, Math.floor(body.length / 2)));
    // short: the connection ends early; stall: it stays open, silent, until the client or close() cuts it
    if (fault === 'short') setImmediate(() => req.socket.destroy());
    return;
  }
  res.writeHead(206, headers).end(req.method === 'HEAD' ? undefined : body);
}

/** A second address that blob GETs are redirected to: `/objects/<id>?sig=<n>`. */
export class FakeObjectStore extends FakeServer {
  /** answer 403 (an expired signed URL) to this many next requests (Infinity: all) */
  denyNext = 0;
  readonly faults: BlobFault[] = [];

  private constructor(private readonly blobs: Map<string, Buffer>) {
    super();
  }

  static async start(blobs: Map<string, Buffer>, tls?: TlsPair): Promise<FakeObjectStore> {
    const s = new FakeObjectStore(blobs);
    await s.listen(tls, (req, res) => s.handle(req, res));
    return s;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const m = /^\/objects\/([0-9a-f]+)(\?|$)/.exec(req.url ?? '');
    const data = m ? this.blobs.get(m[1]!) : undefined;
    if (this.denyNext > 0) {
      this.denyNext--;
      return void res.writeHead(403).end('<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
    }
    if (!data) return void res.writeHead(404).end('no such object');
    serveBlob(req, res, data, this.faults.shift());
  }
}

export interface FakeRegistryOptions {
  repo?: string;
  auth?: FakeAuth;
  tls?: TlsPair;
}

export class FakeRegistry extends FakeServer {
  readonly repo: string;
  auth: FakeAuth;
  /** blobs by hex digest (the sha256 of their bytes when added with addBlob) */
  readonly blobs = new Map<string, Buffer>();
  readonly manifests = new Map<string, { type: string; body: Buffer }>();
  /** faults applied to the next blob GETs of the registry itself, in order */
  readonly faults: BlobFault[] = [];
  /** when set, authorized blob GETs answer 307 to this store */
  redirectTo: FakeObjectStore | undefined;
  /** the origin written into redirect Locations instead of the store's (to test blob_url_scheme / blob_redirected_host) */
  locationOrigin: string | undefined;
  /** while set, blob GETs wait for it before answering (to see how many are in flight at once) */
  hold: Promise<void> | undefined;
  /** every token ever issued (secrets a client must never log) */
  readonly issued: string[] = [];
  /** issued tokens and when they expire (ms) */
  private readonly tokens = new Map<string, number>();
  private readonly uploads = new Map<string, Buffer[]>();
  private signature = 0;

  private constructor(opts: FakeRegistryOptions) {
    super();
    this.repo = opts.repo ?? 'library/test';
    this.auth = opts.auth ?? { kind: 'none' };
  }

  static async start(opts: FakeRegistryOptions = {}): Promise<FakeRegistry> {
    const r = new FakeRegistry(opts);
    await r.listen(opts.tls, (req, res, body) => r.handle(req, res, body));
    return r;
  }

  /** Adds a blob under its sha256; returns the hex digest. */
  addBlob(data: Buffer): string {
    const id = crypto.createHash('sha256').update(data).digest('hex');
    this.blobs.set(id, data);
    return id;
  }

  /** Token requests received, by method. */
  tokenRequests(method?: 'GET' | 'POST'): number {
    return this.count('/token', method);
  }

  /** A token the registry accepts, as if a token service had issued it (registry_token tests). */
  issueToken(expiresIn = 600): string {
    const token = crypto.randomBytes(16).toString('hex');
    this.issued.push(token);
    this.tokens.set(token, Date.now() + expiresIn * 1000);
    return token;
  }

  /** Every issued token stops being accepted (as if it expired). */
  expireTokens(): void {
    this.tokens.clear();
  }

  /** Tokens issued so far that are still valid. */
  get validTokens(): string[] {
    const now = Date.now();
    return [...this.tokens].filter(([, exp]) => exp > now).map(([t]) => t);
  }

  private challenge(res: http.ServerResponse, scheme: 'basic' | 'bearer'): void {
    const value = scheme === 'basic'
      ? 'Basic realm="fake-registry"'
      : `Bearer realm="${this.url}/token",service="fake-registry",scope="repository:${this.repo}:pull"`;
    res.writeHead(401, { 'www-authenticate': value, 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
  }

  /** Whether the request may pass; answers the 401 when not. */
  private authorized(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const a = this.auth;
    const given = req.headers.authorization ?? '';
    if (a.kind === 'none') return true;
    if (a.kind === 'basic') {
      if (given === `Basic ${Buffer.from(`${a.user}:${a.password}`).toString('base64')}`) return true;
      this.challenge(res, 'basic');
      return false;
    }
    const m = /^Bearer (.+)$/.exec(given);
    const exp = m ? this.tokens.get(m[1]!) : undefined;
    if (exp !== undefined && exp > Date.now()) return true;
    // an expired or unknown token gets the configured challenge; no Authorization gets the Bearer one
    this.challenge(res, m && a.expiredChallenge === 'basic' ? 'basic' : 'bearer');
    return false;
  }

  private token(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
    const a = this.auth;
    if (a.kind !== 'bearer') return void res.writeHead(404).end();
    const method = req.method as 'GET' | 'POST';
    if (!(a.tokenMethods ?? ['GET', 'POST']).includes(method)) return void res.writeHead(405).end('method not allowed');
    const params = method === 'POST' ? new URLSearchParams(body.toString()) : new URL(req.url!, this.url).searchParams;
    if (params.get('service') !== 'fake-registry' || !params.get('scope')) return void res.writeHead(400).end('bad token request');
    if (a.user !== undefined && req.headers.authorization !== `Basic ${Buffer.from(`${a.user}:${a.password}`).toString('base64')}`) {
      return void res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"invalid username or password"}');
    }
    const expiresIn = a.expiresIn ?? 600;
    const token = this.issueToken(expiresIn);
    const doc: Record<string, unknown> = { [a.tokenField ?? 'token']: token, issued_at: new Date().toISOString() };
    if (!a.omitExpiresIn) doc.expires_in = expiresIn;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
    const url = new URL(req.url!, this.url);
    if (url.pathname === '/token') return this.token(req, res, body);
    if (url.pathname === '/v2/' || url.pathname === '/v2') {
      if (this.authorized(req, res)) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    const prefix = `/v2/${this.repo}/`;
    if (!url.pathname.startsWith(prefix)) return void res.writeHead(404).end(JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN' }] }));
    if (!this.authorized(req, res)) return;
    const rest = url.pathname.slice(prefix.length);
    let m: RegExpExecArray | null;
    if ((m = /^blobs\/sha256:([0-9a-f]{64})$/.exec(rest)) && (req.method === 'GET' || req.method === 'HEAD')) {
      const data = this.blobs.get(m[1]!);
      if (!data) return void res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN' }] }));
      if (this.redirectTo && req.method === 'GET') {
        this.signature++;
        return void res.writeHead(307, { location: `${this.locationOrigin ?? this.redirectTo.url}/objects/${m[1]}?sig=${this.signature}` }).end();
      }
      const fault = req.method === 'GET' ? this.faults.shift() : undefined;
      if (this.hold && req.method === 'GET') return void this.hold.then(() => serveBlob(req, res, data, fault));
      return serveBlob(req, res, data, fault);
    }
    if (rest === 'blobs/uploads/' && req.method === 'POST') {
      const uuid = crypto.randomUUID();
      this.uploads.set(uuid, []);
      return void res.writeHead(202, { location: `${prefix}blobs/uploads/${uuid}`, 'docker-upload-uuid': uuid }).end();
    }
    if ((m = /^blobs\/uploads\/([0-9a-f-]+)$/.exec(rest))) {
      const parts = this.uploads.get(m[1]!);
      if (!parts) return void res.writeHead(404).end(JSON.stringify({ errors: [{ code: 'BLOB_UPLOAD_UNKNOWN' }] }));
      parts.push(body);
      if (req.method === 'PATCH') return void res.writeHead(202, { location: `${prefix}blobs/uploads/${m[1]}` }).end();
      if (req.method !== 'PUT') return void res.writeHead(405).end();
      const data = Buffer.concat(parts);
      const digest = url.searchParams.get('digest') ?? '';
      if (digest !== `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`) {
        return void res.writeHead(400).end(JSON.stringify({ errors: [{ code: 'DIGEST_INVALID' }] }));
      }
      this.uploads.delete(m[1]!);
      this.blobs.set(digest.slice(7), data);
      return void res.writeHead(201, { location: `${prefix}blobs/${digest}`, 'docker-content-digest': digest }).end();
    }
    if ((m = /^manifests\/([^/]+)$/.exec(rest))) {
      const ref = decodeURIComponent(m[1]!);
      if (req.method === 'PUT') {
        const digest = `sha256:${crypto.createHash('sha256').update(body).digest('hex')}`;
        const entry = { type: req.headers['content-type'] ?? 'application/vnd.oci.image.manifest.v1+json', body };
        this.manifests.set(ref, entry);
        this.manifests.set(digest, entry);
        return void res.writeHead(201, { 'docker-content-digest': digest, location: `${prefix}manifests/${digest}` }).end();
      }
      const entry = this.manifests.get(ref);
      if (!entry) return void res.writeHead(404).end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN' }] }));
      const digest = `sha256:${crypto.createHash('sha256').update(entry.body).digest('hex')}`;
      res.writeHead(200, { 'content-type': entry.type, 'content-length': entry.body.length, 'docker-content-digest': digest });
      return void res.end(req.method === 'HEAD' ? undefined : entry.body);
    }
    res.writeHead(404).end();
  }
}

/** A self-signed certificate for 127.0.0.1 and localhost, made with the openssl CLI. */
export async function selfSignedCert(dir: string): Promise<TlsPair & { certFile: string }> {
  const { execFileSync } = await import('node:child_process');
  const path = await import('node:path');
  const fs = await import('node:fs');
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
    '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: 'pipe' });
  return { key: fs.readFileSync(key, 'utf8'), cert: fs.readFileSync(cert, 'utf8'), certFile: cert };
}

/** A registry backend configuration for `server` (defaults of nydusd-runtime.md 2.4), with `over` applied. */
export function registryConfigFor(server: { host: string; repo?: string; url: string }, over: Partial<RegistryConfig> = {}): RegistryConfig {
  return {
    skip_verify: false,
    ca_cert_files: [],
    timeout: 5,
    connect_timeout: 5,
    retry_limit: 0,
    proxy: { url: '', ping_url: '', fallback: true, check_interval: 5, use_http: false, check_pause_elapsed: 300, dragonfly_scheduler_endpoint: '' },
    scheme: server.url.startsWith('https:') ? 'https' : 'http',
    host: server.host,
    repo: server.repo ?? 'library/test',
    auth: null,
    registry_token: null,
    blob_url_scheme: '',
    blob_redirected_host: '',
    ...over,
  };
}
