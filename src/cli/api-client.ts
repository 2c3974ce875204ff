// A client of nydusd's management API: HTTP/1.1 over its Unix socket (spec nydusd-runtime.md 3.1), one request per
// connection. Used by nydusctl; a socket that is missing or that nobody serves is one clear error, not a stack.
import http from 'node:http';

export interface ApiAnswer {
  status: number;
  /** the body as sent ('' for a 204) */
  text: string;
  /** the body parsed, or undefined when empty */
  json: unknown;
}

export class ApiUnreachableError extends Error {
  constructor(sock: string, reason: string) {
    super(`cannot connect to nydusd's API socket ${sock}: ${reason}`);
    this.name = 'ApiUnreachableError';
  }
}

const REASONS: Record<string, string> = {
  ENOENT: 'no such file (is nydusd running with --apisock?)',
  ECONNREFUSED: 'connection refused (no daemon serves this socket)',
  EACCES: 'permission denied',
  ENOTSOCK: 'not a socket',
};

/** nydus-snapshotter's HTTP client gives each call 30 s (snapshotter-contract.md 3.7); so does this one. */
export const API_TIMEOUT_MS = 30_000;

export function apiRequest(sock: string, method: string, path: string, body?: string, timeoutMs = API_TIMEOUT_MS): Promise<ApiAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'User-Agent': 'nydusctl' };
    // an exact Content-Length (the reference's server takes no chunked bodies)
    if (body !== undefined) Object.assign(headers, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) });
    const req = http.request({ socketPath: sock, method, path, headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          return reject(new Error(`${method} ${path}: the daemon answered ${res.statusCode} with a body that is not JSON: ${text.slice(0, 200)}`));
        }
        resolve({ status: res.statusCode!, text, json });
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path}: no answer from ${sock} within ${timeoutMs / 1000} s`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      const reason = err.code ? REASONS[err.code] : undefined;
      reject(reason || (err.code && err.syscall === 'connect') ? new ApiUnreachableError(sock, reason ?? err.message) : err);
    });
    req.end(body);
  });
}

/** A query value as nydusctl sends it: unencoded where HTTP allows (`mountpoint=/sub`, spec 5.1), escaped elsewhere. */
export function queryValue(v: string): string {
  return encodeURIComponent(v).replace(/%2F/gi, '/');
}
