// The Prometheus endpoint of `--metrics-address host:port` (our extension): GET /metrics in the text exposition
// format, anything else 404. It binds exactly where it is told; the README asks for a loopback address, since the
// metrics name mountpoints and cache paths (never a secret).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** `host:port` -> its parts; `[::1]:9110` for IPv6. */
export function parseAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const port = Number(address.slice(i + 1));
  if (i <= 0 || !host || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`invalid metrics address ${JSON.stringify(address)}: expected host:port`);
  }
  return { host, port };
}

export class PrometheusServer {
  private constructor(private readonly server: http.Server) {}

  /** The address actually bound (the port when 0 was asked). */
  get address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  static async start(address: string, registry: Registry): Promise<PrometheusServer> {
    const { host, port } = parseAddress(address);
    const server = http.createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'GET' || path !== '/metrics') {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: the metrics are at GET /metrics\n');
        return;
      }
      registry.metrics().then(
        (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
        (err: Error) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`collecting metrics failed: ${err.message}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new Error(`cannot serve metrics on ${address}: ${err.message}`)));
      server.listen(port, host, () => resolve());
    });
    return new PrometheusServer(server);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
