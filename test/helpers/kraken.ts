// A real Kraken cluster on loopback (issue 11 scope 4; spec p2p-seeds.md 3), from the binaries scripts/p2p-peers.sh
// builds (Kraken v0.1.4): origin, tracker (its peer store in a Redis of its own), build-index and one agent, the
// origin and build-index reading blobs and tags from a Distribution registry (Kraken's `registry_blob` and
// `registry_tag` backends, plain HTTP). Each Kraken server listens through an nginx it starts itself (Debian's
// /usr/sbin/nginx; the generated nginx configs go to /tmp/nginx/kraken-<component>, fixed by Kraken, so one cluster at
// a time on a machine), which binds the port on all interfaces; the Go servers sit behind unix sockets in the
// cluster's temp dir. Everything dies with the test process.
//
// What nydusd needs from the agent: `registryUrl` (the agent's registry port, the Distribution API's pull side: point
// the registry backend at it unchanged, ranges honoured) and `serverUrl` (the agent server: `GET /health` -> 200
// "OK", `GET /namespace/<ns>/blobs/<digest>` -> the whole blob, namespace = repository URL-escaped).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Daemon, engineBin, freePorts, httpRequest, httpStatus, requireTools, startRedis, waitFor } from './p2p-engines.js';

const START_TIMEOUT_MS = 90_000;

export class KrakenCluster {
  readonly daemons: Daemon[] = [];
  agent!: Daemon;
  ports = { originPeer: 0, origin: 0, tracker: 0, buildIndex: 0, agentPeer: 0, agentServer: 0, agentRegistry: 0 };
  private agentArgs: string[] = [];

  private constructor(
    readonly dir: string,
    /** `host:port` of the registry the origin and build-index read from */
    readonly registryHost: string,
  ) {}

  /** The agent's registry port (Distribution API, pull side). */
  get registryUrl(): string {
    return `http://127.0.0.1:${this.ports.agentRegistry}`;
  }

  /** The agent server (`/health`, `/namespace/<ns>/blobs/<digest>`, `/tags/<tag>`). */
  get serverUrl(): string {
    return `http://127.0.0.1:${this.ports.agentServer}`;
  }

  /** The origin's blob server (through its nginx). */
  get originUrl(): string {
    return `http://127.0.0.1:${this.ports.origin}`;
  }

  /** `GET /namespace/<ns>/blobs/<digest>` on the agent server: the URL nydusd's kraken backend reads whole blobs from. */
  blobUrl(namespace: string, digest: string): string {
    return `${this.serverUrl}/namespace/${encodeURIComponent(namespace)}/blobs/${digest}`;
  }

  static async start(registryHost: string): Promise<KrakenCluster> {
    const bin = engineBin('kraken', 'agent', 'origin', 'tracker', 'build-index');
    requireTools('nginx', 'redis-server');
    const c = new KrakenCluster(mkdtempSync(path.join(os.tmpdir(), 'nydus-kraken-')), registryHost);
    try {
      await c.boot(bin);
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  private async boot(bin: string): Promise<void> {
    const redis = await startRedis(path.join(this.dir, 'redis'));
    this.daemons.push(redis.daemon);
    const [originPeer, origin, tracker, buildIndex, agentPeer, agentServer, agentRegistry] = await freePorts(7);
    this.ports = { originPeer: originPeer!, origin: origin!, tracker: tracker!, buildIndex: buildIndex!, agentPeer: agentPeer!, agentServer: agentServer!, agentRegistry: agentRegistry! };
    const registryBackend = (kind: string) => `backends:
  - namespace: .*
    backend:
      ${kind}:
        address: ${this.registryHost}
        security:
          tls:
            client:
              disabled: true
`;

    const o = this.component('origin', `${registryBackend('registry_blob')}cluster:
  static: [127.0.0.1:${origin}]
hashring:
  max_replica: 1
metainfogen:
  piece_lengths:
    0: 1MB
peer_id_factory: addr_hash
scheduler:
  torrentlog:
    disable: true
localdb:
  source: ${this.dir}/origin/origin.db
castore:
  upload_dir: ${this.dir}/origin/upload/
  cache_dir: ${this.dir}/origin/cache/
blobserver:
  listener:
    net: unix
    addr: ${this.dir}/origin/blobserver.sock
writeback:
  retry_interval: 100ms
  poll_retries_interval: 250ms
`);
    const originDaemon = this.daemon('origin', path.join(bin, 'origin'), [`--config=${o}`, '--blobserver-hostname=127.0.0.1', `--blobserver-port=${origin}`, '--peer-ip=127.0.0.1', `--peer-port=${originPeer}`]);

    const t = this.component('tracker', `peerstore:
  redis:
    addr: 127.0.0.1:${redis.port}
origin:
  hosts:
    static: [127.0.0.1:${origin}]
trackerserver:
  announce_interval: 1s
  listener:
    net: unix
    addr: ${this.dir}/tracker/tracker.sock
peerhandoutpolicy:
  priority: completeness
`);
    const trackerDaemon = this.daemon('tracker', path.join(bin, 'tracker'), [`--config=${t}`, `--port=${tracker}`]);

    const b = this.component('build-index', `${registryBackend('registry_tag')}cluster:
  hosts:
    static: [127.0.0.1:${buildIndex}]
origin:
  hosts:
    static: [127.0.0.1:${origin}]
remotes: {}
tag_types:
  - namespace: .*
    type: docker
    root: tags
tag_store:
  write_through: false
localdb:
  source: ${this.dir}/build-index/index.db
store:
  upload_dir: ${this.dir}/build-index/upload/
  cache_dir: ${this.dir}/build-index/cache/
tagserver:
  listener:
    net: unix
    addr: ${this.dir}/build-index/tagserver.sock
tag_replication:
  retry_interval: 100ms
  poll_retries_interval: 250ms
writeback:
  retry_interval: 100ms
  poll_retries_interval: 250ms
`);
    const buildIndexDaemon = this.daemon('build-index', path.join(bin, 'build-index'), [`--config=${b}`, `--port=${buildIndex}`]);

    const a = this.component('agent', `scheduler:
  torrentlog:
    disable: true
  dispatch:
    piece_request_policy: rarest_first
  conn:
    bandwidth:
      enable: false
store:
  download_dir: ${this.dir}/agent/download/
  cache_dir: ${this.dir}/agent/cache/
registry:
  docker:
    version: 0.1
    log:
      level: error
    http:
      net: unix
      addr: ${this.dir}/agent/registry.sock
peer_id_factory: addr_hash
allowed_cidrs: [127.0.0.1]
tracker:
  hosts:
    static: [127.0.0.1:${tracker}]
build_index:
  hosts:
    static: [127.0.0.1:${buildIndex}]
`);
    this.agentArgs = [`--config=${a}`, '--peer-ip=127.0.0.1', `--peer-port=${agentPeer}`, `--agent-server-port=${agentServer}`, `--agent-registry-port=${agentRegistry}`];
    this.agent = this.daemon('agent', path.join(bin, 'agent'), this.agentArgs);

    const all = [redis.daemon, originDaemon, trackerDaemon, buildIndexDaemon, this.agent];
    for (const [what, url] of [
      ['origin', `${this.originUrl}/health`],
      ['tracker', `http://127.0.0.1:${tracker}/health`],
      ['build-index', `http://127.0.0.1:${buildIndex}/health`],
      ['agent server', `${this.serverUrl}/health`],
      ['agent registry', `${this.registryUrl}/v2/`],
    ] as const) {
      await waitFor(`the Kraken ${what} to answer 200 on ${url}`, async () => (await httpStatus(url)) === 200, START_TIMEOUT_MS, all);
    }
  }

  /** Kills the agent (its nginx too) and waits until it is gone: its ports then refuse connections. */
  stopAgent(): Promise<void> {
    return this.agent.stop();
  }

  /** Starts the agent again (same ports and store) and waits until its server and registry port answer. */
  async startAgent(): Promise<void> {
    this.agent.start();
    await waitFor('the Kraken agent to answer again', async () => (await httpStatus(`${this.serverUrl}/health`)) === 200 && (await httpStatus(`${this.registryUrl}/v2/`)) === 200, START_TIMEOUT_MS, [this.agent]);
  }

  /** `GET /health` of the agent server. */
  health(): Promise<{ status: number; body: string }> {
    return httpRequest(`${this.serverUrl}/health`, { timeoutMs: 5_000 }).then((r) => ({ status: r.status, body: r.body.toString('utf8') }));
  }

  /**
   * A component's config: logs to stdout (the daemon's log file), its nginx's files in the cluster's dir, TLS off
   * between the components (plain HTTP on loopback), then the component's own part.
   */
  private component(name: string, own: string): string {
    const d = path.join(this.dir, name);
    mkdirSync(d, { recursive: true });
    const file = path.join(this.dir, `${name}.yaml`);
    writeFileSync(
      file,
      `zap:
  level: info
  development: false
  encoding: console
  disableStacktrace: true
  encoderConfig:
    messageKey: message
    levelKey: level
    timeKey: ts
    callerKey: caller
    levelEncoder: capital
    timeEncoder: iso8601
    durationEncoder: seconds
    callerEncoder: short
  outputPaths: [stdout]
  errorOutputPaths: [stdout]
metrics:
  m3:
    service: kraken-${name}
tls:
  name: kraken
  server:
    disabled: true
  client:
    disabled: true
nginx:
  name: kraken-${name}
  cache_dir: ${d}/nginx-cache/
  log_dir: ${d}/
${own}`,
    );
    return file;
  }

  private daemon(name: string, command: string, args: string[]): Daemon {
    const d = new Daemon(`kraken ${name}`, command, args, path.join(this.dir, `${name}.log`));
    this.daemons.push(d);
    d.start();
    return d;
  }

  /** Kills every process of the cluster (nginx included) and removes its directory. */
  async stop(): Promise<void> {
    for (const d of this.daemons.slice().reverse()) await d.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
