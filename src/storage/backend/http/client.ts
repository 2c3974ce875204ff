// The HTTP client every network backend shares (nydusd-runtime.md 7.1): one undici Pool per origin and backend, kept
// alive, with enough connections for several ranges in flight; TLS verified unless `skip_verify`, with `ca_cert_files`
// trusted too; `connect_timeout` for connecting and `timeout` for the whole exchange, body included; the default headers
// (headers.ts); redirects never followed here (the registry follows them itself, 7.2); HTTP(S)_PROXY ignored (a Pool
// connects directly, whatever the environment says).
//
// Proxy mode (7.5): backends send through the `HttpTransport` interface; proxy.ts wraps a direct client and a client
// made with `forwardProxy` (every request sent to that proxy: http:// targets in absolute-form through a Pool aimed at
// the proxy, anchors.md 4.2; https:// targets tunnelled with CONNECT) and decides per request which one to use. Token
// requests keep using a direct transport.
import { Pool, proxyAgentClass, type Dispatcher } from './undici.js';
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { ReadKind } from '../blob-backend.js';
import { NetworkError, errorCode } from '../errors.js';
import { defaultHeaders } from './headers.js';
import { tlsOptions } from './tls.js';

/** The longest a Node.js timer can wait (ms). */
const TIMER_MAX_MS = 2 ** 31 - 1;
/** connections per origin: at least 4 ranges must be in flight at once (issue 11) */
export const CONNECTIONS_PER_ORIGIN = 8;
const KEEP_ALIVE_MS = 60_000;

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A request body that can be sent more than once (an auth flow resends it): bytes, or a factory of fresh streams. */
export type RequestBody = Buffer | Uint8Array | string | (() => Readable | AsyncIterable<Uint8Array>);

export interface HttpRequest {
  method: HttpMethod;
  url: URL;
  headers?: Record<string, string>;
  body?: RequestBody;
  signal?: AbortSignal;
  /** who waits for the answer: sets the Dragonfly priority of a proxied request (7.5); default on-demand */
  kind?: ReadKind;
  /** never through a proxy (7.4: the last on-demand retry and a retry after a Dragonfly 429 bypass it) */
  bypassProxy?: boolean;
}

export interface HttpResponse {
  status: number;
  /** lower-case names */
  headers: IncomingHttpHeaders;
  /** the body as a stream; consume or discard it, or the connection stays busy until the timeout */
  body: Readable;
  /** our error for a failure while reading `body` (transport, timeout); the caller's own abort reason is kept */
  mapBodyError(err: unknown): unknown;
  /** a header's value (the first, when repeated) */
  header(name: string): string | undefined;
  /** the body as text, at most `limit` bytes kept (the rest is read and dropped) */
  text(limit?: number): Promise<string>;
  /** reads and drops the body, so the connection can be reused */
  discard(): Promise<void>;
  /** drops the body and its connection at once (an answer not worth reading to the end) */
  abort(): void;
}

/** What a backend sends requests through: this client, or later a proxying wrapper around it (7.5). */
export interface HttpTransport {
  request(req: HttpRequest): Promise<HttpResponse>;
}

export interface HttpClientOptions {
  /** seconds for the whole exchange including the body; 0 = none */
  timeout: number;
  /** seconds for TCP and TLS connection set-up; 0 = none */
  connectTimeout: number;
  skipVerify: boolean;
  caCertFiles: readonly string[];
  /** extra headers on every request (default: User-Agent and NYDUS_HEADER_* of the environment) */
  headers?: Record<string, string>;
  /** connections per origin (default CONNECTIONS_PER_ORIGIN) */
  connections?: number;
  /**
   * A forward proxy (`http://host:port`) every request goes to (7.5): http:// targets in absolute-form, https://
   * targets through CONNECT. Transport failures then name the proxy, which is what failed.
   */
  forwardProxy?: string;
}

/** One line for a transport failure, and its code. */
export function transportError(err: unknown, url: URL, timeoutSec: number): NetworkError {
  if (err instanceof NetworkError) return err;
  const e = err as NodeJS.ErrnoException & { code?: string };
  const where = `${url.protocol}//${url.host}`;
  const code = e?.code ?? '';
  // one line: OpenSSL's messages end in a newline
  const msg = (e?.message ?? String(err)).replace(/\s+/g, ' ').trim();
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return new NetworkError(`connecting to ${where} timed out`, 'ND_ERR_CONNECT', { cause: err });
  if (['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL'].includes(code)) {
    return new NetworkError(`cannot connect to ${where}: ${msg}`, 'ND_ERR_CONNECT', { cause: err });
  }
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO|HOSTNAME|ALTNAME/i.test(code) || /certificate|ssl|tls/i.test(msg)) {
    return new NetworkError(`TLS with ${where} failed: ${msg}`, 'ND_ERR_TLS', { cause: err });
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new NetworkError(`${where} did not answer within ${timeoutSec} s`, 'ND_ERR_TIMEOUT', { cause: err });
  }
  if (e?.name === 'AbortError' || code === 'UND_ERR_ABORTED') return new NetworkError(`request to ${where} aborted`, 'ND_ERR_SOCKET', { cause: err });
  return new NetworkError(`request to ${where} failed: ${msg}${code && !msg.includes(code) ? ` (${code})` : ''}`, 'ND_ERR_SOCKET', { cause: err });
}

function firstHeader(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export class HttpClient implements HttpTransport {
  private readonly pools = new Map<string, Dispatcher>();
  private readonly forward?: URL;
  private readonly tls: { ca?: string[]; rejectUnauthorized: boolean };
  private readonly extraHeaders: Record<string, string>;
  private closed = false;

  constructor(private readonly opts: HttpClientOptions) {
    // CA files are read now: a bad one fails the backend's creation, not its first read (2.4)
    this.tls = tlsOptions({ caCertFiles: opts.caCertFiles, skipVerify: opts.skipVerify });
    this.extraHeaders = opts.headers ?? defaultHeaders();
    if (opts.forwardProxy !== undefined) {
      let u: URL;
      try {
        u = new URL(opts.forwardProxy);
      } catch {
        throw new NetworkError(`proxy URL ${JSON.stringify(opts.forwardProxy)} is not a URL`, 'ND_ERR_CONFIG');
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new NetworkError(`proxy URL ${JSON.stringify(opts.forwardProxy)}: only http:// and https:// proxies are supported`, 'ND_ERR_CONFIG');
      this.forward = u;
    }
  }

  /** the forward proxy's origin, when this client sends through one */
  get proxyOrigin(): string | undefined {
    return this.forward?.origin;
  }

  /** the whole-exchange timeout in seconds (0 = none) */
  get timeoutSec(): number {
    return this.opts.timeout;
  }

  private pool(url: URL): Dispatcher {
    // through a forward proxy: one Pool at the proxy for every http:// target, one CONNECT agent for https:// ones
    if (this.forward) return url.protocol === 'http:' ? this.originPool(this.forward) : this.tunnel();
    return this.originPool(url);
  }

  private tunnel(): Dispatcher {
    let p = this.pools.get('CONNECT');
    if (!p) {
      const connectMs = Math.min(this.opts.connectTimeout * 1000, TIMER_MAX_MS);
      const ProxyAgent = proxyAgentClass();
      p = new ProxyAgent({
        uri: this.forward!.href,
        connections: this.opts.connections ?? CONNECTIONS_PER_ORIGIN,
        keepAliveTimeout: KEEP_ALIVE_MS,
        headersTimeout: 0,
        bodyTimeout: 0,
        proxyTls: { timeout: connectMs, ...(this.forward!.protocol === 'https:' ? this.tls : {}) },
        requestTls: { timeout: connectMs, ...this.tls },
      });
      this.pools.set('CONNECT', p);
    }
    return p;
  }

  private originPool(url: URL): Dispatcher {
    const origin = url.origin;
    let p = this.pools.get(origin);
    if (!p) {
      p = new Pool(origin, {
        connections: this.opts.connections ?? CONNECTIONS_PER_ORIGIN,
        keepAliveTimeout: KEEP_ALIVE_MS,
        // the whole-exchange timer below bounds the request; undici's own idle timers would only cut it shorter
        headersTimeout: 0,
        bodyTimeout: 0,
        connect: {
          timeout: Math.min(this.opts.connectTimeout * 1000, TIMER_MAX_MS),
          ...(url.protocol === 'https:' ? this.tls : {}),
        },
      });
      this.pools.set(origin, p);
    }
    return p;
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    if (this.closed) throw new NetworkError('the backend is closed', 'ND_ERR_CLOSED');
    const { url } = req;
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new NetworkError(`unsupported URL scheme in ${url.protocol}//${url.host}`, 'ND_ERR_CONFIG');
    const ctl = new AbortController();
    const onAbort = () => ctl.abort(req.signal!.reason);
    if (req.signal?.aborted) throw req.signal.reason;
    req.signal?.addEventListener('abort', onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const timeoutSec = this.opts.timeout;
    if (timeoutSec > 0) {
      timer = setTimeout(
        () => ctl.abort(new NetworkError(`${req.method} ${url.protocol}//${url.host}${url.pathname} timed out after ${timeoutSec} s`, 'ND_ERR_TIMEOUT')),
        Math.min(timeoutSec * 1000, TIMER_MAX_MS),
      );
      timer.unref();
    }
    const done = () => {
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', onAbort);
    };
    const body = typeof req.body === 'function' ? req.body() : req.body;
    const headers0 = { ...this.extraHeaders, ...lowerCase(req.headers ?? {}) };
    // absolute-form to the proxy for an http:// target (7.5), with the target's Host
    const absolute = this.forward !== undefined && url.protocol === 'http:';
    if (absolute) headers0.host = url.host;
    // a transport failure is the proxy's when there is one: that is what we connect to
    const failing = this.forward ?? url;
    let res;
    try {
      res = await this.pool(url).request({
        origin: absolute ? this.forward!.origin : url.origin,
        path: absolute ? url.href : url.pathname + url.search,
        method: req.method,
        headers: headers0,
        body: body as never,
        signal: ctl.signal,
      });
    } catch (err) {
      done();
      if (req.signal?.aborted && err === req.signal.reason) throw err;
      if (errorCode(err)) throw err;
      throw transportError(err, failing, timeoutSec);
    }
    const stream = res.body as unknown as Readable;
    // the timer runs until the body is consumed or dropped: `timeout` covers the whole exchange (7.1)
    stream.once('close', done);
    const headers = res.headers as IncomingHttpHeaders;
    const mapError = (err: unknown): unknown => bodyError(err, failing, timeoutSec, req.signal);
    return {
      status: res.statusCode,
      headers,
      body: stream,
      mapBodyError: mapError,
      header: (name) => firstHeader(headers, name),
      text: async (limit = 64 * 1024) => {
        const parts: Buffer[] = [];
        let kept = 0;
        try {
          for await (const chunk of stream) {
            const b = chunk as Buffer;
            if (kept < limit) {
              parts.push(b.subarray(0, limit - kept));
              kept += Math.min(b.length, limit - kept);
            }
          }
        } catch (err) {
          throw mapError(err);
        }
        return Buffer.concat(parts).toString('utf8');
      },
      abort: () => {
        stream.on('error', () => undefined);
        stream.destroy();
      },
      discard: async () => {
        try {
          for await (const _ of stream) void _;
        } catch {
          // a body we do not want may fail as it likes
        }
      },
    };
  }

  /** Closes every pool; requests in flight fail. */
  async close(): Promise<void> {
    this.closed = true;
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.allSettled(pools.map((p) => p.destroy()));
  }
}

function lowerCase(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}

/** Maps a body stream's failure to our error (transport, timeout), keeping the caller's own abort reason. */
export function bodyError(err: unknown, url: URL, timeoutSec: number, signal?: AbortSignal): unknown {
  if (signal?.aborted && err === signal.reason) return err;
  return errorCode(err) ? err : transportError(err, url, timeoutSec);
}
