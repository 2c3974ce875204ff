// Drives the real nydusd's management API over its Unix socket, as nydus-snapshotter does: spawn the daemon with
// --apisock, poll for the socket file, then HTTP/1.1 requests (each on its own connection unless told otherwise).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { projectRoot } from '../helpers/paths.js';
import { Daemon, sleep, tempDir } from '../nydusd/helpers.js';

export const SAMPLE = path.join(projectRoot, 'bootstrap-samples', 'v6-zstd');
/** The source tree every sample image was built from (bootstrap-samples/README.md). */
export const SAMPLE_TREE = path.join(projectRoot, 'bootstrap-samples', 'tree');
/** Regular files of the sample tree, across its chunks and directories (a non-ASCII name included). */
export const SAMPLE_FILES = ['data/numbers.txt', 'docs/readme.txt', 'bin/hello.sh', 'ünïcödé/naïve-文件.txt'];

export interface ApiResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** the body parsed as JSON, or undefined when empty */
  json: unknown;
}

/** One request on a fresh connection; a body string is sent with Content-Type application/json. */
export function request(
  sock: string,
  method: string,
  url: string,
  opts: { body?: string | Buffer; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    // an exact Content-Length as the Go client sends (Node's client would send a GET body unframed)
    const headers: Record<string, string> = {
      ...(opts.body !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(opts.body)) } : {}),
      ...opts.headers,
    };
    const req = http.request({ socketPath: sock, method, path: url, headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode!, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`${method} ${url}: no answer within ${opts.timeoutMs ?? 30_000} ms`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

export interface ApiDaemon {
  daemon: Daemon;
  dir: string;
  sock: string;
  mountpoint: string;
  cache: string;
}

/** A dedicated daemon on the v6 sample (localfs backend, cache in a temp dir) with --apisock; waits for the socket. */
export async function startApiDaemon(
  extra: string[] = [],
  opts: { dir?: string; sock?: string; ready?: (d: Daemon) => boolean } = {},
): Promise<ApiDaemon> {
  const dir = opts.dir ?? tempDir('api');
  const mountpoint = path.join(dir, 'mnt');
  const cache = path.join(dir, 'cache');
  mkdirSync(mountpoint, { recursive: true });
  if (!existsSync(cache)) cpSync(path.join(SAMPLE, 'blobs'), cache, { recursive: true });
  const sock = opts.sock ?? path.join(dir, 'api.sock');
  const daemon = new Daemon(
    ['--bootstrap', path.join(SAMPLE, 'bootstrap'), '--localfs-dir', cache, '--mountpoint', mountpoint, '--apisock', sock, ...extra],
    mountpoint,
  );
  await waitForSocket(daemon, sock, 20_000, opts.ready && (() => opts.ready!(daemon)));
  return { daemon, dir, sock, mountpoint, cache };
}

export function isSocket(p: string): boolean {
  try {
    return statSync(p).isSocket();
  } catch {
    return false;
  }
}

/** Polls for the socket file as the snapshotter does; fails if the daemon exits first. */
export async function waitForSocket(d: Daemon, sock: string, timeoutMs = 20_000, ready = () => isSocket(sock)): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (!d.running) throw new Error(`nydusd exited before creating ${sock}: ${d.stderr}`);
    if (Date.now() > deadline) throw new Error(`no socket at ${sock} within ${timeoutMs} ms: ${d.stderr}`);
    await sleep(10);
  }
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** An error answer: a 4xx/5xx whose body is exactly `{"code":"UNDEFINED","message":<one line>}` (spec 3.3). */
export function assertErrorBody(res: ApiResponse, what: string): { code: string; message: string } {
  assert.ok(res.status >= 400 && res.status < 600, `${what}: status ${res.status} is not an error: ${res.text.slice(0, 200)}`);
  assert.match(String(res.headers['content-type']), /^application\/json/, `${what}: content type`);
  const e = res.json as { code: unknown; message: unknown };
  assert.ok(e !== null && typeof e === 'object', `${what}: the body is not a JSON object: ${res.text.slice(0, 200)}`);
  assert.deepEqual(Object.keys(e).sort(), ['code', 'message'], `${what}: ${res.text.slice(0, 200)}`);
  assert.equal(e.code, 'UNDEFINED', what);
  assert.equal(typeof e.message, 'string', what);
  assert.ok((e.message as string).length > 0 && !(e.message as string).includes('\n'), `${what}: not one clear line: ${res.text.slice(0, 200)}`);
  return e as { code: string; message: string };
}

/**
 * The daemon still serves after abuse: the process lives, `GET /api/v1/daemon` answers RUNNING, and files of the
 * mount read back exactly as the sample tree holds them (sha256), under `sub` of the mountpoint.
 */
export async function assertServing(d: { daemon: Daemon; sock: string; mountpoint: string }, what: string, sub = ''): Promise<void> {
  assert.ok(d.daemon.running, `${what}: nydusd exited: ${d.daemon.stderr.slice(-2000)}`);
  const res = await request(d.sock, 'GET', '/api/v1/daemon');
  assert.equal(res.status, 200, `${what}: GET /api/v1/daemon: ${res.text}`);
  assert.equal((res.json as { state: string }).state, 'RUNNING', what);
  for (const f of SAMPLE_FILES) {
    assert.equal(sha256(readFileSync(path.join(d.mountpoint, sub, f))), sha256(readFileSync(path.join(SAMPLE_TREE, f))), `${what}: ${f} reads wrong`);
  }
}

/**
 * Writes raw bytes on a new connection (then `body`, if any) and returns what comes back until the first response
 * is complete; for requests an HTTP client would not send.
 */
export function rawExchange(sock: string, bytes: string | Buffer, body?: Buffer, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(sock);
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no complete answer to ${JSON.stringify(bytes.slice(0, 40).toString())}: ${got}`));
    }, timeoutMs);
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      got += d;
      const head = got.indexOf('\r\n\r\n');
      const len = /content-length: (\d+)/i.exec(got);
      if (head >= 0 && (!len || got.length - head - 4 >= Number(len[1]))) {
        clearTimeout(timer);
        s.destroy();
        resolve(got);
      }
    });
    // the server may end the connection while a large body is still being written: keep what it answered
    s.on('error', (e) => (/HTTP\/1\.1 \d{3}/.test(got) ? undefined : reject(e)));
    s.write(bytes);
    // the body in pieces, yielding between them, so that an answer the server sends early is read before the rest
    // is written (a server that then ends the connection would make a later write fail with EPIPE)
    let at = 0;
    const more = () => {
      if (!body || at >= body.length || /HTTP\/1\.1 \d{3}/.test(got) || s.destroyed) return;
      s.write(body.subarray(at, at + 65536), () => setImmediate(more));
      at += 65536;
    };
    more();
  });
}

/** Status and parsed body of a raw answer (`rawExchange`). */
export function parseRaw(raw: string): ApiResponse {
  const head = raw.indexOf('\r\n\r\n');
  const lines = raw.slice(0, head < 0 ? raw.length : head).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? NaN);
  const headers: http.IncomingHttpHeaders = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const text = head < 0 ? '' : raw.slice(head + 4);
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status, headers, text, json };
}
