// Plain HTTP for test harnesses: one request on its own connection, the whole answer read, bounded against hangs.
import http from 'node:http';

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * One HTTP/1.1 request on its own connection, the whole answer read; bounded against hangs. With `proxy`, the request
 * goes to that forward proxy in absolute-form (as nydusd sends proxied registry requests, spec 7.5).
 */
export function httpRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string; proxy?: string; timeoutMs?: number } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const headers: Record<string, string> = { host: target.host, ...opts.headers };
    if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
    const via = opts.proxy ? new URL(opts.proxy) : target;
    const req = http.request(
      { host: via.hostname, port: via.port || 80, path: opts.proxy ? target.toString() : `${target.pathname}${target.search}`, method: opts.method ?? 'GET', headers, agent: false },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
        res.on('error', reject);
      },
    );
    const timeoutMs = opts.timeoutMs ?? 30_000;
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${opts.method ?? 'GET'} ${url}${opts.proxy ? ` via ${opts.proxy}` : ''}: no complete answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

