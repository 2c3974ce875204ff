// The `kraken` backend, our extension (issue 11 scope 4; spec p2p-seeds.md 3). A Kraken agent server serves a blob
// only whole (`GET /namespace/<namespace>/blobs/sha256:<id>`, no Range), so the first read of a blob starts one
// download of the whole blob into a spool file (spool.ts), and every read of that blob, the first included, is
// answered from the file as soon as its bytes have arrived; concurrent reads share the one download. A download that
// fails fails the reads waiting on it, and the next read starts a new one. `GET /health` every `check_interval`
// (health.ts): while the agent is unhealthy, a read that would need a new download fails at once with the reason;
// reads of a blob already spooled keep being answered.
//
// The spool lives in a directory this backend creates (under `spool_dir`, default the system temp dir) and removes on
// close, never in the cache's work_dir: the blob cache owns that directory's files (spec nydusd-runtime.md 6.1). A
// spooled blob stays until close, so chunks the cache has not kept are still answered without the agent. The agent
// (a host-local peer, plain HTTP on loopback as a rule) goes through the shared HTTP client (http/client.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KrakenConfig } from '../../../config/model.js';
import type { Log } from '../../../log.js';
import type { BlobBackend, ReadKind } from '../blob-backend.js';
import { BackendError, NetworkError, errorCode } from '../errors.js';
import { HttpClient } from '../http/client.js';
import { AgentHealth } from './health.js';
import { BlobSpool } from './spool.js';

/** A blob id is the blob's sha256 (hex): it is the digest the agent is asked for and the body is checked against. */
const BLOB_ID = /^[0-9a-f]{64}$/;

export interface KrakenBackendOptions {
  log?: Log;
}

export class KrakenBackend implements BlobBackend {
  readonly kind = 'kraken';
  readonly health: AgentHealth;
  /** downloads started, for tests and diagnostics */
  downloads = 0;
  private readonly http: HttpClient;
  private readonly probe: HttpClient;
  private readonly spools = new Map<string, BlobSpool>();
  private readonly agentName: string;
  private readonly dir: string;
  private closed = false;
  private readonly log?: Log;

  constructor(private readonly config: KrakenConfig, opts: KrakenBackendOptions = {}) {
    this.log = opts.log;
    this.agentName = `the Kraken agent at ${config.agent}`;
    const tls = { skipVerify: config.skip_verify, caCertFiles: config.ca_cert_files };
    // no whole-exchange timeout: a whole blob takes as long as it takes; the spool's stall timer bounds silence instead
    this.http = new HttpClient({ timeout: 0, connectTimeout: config.connect_timeout, ...tls });
    // a health check is one short exchange: bounded by `timeout` (or 10 s when that is 0)
    const probe = new HttpClient({ timeout: config.timeout || 10, connectTimeout: config.connect_timeout, connections: 1, ...tls });
    this.health = new AgentHealth(new URL('/health', config.agent), probe, config.check_interval, this.agentName, opts.log);
    this.probe = probe;
    // made now: a spool_dir that cannot hold it fails the mount, not every read
    const parent = config.spool_dir || os.tmpdir();
    try {
      this.dir = mkdtempSync(path.join(parent, 'nydus-kraken-'));
    } catch (err) {
      this.health.stop();
      throw new NetworkError(`spool_dir: cannot make a spool directory in ${parent}: ${(err as Error).message}`, 'ND_ERR_CONFIG', { cause: err });
    }
  }

  private checkId(blobId: string): void {
    if (!BLOB_ID.test(blobId)) throw new BackendError(`kraken: blob id ${JSON.stringify(blobId)} is not a sha256 digest`, blobId, { code: 'ND_ERR_CONFIG' });
  }

  /** The blob's download: the running or finished one, or a new one (refused while the agent is unhealthy). */
  private spool(blobId: string): BlobSpool {
    if (this.closed) throw new NetworkError('the backend is closed', 'ND_ERR_CLOSED');
    const cur = this.spools.get(blobId);
    if (cur && cur.state !== 'failed') return cur;
    if (!this.health.healthy) throw new NetworkError(`${this.agentName} is unhealthy (${this.health.reason}); not downloading`, 'ND_ERR_CONNECT');
    const url = new URL(`/namespace/${encodeURIComponent(this.config.namespace)}/blobs/sha256:${blobId}`, this.config.agent);
    this.downloads++;
    const s = new BlobSpool({
      url,
      file: path.join(this.dir, `${blobId}.${this.downloads}.spool`),
      digest: blobId,
      http: this.http,
      stallMs: Math.min(this.config.timeout * 1000, 2 ** 31 - 1),
      agentName: this.agentName,
      onFail: (err, written) => {
        if (err.code === 'ND_ERR_CLOSED') return;
        if (err.code === 'ND_ERR_CONNECT') this.health.down(err.message);
        this.log?.('warn', `kraken: downloading blob ${blobId} failed after ${written} bytes: ${err.message}`);
      },
    });
    this.spools.set(blobId, s);
    this.log?.('debug', `kraken: downloading blob ${blobId} from ${this.agentName}`);
    void s.finished.then(() => {
      if (s.state === 'done') this.log?.('debug', `kraken: blob ${blobId} spooled, ${s.total} bytes`);
    });
    return s;
  }

  async read(blobId: string, offset: number, length: number, signal?: AbortSignal, into?: Buffer, _kind?: ReadKind): Promise<Buffer> {
    this.checkId(blobId);
    const what = `kraken: blob ${blobId} [${offset}, +${length})`;
    try {
      const s = this.spool(blobId);
      await s.until(offset + length, signal);
      const buf = into?.length === length ? into : Buffer.allocUnsafe(length);
      return length === 0 ? buf : await s.read(offset, length, buf);
    } catch (err) {
      throw this.wrap(err, what, blobId, signal);
    }
  }

  /** From the download's Content-Length (it starts the download when none runs), or its end without one. */
  async size(blobId: string): Promise<number> {
    this.checkId(blobId);
    try {
      return await this.spool(blobId).size();
    } catch (err) {
      throw this.wrap(err, `kraken: size of blob ${blobId}`, blobId);
    }
  }

  private wrap(err: unknown, what: string, blobId: string, signal?: AbortSignal): unknown {
    if (signal?.aborted && err === signal.reason) return err;
    if (err instanceof BackendError) return err;
    return new BackendError(`${what}: ${(err as Error).message}`, blobId, { cause: err, code: errorCode(err) ?? 'ND_ERR_SOCKET' });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.health.stop();
    const closedErr = new NetworkError('the backend is closed', 'ND_ERR_CLOSED');
    const spools = [...this.spools.values()];
    for (const s of spools) s.abort(closedErr);
    this.spools.clear();
    await Promise.allSettled(spools.map((s) => s.finished));
    await this.http.close();
    await this.probe.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
