// A fake Kraken agent server on loopback for unit tests of the kraken backend, following the agent's contract (spec
// p2p-seeds.md 3): `GET /health` -> 200 `OK`; `GET /namespace/<ns>/blobs/sha256:<hex>` -> 200 with the whole blob
// (no Range), 404 for a blob it does not hold. On demand the blob's body is sent with or without Content-Length (the
// real agent's Go server streams large blobs chunked), held after a number of bytes until released, cut (socket
// destroyed) after a number of bytes, or corrupted; /health can answer another status. Every request is recorded.
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KrakenConfig } from '../../../src/config/model.js';

export interface BlobBehaviour {
  /** send Content-Length (default true) */
  contentLength?: boolean;
  /** send this many bytes, then hold the rest until release() */
  holdAfter?: number;
  /** send this many bytes, then destroy the connection */
  cutAfter?: number;
  /** flip one byte in the middle */
  corrupt?: boolean;
  /** for this many requests, then back to normal (default: every request) */
  times?: number;
}

export class FakeKrakenAgent {
  readonly requests: { method: string; url: string }[] = [];
  private readonly blobs = new Map<string, Buffer>();
  private behaviour: BlobBehaviour = {};
  private releases: (() => void)[] = [];
  /** requests answered while holding */
  held = 0;
  healthStatus = 200;
  private server!: http.Server;
  origin = '';

  static async start(): Promise<FakeKrakenAgent> {
    const a = new FakeKrakenAgent();
    a.server = http.createServer((req, res) => a.handle(req, res));
    await new Promise<void>((r) => a.server.listen(0, '127.0.0.1', r));
    a.origin = `http://127.0.0.1:${(a.server.address() as AddressInfo).port}`;
    return a;
  }

  /** Holds `data`; returns its id (sha256 hex). */
  addBlob(data: Buffer): string {
    const id = crypto.createHash('sha256').update(data).digest('hex');
    this.blobs.set(id, data);
    return id;
  }

  /** blob GETs so far (of `id`, when given) */
  blobGets(id?: string): number {
    return this.requests.filter((r) => r.method === 'GET' && r.url.includes('/blobs/') && (!id || r.url.endsWith(id))).length;
  }

  setBehaviour(b: BlobBehaviour): void {
    this.behaviour = { ...b };
  }

  /** lets every held body go on */
  release(): void {
    const rs = this.releases;
    this.releases = [];
    for (const r of rs) r();
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.requests.push({ method: req.method ?? '', url: req.url ?? '' });
    if (req.url === '/health') {
      res.writeHead(this.healthStatus, { 'content-type': 'text/plain' });
      res.end(this.healthStatus === 200 ? 'OK' : 'unhealthy');
      return;
    }
    const m = /^\/namespace\/([^/]+)\/blobs\/sha256:([0-9a-f]{64})$/.exec(req.url ?? '');
    const data = m ? this.blobs.get(m[2]!) : undefined;
    if (req.method !== 'GET' || !m || !data) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    let b = this.behaviour;
    if (b.times !== undefined) {
      if (b.times <= 0) b = this.behaviour = {};
      else b.times--;
    }
    const body = b.corrupt ? Buffer.from(data) : data;
    if (b.corrupt) body[body.length >> 1] ^= 0xff;
    res.writeHead(200, b.contentLength === false ? {} : { 'content-length': String(body.length) });
    if (b.cutAfter !== undefined) {
      res.write(body.subarray(0, b.cutAfter), () => setImmediate(() => res.socket?.destroy()));
      return;
    }
    if (b.holdAfter !== undefined) {
      this.held++;
      res.write(body.subarray(0, b.holdAfter));
      this.releases.push(() => res.end(body.subarray(b.holdAfter)));
      return;
    }
    res.end(body);
  }

  /** Stops listening and cuts every connection: the agent is gone. */
  async close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** A kraken backend configuration for `agent` (namespace `library/test`, health checks off unless asked). */
export function krakenConfigFor(agent: FakeKrakenAgent | string, o: Partial<KrakenConfig> = {}): KrakenConfig {
  return {
    agent: typeof agent === 'string' ? agent : agent.origin,
    namespace: 'library/test',
    timeout: 10,
    connect_timeout: 5,
    check_interval: 0,
    spool_dir: '',
    skip_verify: false,
    ca_cert_files: [],
    ...o,
  };
}
