// A fake Dragonfly-style forward proxy on loopback, for unit tests of proxy mode (nydusd-runtime.md 7.5): absolute-form
// requests (`GET http://host/path`) are forwarded to their target and the answer relayed; CONNECT opens a tunnel to
// the target; `GET /server/ping` (origin-form) is its health endpoint. Every request is recorded with its headers.
// On demand it answers the next forwarded requests with an injected status (optionally marked
// `X-Dragonfly-Error-Type: proxy` like dfdaemon's own errors), and it can be stopped (every connection cut, the port
// refusing) and started again on the same port.
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface ProxiedRequest {
  method: string;
  /** the request target as sent: absolute-form for forwarded requests, host:port for CONNECT, a path for the ping */
  url: string;
  headers: http.IncomingHttpHeaders;
}

export interface ProxyFault {
  status: number;
  /** mark the answer as the proxy's own error (`X-Dragonfly-Error-Type: proxy`) */
  dragonfly?: boolean;
}

export class FakeProxy {
  readonly requests: ProxiedRequest[] = [];
  /** faults for the next forwarded requests, in order */
  readonly faults: ProxyFault[] = [];
  /** the status the ping answers (200 unless set) */
  pingStatus = 200;
  private server: http.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  static async start(): Promise<FakeProxy> {
    const p = new FakeProxy();
    await p.listen();
    return p;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pingUrl(): string {
    return `${this.url}/server/ping`;
  }

  /** Forwarded requests (not pings, not CONNECTs). */
  get forwarded(): ProxiedRequest[] {
    return this.requests.filter((r) => r.method !== 'CONNECT' && !r.url.startsWith('/'));
  }

  get pings(): number {
    return this.requests.filter((r) => r.url === '/server/ping').length;
  }

  get connects(): ProxiedRequest[] {
    return this.requests.filter((r) => r.method === 'CONNECT');
  }

  private async listen(): Promise<void> {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    server.on('connect', (req, socket: net.Socket, head) => {
      this.requests.push({ method: 'CONNECT', url: req.url ?? '', headers: req.headers });
      const [host, port] = (req.url ?? '').split(':');
      const upstream = net.connect(Number(port), host, () => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(socket).pipe(upstream);
      });
      this.sockets.add(upstream);
      upstream.on('close', () => this.sockets.delete(upstream));
      upstream.on('error', () => socket.destroy());
      socket.on('error', () => upstream.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const target = req.url ?? '';
    if (target === '/server/ping') {
      res.writeHead(this.pingStatus).end();
      return;
    }
    if (!/^https?:\/\//.test(target)) {
      res.writeHead(400).end('not a proxy request');
      return;
    }
    const fault = this.faults.shift();
    if (fault) {
      res.writeHead(fault.status, fault.dragonfly ? { 'x-dragonfly-error-type': 'proxy' } : {}).end(`injected ${fault.status}`);
      return;
    }
    const u = new URL(target);
    const headers = { ...req.headers };
    delete headers['proxy-connection'];
    const up = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: req.method, headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502).end(`upstream failed: ${err.message}`);
      else res.destroy();
    });
    req.pipe(up);
  }

  /** Stops listening and cuts every connection: the port refuses from now on. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Listens again on the same port. */
  async restart(): Promise<void> {
    await this.listen();
  }

  close(): Promise<void> {
    return this.stop();
  }
}
