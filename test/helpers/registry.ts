// A real OCI registry for the registry-backend tests (issue 11): Debian's Distribution server (`docker-registry`) on
// loopback with a temp storage dir, anonymous, htpasswd Basic, or token auth against a test token service that signs
// JWTs with a key made here (Distribution's token spec: docs of the docker-registry package, spec/auth/jwt.md).
// Around it: a client that speaks the Distribution API with the three auth flows (to push images and check the
// harness), a front end that forwards to the registry and injects faults or answers blob GETs with redirects, and a
// "storage" server those redirects point at. Every process started here is killed when the test process exits.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, createPrivateKey, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { httpRequest, type HttpAnswer } from './http.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP port nobody listens on right now (the kernel's pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}

function close(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((r) => server.close(() => r()));
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');
export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
export const basic = (user: string, password: string) => Buffer.from(`${user}:${password}`).toString('base64');

/** `bytes=a-b` (both ends given, as blob readers send it) or undefined. */
export function parseRange(h: string | undefined): { start: number; end: number } | undefined {
  const m = /^bytes=(\d+)-(\d+)$/.exec(h ?? '');
  return m ? { start: Number(m[1]), end: Number(m[2]) } : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Token service

/** The key id Distribution derives from a public key (libtrust: base32 of 30 bytes of the SPKI's sha256, in 4s). */
function libtrustKeyId(spkiDer: Buffer): string {
  const bytes = createHash('sha256').update(spkiDer).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.match(/.{4}/g)!.join(':');
}

/**
 * Distribution's expiry check allows a minute of clock skew (a token is refused only a minute after its `exp`), so
 * tokens say `exp` a minute early: the registry then really refuses them `expires_in` seconds after issue.
 */
const REGISTRY_LEEWAY_S = 60;

export interface TokenRequest {
  method: string;
  /** the Basic credential's user, or null when the request carried none (or a malformed one) */
  user: string | null;
  password: string | null;
  clientId: string | null;
  service: string | null;
  scopes: string[];
  status: number;
  /** the token granted, if any */
  token?: string;
  at: number;
  /** when the registry stops accepting the token (ms since the epoch) */
  expiresAt?: number;
}

/**
 * A token service (the realm of a registry in token mode): answers `GET realm?service&scope` and the form `POST`
 * with a JWT granting exactly the scopes asked for, to callers presenting an accepted Basic credential (or to
 * anyone, with `anonymous`). Every request is recorded; credentials can be changed at any time (rotation).
 */
export class TokenService {
  readonly service = 'nydus-test-registry';
  readonly issuer = 'nydus-test-token-service';
  /** accepted `user -> password`; edit it to rotate */
  readonly users = new Map<string, string>();
  anonymous = false;
  /** lifetime of new tokens, seconds (also the `expires_in` of the answer) */
  expiresIn = 300;
  /** answer every token request with this status instead (a broken token service) */
  failWith: number | undefined;
  readonly requests: TokenRequest[] = [];
  private server!: http.Server;
  port = 0;

  private constructor(
    private readonly key: KeyObject,
    private readonly certDer: Buffer,
    /** the certificate bundle the registry trusts (`rootcertbundle`) */
    readonly certFile: string,
  ) {}

  /** A self-signed RSA certificate (openssl) for the signing key, in `dir`. */
  static async start(dir: string): Promise<TokenService> {
    const keyFile = path.join(dir, 'token-key.pem');
    const certFile = path.join(dir, 'token-cert.pem');
    const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=nydus-test-token-service'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl could not make the token signing certificate: ${r.stderr}`);
    const cert = new X509Certificate(readFileSync(certFile));
    const t = new TokenService(createPrivateKey(readFileSync(keyFile)), cert.raw, certFile);
    t.server = http.createServer((req, res) => t.handle(req, res));
    t.port = await listen(t.server);
    return t;
  }

  get realm(): string {
    return `http://127.0.0.1:${this.port}/token`;
  }

  /** Requests that were granted a token, optionally only those of one user. */
  granted(user?: string): TokenRequest[] {
    return this.requests.filter((r) => r.token !== undefined && (user === undefined || r.user === user));
  }

  /** Signs a token for `access` (Distribution's claim set), valid for the registry `lifetime` seconds from now. */
  mint(subject: string, access: Array<{ type: string; name: string; actions: string[] }>, lifetime = this.expiresIn): string {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', kid: libtrustKeyId(this.spki()) };
    const claims = {
      iss: this.issuer,
      sub: subject,
      aud: this.service,
      exp: now + lifetime - REGISTRY_LEEWAY_S,
      nbf: now - 1,
      iat: now,
      jti: randomBytes(12).toString('hex'),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    return `${input}.${b64url(sign('sha256', Buffer.from(input), this.key))}`;
  }

  private spki(): Buffer {
    return new X509Certificate(this.certDer).publicKey.export({ type: 'spki', format: 'der' });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const form = req.method === 'POST' ? new URLSearchParams(Buffer.concat(parts).toString('utf8')) : url.searchParams;
      let user: string | null = null;
      let password: string | null = null;
      const m = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      if (m) {
        const plain = Buffer.from(m[1]!, 'base64').toString('utf8');
        const i = plain.indexOf(':');
        if (i > 0) [user, password] = [plain.slice(0, i), plain.slice(i + 1)];
      }
      const scopes = form.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
      const rec: TokenRequest = { method: req.method ?? '', user, password, clientId: form.get('client_id'), service: form.get('service'), scopes, status: 0, at: Date.now() };
      this.requests.push(rec);
      const answer = (status: number, body: object) => {
        rec.status = status;
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      if (url.pathname !== '/token' || (req.method !== 'GET' && req.method !== 'POST')) return answer(404, { error: 'not found' });
      if (this.failWith !== undefined) return answer(this.failWith, { error: 'token service failing on purpose' });
      const known = user !== null && this.users.get(user) === password;
      if (!known && !(this.anonymous && !m)) return answer(401, { error: 'unauthorized: bad credentials' });
      if (rec.service !== this.service) return answer(400, { error: `unknown service ${rec.service}` });
      const access = scopes.map((s) => {
        const [type, ...rest] = s.split(':');
        const actions = rest.pop() ?? '';
        return { type: type!, name: rest.join(':'), actions: actions.split(',').filter(Boolean) };
      });
      const token = this.mint(user ?? 'anonymous', access);
      rec.token = token;
      rec.expiresAt = Date.now() + this.expiresIn * 1000;
      answer(200, { token, access_token: token, expires_in: this.expiresIn, issued_at: new Date().toISOString() });
    });
  }

  close(): Promise<void> {
    return close(this.server);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The registry process

export type RegistryAuth =
  | { kind: 'anonymous' }
  | { kind: 'htpasswd'; users: Record<string, string> }
  | { kind: 'token'; tokens: TokenService };

/**
 * Runs the registry under a watchdog: the test process holds the watchdog's stdin, so its end, even by SIGKILL (a
 * test-runner timeout), is an EOF there, and the registry is killed with it. No registry outlives its test.
 */
const REGISTRY_WATCHDOG = `exec 3<&0
docker-registry serve "$1" </dev/null &
p=$!
( cat <&3 >/dev/null; kill -9 $p 2>/dev/null ) &
wait $p`;

/** The watchdog, its registry and its reader are one process group (detached): all go at once. */
function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
}

const liveRegistries = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of liveRegistries) killGroup(c);
});

/** Debian's Distribution server on 127.0.0.1, on a port and a storage dir that survive stop/start. */
export class Registry {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly auth: RegistryAuth,
  ) {}

  static async start(auth: RegistryAuth, dir = mkdtempSync(path.join(os.tmpdir(), 'nydus-registry-'))): Promise<Registry> {
    const r = new Registry(dir, await freePort(), auth);
    r.writeConfig();
    await r.start();
    return r;
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  get url(): string {
    return `http://${this.host}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  private get logFile(): string {
    return path.join(this.dir, 'registry.log');
  }

  /** What the registry has printed so far (all its runs). */
  get log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  private get configFile(): string {
    return path.join(this.dir, 'config.yml');
  }

  private writeConfig(): void {
    const storage = path.join(this.dir, 'storage');
    mkdirSync(storage, { recursive: true });
    let auth = '';
    if (this.auth.kind === 'htpasswd') {
      const file = path.join(this.dir, 'htpasswd');
      const lines = Object.entries(this.auth.users).map(([u, p]) => {
        const r = spawnSync('htpasswd', ['-Bbn', u, p], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`htpasswd failed: ${r.stderr}`);
        return r.stdout.trim();
      });
      writeFileSync(file, `${lines.join('\n')}\n`);
      auth = `auth:\n  htpasswd:\n    realm: nydus-test\n    path: ${file}\n`;
    } else if (this.auth.kind === 'token') {
      const t = this.auth.tokens;
      auth = `auth:\n  token:\n    realm: ${t.realm}\n    service: ${t.service}\n    issuer: ${t.issuer}\n    rootcertbundle: ${t.certFile}\n`;
    }
    writeFileSync(
      this.configFile,
      `version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${storage}\n  delete:\n    enabled: true\n` +
        `http:\n  addr: 127.0.0.1:${this.port}\n  secret: ${randomBytes(16).toString('hex')}\n${auth}`,
    );
  }

  /** Starts the process (again, after `stop`) and waits until `/v2/` answers. */
  async start(timeoutMs = 20_000): Promise<void> {
    if (this.child) throw new Error('the registry is already running');
    // The registry's output goes to a file, not a pipe: a test that reads a FUSE mount synchronously stops draining
    // pipes, the registry then blocks writing its log, the daemon's backend reads wait for it, and the read hangs.
    const out = openSync(this.logFile, 'a');
    const child = spawn('sh', ['-c', REGISTRY_WATCHDOG, 'registry', this.configFile], { stdio: ['pipe', out, out], detached: true });
    closeSync(out);
    this.child = child;
    liveRegistries.add(child);
    this.exited = new Promise((r) =>
      child.once('close', () => {
        liveRegistries.delete(child);
        if (this.child === child) this.child = undefined;
        r();
      }),
    );
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child !== child) throw new Error(`docker-registry exited while starting: ${this.log.slice(-2000)}`);
      const status = await rawStatus(`${this.url}/v2/`).catch(() => 0);
      if (status === 200 || status === 401) return;
      if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${this.host} within ${timeoutMs} ms: ${this.log.slice(-2000)}`);
      await sleep(20);
    }
  }

  /** Kills the process (SIGKILL: as abrupt as a crash) and waits until it is gone and the port refuses. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    killGroup(child);
    await this.exited;
    // the watchdog shell has gone; the registry, killed with it, may still hold its socket for a moment (with its
    // output in a file, nothing else waits for it): until the port refuses, a request would be reset instead
    const deadline = Date.now() + 10_000;
    while (await portAccepts(this.port)) {
      if (Date.now() > deadline) throw new Error(`docker-registry still accepts connections on ${this.host} 10 s after SIGKILL`);
      await sleep(20);
    }
  }

  /** Where the registry's filesystem storage keeps a blob (a test may damage it there). */
  blobFile(digest: string): string {
    const hex = digest.replace(/^sha256:/, '');
    return path.join(this.dir, 'storage', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
  }

  /** Stops the process and removes its directory (storage, config, htpasswd). */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
function portAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

function rawStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.setTimeout(2_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// A Distribution API client with the auth flows

export { httpRequest, type HttpAnswer } from './http.js';

/** `Bearer realm="…",service="…",scope="…"` / `Basic realm="…"` into its scheme and parameters. */
export function parseChallenge(h: string | undefined): { scheme: string; params: Record<string, string> } | undefined {
  const m = /^(\w+)\s*(.*)$/.exec(h ?? '');
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (const p of m[2]!.matchAll(/(\w+)="([^"]*)"/g)) params[p[1]!.toLowerCase()] = p[2]!;
  return { scheme: m[1]!.toLowerCase(), params };
}

/**
 * Speaks to a registry as a user `user:password` (or anonymously): on a 401 it answers the challenge (Basic, or a
 * token fetched with GET from the realm for the scope the registry asked) and resends once. Redirects are returned,
 * not followed.
 */
export class RegistryClient {
  private authorization: string | undefined;

  constructor(
    readonly base: string,
    readonly credentials?: { user: string; password: string },
    /** extra scope to ask tokens for (e.g. push) */
    readonly actions = 'pull',
  ) {}

  async request(pathOrUrl: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer } = {}): Promise<HttpAnswer> {
    const url = pathOrUrl.startsWith('http') ? pathOrUrl : `${this.base}${pathOrUrl}`;
    const send = () => httpRequest(url, { ...opts, headers: { ...opts.headers, ...(this.authorization ? { authorization: this.authorization } : {}) } });
    let res = await send();
    if (res.status !== 401) return res;
    const ch = parseChallenge(res.headers['www-authenticate'] as string | undefined);
    if (!ch) return res;
    const cred = this.credentials ? basic(this.credentials.user, this.credentials.password) : undefined;
    if (ch.scheme === 'basic') {
      if (!cred) return res;
      this.authorization = `Basic ${cred}`;
    } else if (ch.scheme === 'bearer') {
      const scope = ch.params.scope ? ch.params.scope.replace(/:[^:]*$/, `:${this.actions}`) : '';
      const q = new URLSearchParams({ service: ch.params.service ?? '', scope, client_id: 'nydus-test-harness' });
      const t = await httpRequest(`${ch.params.realm}?${q}`, { headers: cred ? { authorization: `Basic ${cred}` } : {} });
      if (t.status !== 200) return res;
      this.authorization = `Bearer ${(JSON.parse(t.body.toString('utf8')) as { token: string }).token}`;
    } else {
      return res;
    }
    res = await send();
    return res;
  }

  /** Pushes a blob by a monolithic upload (POST, then PUT with the digest); returns `sha256:<hex>`. */
  async pushBlob(repo: string, data: Buffer): Promise<string> {
    const digest = `sha256:${sha256(data)}`;
    const start = await this.request(`/v2/${repo}/blobs/uploads/`, { method: 'POST', body: Buffer.alloc(0) });
    if (start.status !== 202) throw new Error(`starting an upload to ${repo}: ${start.status} ${start.body.toString('utf8')}`);
    const loc = new URL(String(start.headers.location), this.base);
    loc.searchParams.set('digest', digest);
    const put = await this.request(loc.toString(), { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: data });
    if (put.status !== 201) throw new Error(`finishing the upload of ${digest} to ${repo}: ${put.status} ${put.body.toString('utf8')}`);
    return digest;
  }

  /**
   * Pushes an OCI image: a config blob, the given layers (already pushed or pushed here) and a manifest under `tag`.
   * Returns the manifest's digest.
   */
  async pushImage(repo: string, tag: string, layers: Array<{ data: Buffer; mediaType: string; annotations?: Record<string, string> }>): Promise<string> {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => `sha256:${sha256(l.data)}`) } }));
    const cfgDigest = await this.pushBlob(repo, config);
    const descriptors = [];
    for (const l of layers) {
      descriptors.push({ mediaType: l.mediaType, digest: await this.pushBlob(repo, l.data), size: l.data.length, ...(l.annotations ? { annotations: l.annotations } : {}) });
    }
    const manifest = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfgDigest, size: config.length }, layers: descriptors }),
    );
    const put = await this.request(`/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest });
    if (put.status !== 201) throw new Error(`pushing the manifest ${repo}:${tag}: ${put.status} ${put.body.toString('utf8')}`);
    return `sha256:${sha256(manifest)}`;
  }

  /** A ranged GET of a blob ([start, end] inclusive), following one redirect as the registry backend does. */
  async getBlobRange(repo: string, digest: string, start: number, end: number): Promise<HttpAnswer & { redirectedTo?: string }> {
    const range = { range: `bytes=${start}-${end}` };
    const res = await this.request(`/v2/${repo}/blobs/${digest}`, { headers: range });
    if (res.status >= 300 && res.status < 400 && res.headers.location) {
      const to = new URL(res.headers.location, this.base).toString();
      return { ...(await httpRequest(to, { headers: range })), redirectedTo: to };
    }
    return res;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The storage server redirects point at

/**
 * Serves blobs the test put in `blobs` at `/blobs/<digest>?gen=<n>` (ranged GETs), like an object store behind
 * signed URLs: a URL of an older generation than `generation` answers 403 (an expired signature), and `forbidAll`
 * makes every GET a 403. Records every request.
 */
export class StorageServer {
  readonly blobs = new Map<string, Buffer>();
  generation = 1;
  forbidAll = false;
  readonly requests: Array<{ digest: string; gen: number; range?: string; authorization?: string; status: number }> = [];
  private server!: http.Server;
  port = 0;

  static async start(): Promise<StorageServer> {
    const s = new StorageServer();
    s.server = http.createServer((req, res) => s.handle(req, res));
    s.port = await listen(s.server);
    return s;
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** The URL a redirect of the current generation names for `digest`. */
  urlFor(digest: string): string {
    return `http://${this.host}/blobs/${digest}?gen=${this.generation}&sig=${randomBytes(6).toString('hex')}`;
  }

  /** GETs that reached this server (all, or for one blob). */
  gets(digest?: string): number {
    return this.requests.filter((r) => digest === undefined || r.digest === digest).length;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const digest = url.pathname.replace(/^\/blobs\//, '');
    const gen = Number(url.searchParams.get('gen'));
    const rec = { digest, gen, range: req.headers.range, authorization: req.headers.authorization, status: 0 };
    this.requests.push(rec);
    const reply = (status: number, headers: Record<string, string | number>, body: Buffer | string) => {
      rec.status = status;
      res.writeHead(status, headers).end(body);
    };
    const blob = this.blobs.get(digest);
    if (req.method !== 'GET') return reply(405, {}, 'only GET');
    if (this.forbidAll || gen < this.generation) return reply(403, { 'content-type': 'application/xml' }, '<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
    if (!blob) return reply(404, {}, 'NoSuchKey');
    const r = parseRange(req.headers.range);
    if (!r) return reply(200, { 'content-length': blob.length }, blob);
    if (r.start >= blob.length || r.end < r.start) return reply(416, { 'content-range': `bytes */${blob.length}` }, '');
    const end = Math.min(r.end, blob.length - 1);
    reply(206, { 'content-range': `bytes ${r.start}-${end}/${blob.length}`, 'content-length': end - r.start + 1 }, blob.subarray(r.start, end + 1));
  }

  close(): Promise<void> {
    return close(this.server);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The front end: a reverse proxy to the registry that misbehaves on demand

/**
 * A fault for blob GETs (`GET /v2/<repo>/blobs/sha256:…`), applied to the next `times` of them (every one when
 * absent):
 * - `reset`: the connection is reset (RST) without an answer;
 * - `status`: answered with `status` (500, 429, ...) and a short body;
 * - `short`: a well-framed 206 with fewer bytes than asked (Content-Range says so);
 * - `truncate`: the registry's headers (full Content-Length), half the body, then the connection is cut;
 * - `corrupt`: the registry's answer with bytes flipped in the middle of the body;
 * - `whole`: a 200 with the whole blob, whatever Range asked;
 * - `stall`: the registry's headers and half the body, then nothing until `releaseStalls` (which cuts it).
 */
export type Fault = { times?: number } & (
  | { kind: 'reset' }
  | { kind: 'status'; status: number }
  | { kind: 'short' }
  | { kind: 'truncate' }
  | { kind: 'corrupt' }
  | { kind: 'whole' }
  | { kind: 'stall' }
);

const BLOB_PATH = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/;

export interface BlobGet {
  digest: string;
  range?: string;
  authorization?: string;
  /** what the front end did: 'forward', 'redirect', 'unreachable' (the registry is down), or the fault's kind */
  action: string;
  status: number;
}

export class FrontEnd {
  private faults: Array<Fault & { left: number }> = [];
  /** redirect blob GETs the registry would answer 2xx to this storage server (307) */
  redirectTo: StorageServer | undefined;
  /** write redirect Locations with this scheme and host instead of the storage server's (what blob_url_scheme and
   * blob_redirected_host of the backend configuration repair) */
  locationOverride: { scheme: string; host: string } | undefined;
  readonly blobGets: BlobGet[] = [];
  private readonly stalled = new Set<net.Socket>();
  private server!: http.Server;
  port = 0;

  private constructor(readonly target: { host: string }) {}

  static async start(target: { host: string }): Promise<FrontEnd> {
    const f = new FrontEnd(target);
    f.server = http.createServer((req, res) => f.handle(req, res));
    f.port = await listen(f.server);
    return f;
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  inject(fault: Fault): void {
    this.faults.push({ ...fault, left: fault.times ?? Infinity });
  }

  /** Removes every fault (stalled answers stay stalled until `releaseStalls`). */
  clear(): void {
    this.faults = [];
  }

  /** Cuts every stalled answer. */
  releaseStalls(): void {
    for (const s of this.stalled) s.destroy();
    this.stalled.clear();
  }

  get stalledCount(): number {
    return this.stalled.size;
  }

  /** 307s answered, for one blob or all. */
  redirects(digest?: string): number {
    return this.blobGets.filter((g) => g.action === 'redirect' && (digest === undefined || g.digest === digest)).length;
  }

  private nextFault(): Fault | undefined {
    const f = this.faults.find((x) => x.left > 0);
    if (f) f.left--;
    return f;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const m = req.method === 'GET' ? BLOB_PATH.exec(new URL(req.url ?? '/', 'http://x').pathname) : null;
    if (!m) return this.forward(req, res);
    const rec: BlobGet = { digest: m[2]!, range: req.headers.range, authorization: req.headers.authorization, action: 'forward', status: 0 };
    this.blobGets.push(rec);
    const fault = this.nextFault();
    if (fault) rec.action = fault.kind;
    if (fault?.kind === 'reset') {
      req.socket.resetAndDestroy();
      return;
    }
    if (fault?.kind === 'status') {
      rec.status = fault.status;
      res.writeHead(fault.status, { 'content-type': 'application/json', ...(fault.status === 429 ? { 'retry-after': '1' } : {}) });
      res.end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: `front end answers ${fault.status} on purpose` }] }));
      return;
    }
    const upstreamHeaders = { ...req.headers, host: this.target.host };
    if (fault?.kind === 'whole') delete upstreamHeaders.range;
    const up = http.request(`http://${this.target.host}${req.url}`, { method: 'GET', headers: upstreamHeaders, agent: false }, (ur) => {
      const parts: Buffer[] = [];
      ur.on('data', (d: Buffer) => parts.push(d));
      ur.on('error', () => res.destroy());
      ur.on('end', () => {
        const body = Buffer.concat(parts);
        const status = ur.statusCode ?? 502;
        rec.status = status;
        const ok = status >= 200 && status < 300;
        const headers = { ...ur.headers };
        if (ok && this.redirectTo && !fault) {
          rec.action = 'redirect';
          rec.status = 307;
          const location = new URL(this.redirectTo.urlFor(rec.digest));
          if (this.locationOverride) {
            // URL refuses to switch between special and other schemes in place: rebuild it instead
            const { scheme, host } = this.locationOverride;
            res.writeHead(307, { location: `${scheme}://${host}${location.pathname}${location.search}`, 'content-length': 0 }).end();
          } else {
            res.writeHead(307, { location: location.toString(), 'content-length': 0 }).end();
          }
          return;
        }
        if (!ok || !fault || fault.kind === 'whole') {
          res.writeHead(status, headers).end(body);
          return;
        }
        const half = Math.floor(body.length / 2);
        switch (fault.kind) {
          case 'short': {
            const r = parseRange(req.headers.range);
            const start = r?.start ?? 0;
            const total = /\/(\d+)$/.exec(String(headers['content-range'] ?? ''))?.[1] ?? '*';
            delete headers['content-length'];
            res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${start + half - 1}/${total}`, 'content-length': half }).end(body.subarray(0, half));
            return;
          }
          case 'truncate':
            res.writeHead(status, headers);
            res.write(body.subarray(0, half), () => res.socket?.destroy());
            return;
          case 'corrupt': {
            const bad = Buffer.from(body);
            for (let i = half; i < Math.min(bad.length, half + 16); i++) bad[i]! ^= 0x5a;
            res.writeHead(status, headers).end(bad);
            return;
          }
          case 'stall':
            res.writeHead(status, headers);
            res.write(body.subarray(0, half));
            if (res.socket) {
              this.stalled.add(res.socket);
              res.socket.once('close', () => this.stalled.delete(res.socket!));
            }
            return;
        }
      });
    });
    // a registry that is down looks the same through the front end: the connection is reset, nothing answered
    up.on('error', () => {
      rec.status = 0;
      rec.action = fault ? rec.action : 'unreachable';
      req.socket.resetAndDestroy();
    });
    up.end();
  }

  /** Anything but blob GETs goes through unchanged. */
  private forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    const up = http.request(`http://${this.target.host}${req.url}`, { method: req.method, headers: { ...req.headers, host: this.target.host }, agent: false }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(502).end('registry unreachable')));
    req.pipe(up);
  }

  close(): Promise<void> {
    this.releaseStalls();
    return close(this.server);
  }
}
