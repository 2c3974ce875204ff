// Drives the real nydusd's management API over its Unix socket, as nydus-snapshotter does: spawn the daemon with
// --apisock, poll for the socket file, then HTTP/1.1 requests (each on its own connection unless told otherwise).
import { cpSync, existsSync, mkdirSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { projectRoot } from '../helpers/paths.js';
import { Daemon, sleep, tempDir } from '../nydusd/helpers.js';

export const SAMPLE = path.join(projectRoot, 'bootstrap-samples', 'v6-zstd');

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
