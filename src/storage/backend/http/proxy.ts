// HTTP proxy mode (nydusd-runtime.md 7.5): a transport that sends a backend's requests through a Dragonfly-style
// forward proxy (dfdaemon's proxy port) and falls back to the origin when allowed.
//
// Per request: with no proxy URL, directly. `bypassProxy` (7.4's last on-demand retry and the retry after a Dragonfly
// 429) goes directly too, but only while `fallback` is on: with `fallback: false` nothing ever goes to the origin
// directly (issue 11 acceptance: a dead proxy without fallback is a clear error, not a read served around it; the
// reference's retry would bypass it once). Otherwise, when the proxy is healthy (proxy-health.ts; always, without `ping_url`): through the proxy with
// the Dragonfly headers; a transport error or a status >= 500 is resent directly when `fallback` is on, and is the
// answer when it is off. When unhealthy: directly with `fallback`, else the error "proxy is not healthy and fallback is
// disabled". An answer the proxy marks `X-Dragonfly-Error-Type: proxy` becomes an error with a code the retry policy
// reads (errors.ts: 429 rate limited, 403 forbidden, other statuses a generic proxy error).
//
// `use_http` is decided on the first proxied request (7.5): if its URL is https, every proxied https URL is sent as
// http from then on; if it is http, nothing is ever rewritten. Direct requests use the original URL.
//
// The proxy URL can change at run time (`proxy_url` through PUT /api/v1/config, DECISIONS.md row 10): '' turns
// proxying off, a new URL takes effect for the next request. Clients of earlier URLs keep their requests in flight and
// are closed with the transport. Token requests never come here (the registry client sends them directly, 7.3).
import type { ProxyConfig } from '../../../config/model.js';
import type { Log } from '../../../log.js';
import { NetworkError, errorCode } from '../errors.js';
import { HttpClient, type HttpClientOptions, type HttpRequest, type HttpResponse, type HttpTransport } from './client.js';
import { ProxyHealth } from './proxy-health.js';

/** The X-Dragonfly-Priority of a proxied read (7.5). */
const PRIORITY = { 'on-demand': '6', prefetch: '3' } as const;

export interface ProxyTransportOptions {
  proxy: ProxyConfig;
  /** the network options of the backend: the proxy's client uses the same timeouts and TLS settings */
  network: Omit<HttpClientOptions, 'forwardProxy'>;
  /** the backend, for log lines */
  name: string;
  log?: Log;
  /** injected for tests: the health check's ping */
  ping?: (url: URL, signal: AbortSignal) => Promise<number>;
}

export class ProxyTransport implements HttpTransport {
  private via: HttpClient | undefined;
  private url = '';
  private health: ProxyHealth | undefined;
  private readonly retired: HttpClient[] = [];
  /** undefined until the first proxied request decides it (use_http) */
  private httpsToHttp: boolean | undefined;
  private lastActivity = Date.now();
  /** the proxy failed the last proxied request: a fallback was logged, its recovery will be */
  private failing = false;
  private closed = false;
  /** requests sent to the proxy, and the ones resent directly after it failed (for tests and diagnostics) */
  readonly counts = { proxied: 0, fallbacks: 0, direct: 0 };

  constructor(
    private readonly direct: HttpTransport,
    private readonly opts: ProxyTransportOptions,
  ) {
    if (opts.proxy.dragonfly_scheduler_endpoint) this.schedulerEndpointSet();
    this.setUrl(opts.proxy.url);
  }

  /** the proxy URL in use ('' = none) */
  get proxyUrl(): string {
    return this.url;
  }

  /** whether the health check holds the proxy healthy (always true without `ping_url`) */
  get healthy(): boolean {
    return this.health?.healthy ?? true;
  }

  /** The health checker, when `ping_url` is set and a proxy is in use (tests run checks through it). */
  get checker(): ProxyHealth | undefined {
    return this.health;
  }

  /** Points the transport at another proxy ('' = none) from the next request on (2.6 `proxy_url`). */
  setUrl(url: string): void {
    url = url.trim();
    if (url === this.url || this.closed) return;
    // a URL that cannot work is refused before anything changes: the proxy in use stays
    const client = url ? new HttpClient({ ...this.opts.network, forwardProxy: url }) : undefined;
    if (this.via) this.retired.push(this.via);
    void this.health?.close();
    this.health = undefined;
    this.via = client;
    const before = this.url;
    this.url = url;
    this.failing = false;
    const { proxy, log, name } = this.opts;
    if (client && proxy.ping_url) {
      this.health = new ProxyHealth({
        pingUrl: proxy.ping_url,
        checkInterval: proxy.check_interval,
        checkPauseElapsed: proxy.check_pause_elapsed,
        timeout: this.opts.network.connectTimeout,
        lastActivity: () => this.lastActivity,
        proxy: client.proxyOrigin!,
        log,
        ping: this.opts.ping,
      });
    }
    if (before || url) {
      log?.('info', url
        ? `${name}: requests go through proxy ${client!.proxyOrigin} (fallback ${proxy.fallback ? 'on' : 'off'}${proxy.ping_url ? `, health check ${proxy.ping_url} every ${Math.max(proxy.check_interval, 1)} s` : ''})`
        : `${name}: proxy turned off; requests go directly`);
    }
  }

  /** 2.6 `dragonfly_scheduler_endpoint`: SDK mode is out of scope (DECISIONS.md row 5), said once. */
  schedulerEndpointSet(): void {
    if (this.sdkLogged) return;
    this.sdkLogged = true;
    this.opts.log?.('info', `${this.opts.name}: dragonfly_scheduler_endpoint is set, but Dragonfly SDK mode is not supported; proxy.url is used as an HTTP proxy (${this.url || 'none set'})`);
  }

  private sdkLogged = false;

  async request(req: HttpRequest): Promise<HttpResponse> {
    this.lastActivity = Date.now();
    const via = this.via;
    const { fallback } = this.opts.proxy;
    if (!via || (req.bypassProxy && fallback)) {
      this.counts.direct++;
      return this.direct.request(req);
    }
    if (!this.healthy) {
      if (!fallback) throw new NetworkError(`proxy is not healthy and fallback is disabled (proxy ${via.proxyOrigin})`, 'ND_ERR_PROXY');
      this.counts.direct++;
      return this.direct.request(req);
    }
    this.counts.proxied++;
    let res: HttpResponse;
    try {
      res = await via.request({ ...req, url: this.proxiedUrl(req.url), headers: { ...req.headers, ...dragonflyHeaders(req) } });
    } catch (err) {
      // the caller's own abort is not the proxy's failure
      if (req.signal?.aborted && err === req.signal.reason) throw err;
      const e = new NetworkError(`proxy ${via.proxyOrigin}: ${(err as Error).message}`, errorCode(err) ?? 'ND_ERR_SOCKET', { cause: err });
      if (!fallback) throw e;
      return this.fallBack(req, e.message);
    }
    if (res.status >= 500 && fallback) {
      await res.discard();
      return this.fallBack(req, `proxy ${via.proxyOrigin} answered ${res.status}`);
    }
    if (this.failing) {
      this.failing = false;
      this.opts.log?.('info', `${this.opts.name}: proxy ${via.proxyOrigin} answers again; requests go through it`);
    }
    if (res.status >= 400 && res.header('x-dragonfly-error-type') === 'proxy') throw await proxyError(res, via.proxyOrigin!);
    return res;
  }

  private fallBack(req: HttpRequest, why: string): Promise<HttpResponse> {
    this.counts.fallbacks++;
    if (!this.failing) {
      // once per failing spell, not per request: a dead proxy under load would flood the log
      this.failing = true;
      this.opts.log?.('warn', `${this.opts.name}: ${why}; falling back to ${req.url.protocol}//${req.url.host} directly`);
    }
    return this.direct.request(req);
  }

  /** 7.5 `use_http`, decided on the first proxied request. */
  private proxiedUrl(url: URL): URL {
    if (!this.opts.proxy.use_http) return url;
    this.httpsToHttp ??= url.protocol === 'https:';
    return this.httpsToHttp && url.protocol === 'https:' ? new URL(url.href.replace('https', 'http')) : url;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.health?.close();
    await Promise.allSettled([this.via, ...this.retired].map((c) => c?.close()));
  }
}

/** The Dragonfly headers of a proxied request (7.5). */
function dragonflyHeaders(req: HttpRequest): Record<string, string> {
  return {
    'x-dragonfly-priority': PRIORITY[req.kind ?? 'on-demand'],
    'x-dragonfly-use-p2p': 'true',
    'x-dragonfly-prefetch': 'true',
  };
}

/** An answer marked `X-Dragonfly-Error-Type: proxy` as the error the retry policy reads (7.4, 7.5). */
async function proxyError(res: HttpResponse, origin: string): Promise<NetworkError> {
  const text = (await res.text(512).catch(() => '')).replace(/\s+/g, ' ').trim().slice(0, 200);
  const detail = text ? `: ${text}` : '';
  if (res.status === 429) return new NetworkError(`proxy ${origin} rate limited the request (429)${detail}`, 'ND_ERR_PROXY_RATE_LIMITED', { status: 429 });
  if (res.status === 403) return new NetworkError(`proxy ${origin} forbade the request (403)${detail}`, 'ND_ERR_PROXY_FORBIDDEN', { status: 403 });
  return new NetworkError(`proxy ${origin} failed the request (${res.status})${detail}`, 'ND_ERR_PROXY', { status: res.status });
}
