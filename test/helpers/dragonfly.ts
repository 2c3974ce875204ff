// A real Dragonfly cluster on loopback (issue 11; spec p2p-seeds.md 1, nydusd-runtime.md 7.5), from the binaries
// scripts/p2p-peers.sh builds (Dragonfly v2.0.9): MariaDB and Redis (Debian's, own data dirs and ports), the manager,
// one scheduler, a seed peer and N ordinary peers (`dfget daemon`), each peer's HTTP proxy sending registry blob GETs
// (`/v2/.../blobs/sha256:...`) into the P2P network. Everything lives in one temp dir and dies with the test process.
//
// What nydusd's proxy mode needs from a peer: `proxyUrl` (the forward proxy: absolute-form http:// requests),
// `pingUrl` (the health endpoint; the proxy port itself answers 404 to `GET /`, which spec 7.5's 200-399 rule would
// read as unhealthy). A request went through P2P when the answer carries `X-Dragonfly-Task` / `X-Dragonfly-Peer` and the
// peer's `dragonfly_dfdaemon_proxy_request_via_dragonfly_total` grew; one served by another peer leaves no new GET at
// the registry. Ranged GETs are tasks of their own: the network fetches exactly that range from the registry (one
// GET with the same Range), a later GET of the same range from any peer is served by the network, but a range is not
// cut from an earlier whole-blob task. The peer answers them `206` with `Content-Range: bytes a-b/<b+1>` (the total
// is the range's end + 1, not the blob's size). A registry error status (404 ...) comes back as is.
//
// Preheat: v2.0.9's manager runs jobs at `/api/v1/jobs` without authentication; the Open API of later versions
// (`/oapi/v1/jobs` with a personal access token, p2p-seeds.md 1) does not exist yet in it. `openApi` is a thin front
// that checks the token and forwards to the real job API, the only stand-in part (the jobs themselves run for real).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Daemon, engineBin, freePorts, httpRequest, httpStatus, portOpen, requireTools, scrape, startRedis, waitFor } from './p2p-engines.js';

const START_TIMEOUT_MS = 90_000;

/** A Dragonfly job as the manager answers it (the fields the tests read). */
export interface DragonflyJob {
  id: number;
  task_id: string;
  type: string;
  state: string;
  args: Record<string, unknown>;
  result: { State?: string; JobStates?: Array<{ State: string; Error: string; TaskName: string }> } | null;
}

export class DragonflyPeer {
  readonly daemon: Daemon;

  constructor(
    readonly name: string,
    readonly seed: boolean,
    readonly ports: { peer: number; upload: number; health: number; proxy: number; metrics: number },
    configFile: string,
    logFile: string,
  ) {
    this.daemon = new Daemon(`dfget daemon (${name})`, path.join(engineBin('dragonfly', 'dfget'), 'dfget'), ['daemon', '--config', configFile, '--console'], logFile);
  }

  /** The forward proxy (dfdaemon's proxy port) for nydusd's `proxy.url`. */
  get proxyUrl(): string {
    return `http://127.0.0.1:${this.ports.proxy}`;
  }

  /** dfdaemon's health endpoint for nydusd's `proxy.ping_url` (200 while the daemon runs). */
  get pingUrl(): string {
    return `http://127.0.0.1:${this.ports.health}/server/ping`;
  }

  get metricsUrl(): string {
    return `http://127.0.0.1:${this.ports.metrics}/metrics`;
  }

  metrics(): Promise<Map<string, number>> {
    return scrape(this.metricsUrl);
  }

  /** Starts the daemon (again, after `stop`) and waits until its health endpoint and proxy answer. */
  async start(): Promise<void> {
    this.daemon.start();
    await waitFor(`${this.daemon.name} to answer on ${this.pingUrl} and accept on its proxy port ${this.ports.proxy}`, async () => (await httpStatus(this.pingUrl)) === 200 && (await portOpen(this.ports.proxy)), START_TIMEOUT_MS, [this.daemon]);
  }

  /** Kills the daemon (SIGKILL) and waits until it is gone: its proxy port then refuses connections. */
  stop(): Promise<void> {
    return this.daemon.stop();
  }
}

export interface DragonflyOptions {
  /** ordinary peers (proxies), 1 unless given */
  peers?: number;
  /** start a seed peer (needed for preheat and for a first download served by a peer), true unless given */
  seedPeer?: boolean;
}

export class DragonflyCluster {
  readonly daemons: Daemon[] = [];
  readonly peers: DragonflyPeer[] = [];
  seedPeer: DragonflyPeer | undefined;
  managerPort = 0;
  private openApiServer: http.Server | undefined;

  private constructor(readonly dir: string) {}

  /** The manager's REST API (jobs at `/api/v1/jobs`, the 0.x-style `/preheats`, health at `/healthy`). */
  get managerUrl(): string {
    return `http://127.0.0.1:${this.managerPort}`;
  }

  static async start(options: DragonflyOptions = {}): Promise<DragonflyCluster> {
    const bin = engineBin('dragonfly', 'manager', 'scheduler', 'dfget');
    requireTools('mariadbd', 'mariadb-install-db', 'mariadb', 'redis-server');
    const c = new DragonflyCluster(mkdtempSync(path.join(os.tmpdir(), 'nydus-dragonfly-')));
    try {
      await c.boot(bin, options.peers ?? 1, options.seedPeer ?? true);
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  private async boot(bin: string, peerCount: number, withSeed: boolean): Promise<void> {
    const dbPort = await this.startMariaDb();
    const redis = await startRedis(path.join(this.dir, 'redis'));
    this.daemons.push(redis.daemon);

    // manager: its REST port for jobs, its gRPC port for the scheduler and the seed peer. The cache TTLs are short so
    // that the scheduler learns of a new seed peer within seconds (defaults: 30 s in Redis, 10 s in memory).
    const [grpcPort, restPort] = await freePorts(2);
    this.managerPort = restPort!;
    const mdir = path.join(this.dir, 'manager');
    const managerYaml = `server:
  name: d7y/manager
  workHome: ${mdir}
  cacheDir: ${mdir}/cache
  logDir: ${mdir}/log
  pluginDir: ${mdir}/plugins
  grpc:
    advertiseIP: 127.0.0.1
    listenIP: 127.0.0.1
    port:
      start: ${grpcPort}
      end: ${grpcPort}
  rest:
    addr: 127.0.0.1:${restPort}
auth:
  jwt:
    realm: Dragonfly
    key: ${randomBytes(24).toString('base64')}
    timeout: 48h
    maxRefresh: 48h
database:
  type: mysql
  mysql:
    user: dragonfly
    password: dragonfly
    host: 127.0.0.1
    port: ${dbPort}
    dbname: manager
    migrate: true
  redis:
    addrs: ["127.0.0.1:${redis.port}"]
    db: 0
    brokerDB: 1
    backendDB: 2
cache:
  redis:
    ttl: 1s
  local:
    size: 1000
    ttl: 1s
metrics:
  enable: false
security:
  autoIssueCert: false
`;
    const manager = this.daemon('manager', path.join(bin, 'manager'), ['--config', this.write('manager.yaml', managerYaml), '--console']);
    await waitFor(`the Dragonfly manager to answer ${this.managerUrl}/healthy`, async () => (await httpStatus(`${this.managerUrl}/healthy`)) === 200, START_TIMEOUT_MS, [manager]);

    // scheduler (cluster 1, which the manager's first migration creates), its jobs queue in the same Redis
    const [schedPort, schedMetrics] = await freePorts(2);
    const sdir = path.join(this.dir, 'scheduler');
    const schedulerYaml = `server:
  advertiseIP: 127.0.0.1
  listenIP: 127.0.0.1
  port: ${schedPort}
  host: nydus-ts-scheduler
  workHome: ${sdir}
  cacheDir: ${sdir}/cache
  logDir: ${sdir}/log
  pluginDir: ${sdir}/plugins
  dataDir: ${sdir}/data
scheduler:
  algorithm: default
  backToSourceCount: 3
  retryBackToSourceLimit: 5
  retryLimit: 10
  retryInterval: 50ms
  gc:
    pieceDownloadTimeout: 30m
    peerGCInterval: 10s
    peerTTL: 24h
    taskGCInterval: 30m
    hostGCInterval: 6h
    hostTTL: 1h
dynConfig:
  refreshInterval: 1s
manager:
  addr: 127.0.0.1:${grpcPort}
  schedulerClusterID: 1
  keepAlive:
    interval: 2s
seedPeer:
  enable: ${withSeed}
job:
  enable: true
  globalWorkerNum: 4
  schedulerWorkerNum: 4
  localWorkerNum: 4
  redis:
    addrs: ["127.0.0.1:${redis.port}"]
    brokerDB: 1
    backendDB: 2
metrics:
  enable: true
  addr: 127.0.0.1:${schedMetrics}
security:
  autoIssueCert: false
networkTopology:
  enable: false
`;
    const scheduler = this.daemon('scheduler', path.join(bin, 'scheduler'), ['--config', this.write('scheduler.yaml', schedulerYaml), '--console']);
    await waitFor(`the Dragonfly scheduler to accept on ${schedPort}`, () => portOpen(schedPort!), START_TIMEOUT_MS, [manager, scheduler]);

    if (withSeed) {
      this.seedPeer = await this.peer('seed', true, { managerGrpc: grpcPort!, schedulerPort: schedPort! });
      await this.seedPeer.start();
      // The scheduler hands out (and preheats through) only the seed peers its dynamic config has picked up from the
      // manager; it logs the new list when it changes.
      const seedAddr = `127.0.0.1:${this.seedPeer.ports.peer}`;
      await waitFor(`the scheduler to learn of the seed peer ${seedAddr}`, () => scheduler.logHas(new RegExp(`addresses have been updated: .*"${seedAddr.replace(/\./g, '\\.')}"`)), START_TIMEOUT_MS, [manager, scheduler, this.seedPeer.daemon]);
    }
    for (let i = 1; i <= peerCount; i++) {
      const p = await this.peer(`peer${i}`, false, { managerGrpc: grpcPort!, schedulerPort: schedPort! });
      await p.start();
      this.peers.push(p);
    }
  }

  /** MariaDB with its own data dir, socket and port, the manager's database and user made through the socket. */
  private async startMariaDb(): Promise<number> {
    const ddir = path.join(this.dir, 'mariadb');
    const data = path.join(ddir, 'data');
    mkdirSync(data, { recursive: true });
    const init = spawnSync('mariadb-install-db', ['--no-defaults', '--user=root', `--datadir=${data}`, '--auth-root-authentication-method=normal', '--skip-test-db'], { encoding: 'utf8' });
    if (init.status !== 0) throw new Error(`mariadb-install-db failed (${init.status}): ${init.stderr || init.stdout}`);
    const [port] = await freePorts(1);
    const socket = path.join(ddir, 'mysqld.sock');
    const db = this.daemon('mariadbd', 'mariadbd', [
      '--no-defaults',
      '--user=root',
      `--datadir=${data}`,
      `--socket=${socket}`,
      `--pid-file=${path.join(ddir, 'mysqld.pid')}`,
      '--skip-networking=0',
      '--bind-address=127.0.0.1',
      `--port=${port}`,
      '--skip-log-bin',
      '--innodb-buffer-pool-size=32M',
    ]);
    const sql = (q: string) => spawnSync('mariadb', ['--no-defaults', `--socket=${socket}`, '-uroot', '-e', q], { encoding: 'utf8' });
    await waitFor('MariaDB to answer on its socket', () => sql('SELECT 1').status === 0, START_TIMEOUT_MS, [db]);
    const made = sql("CREATE DATABASE manager; CREATE USER 'dragonfly'@'%' IDENTIFIED BY 'dragonfly'; GRANT ALL ON manager.* TO 'dragonfly'@'%';");
    if (made.status !== 0) throw new Error(`creating the manager's database failed: ${made.stderr}`);
    return port!;
  }

  private async peer(name: string, seed: boolean, at: { managerGrpc: number; schedulerPort: number }): Promise<DragonflyPeer> {
    const [peer, upload, health, proxy, metrics] = await freePorts(5);
    const d = path.join(this.dir, name);
    // A seed peer registers with the manager (which tells the scheduler); an ordinary peer is pointed at the
    // scheduler directly. Every listener is on loopback; the proxy sends registry blob GETs into the P2P network.
    const scheduler = seed
      ? `scheduler:
  manager:
    enable: true
    netAddrs:
      - type: tcp
        addr: 127.0.0.1:${at.managerGrpc}
    refreshInterval: 1s
    seedPeer:
      enable: true
      type: super
      clusterID: 1
      keepAlive:
        interval: 2s
  scheduleTimeout: 30s`
      : `scheduler:
  manager:
    enable: false
  netAddrs:
    - type: tcp
      addr: 127.0.0.1:${at.schedulerPort}
  scheduleTimeout: 30s`;
    const yaml = `aliveTime: 0s
gcInterval: 1m0s
workHome: ${d}
cacheDir: ${d}/cache
logDir: ${d}/log
pluginDir: ${d}/plugins
dataDir: ${d}/data
keepStorage: false
metrics: 127.0.0.1:${metrics}
${scheduler}
host:
  hostname: nydus-ts-${name}
  advertiseIP: 127.0.0.1
download:
  calculateDigest: true
  totalRateLimit: 1024Mi
  perPeerRateLimit: 512Mi
  pieceDownloadTimeout: 30s
  downloadGRPC:
    security:
      insecure: true
    unixListen:
      socket: ${d}/dfdaemon.sock
  peerGRPC:
    security:
      insecure: true
    tcpListen:
      listen: 127.0.0.1
      port: ${peer}
upload:
  rateLimit: 1024Mi
  security:
    insecure: true
  tcpListen:
    listen: 127.0.0.1
    port: ${upload}
objectStorage:
  enable: false
health:
  security:
    insecure: true
  tcpListen:
    listen: 127.0.0.1
    port: ${health}
  path: /server/ping
proxy:
  defaultFilter: "Expires&Signature&ns"
  security:
    insecure: true
  tcpListen:
    listen: 127.0.0.1
    port: ${proxy}
  proxies:
    - regx: /v2/.*/blobs/sha256.*
`;
    const config = this.write(`${name}.yaml`, yaml);
    return new DragonflyPeer(name, seed, { peer: peer!, upload: upload!, health: health!, proxy: proxy!, metrics: metrics! }, config, path.join(this.dir, `${name}.log`));
  }

  private daemon(name: string, command: string, args: string[]): Daemon {
    const d = new Daemon(name, command, args, path.join(this.dir, `${name}.log`));
    this.daemons.push(d);
    d.start();
    return d;
  }

  private write(name: string, text: string): string {
    const file = path.join(this.dir, name);
    writeFileSync(file, text);
    return file;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Jobs (preheat)

  /** `POST /api/v1/jobs` with `body` (`{"type": "preheat", "args": {...}}`); the created job. */
  async createJob(body: unknown): Promise<DragonflyJob> {
    const res = await httpRequest(`${this.managerUrl}/api/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (res.status !== 200 && res.status !== 201) throw new Error(`POST /api/v1/jobs: ${res.status} ${res.body.toString('utf8')}`);
    return JSON.parse(res.body.toString('utf8')) as DragonflyJob;
  }

  async job(id: number): Promise<DragonflyJob> {
    const res = await httpRequest(`${this.managerUrl}/api/v1/jobs/${id}`);
    if (res.status !== 200) throw new Error(`GET /api/v1/jobs/${id}: ${res.status} ${res.body.toString('utf8')}`);
    return JSON.parse(res.body.toString('utf8')) as DragonflyJob;
  }

  /** Polls a job until it leaves PENDING (SUCCESS or FAILURE); throws after `timeoutMs`. */
  async finishedJob(id: number, timeoutMs = 60_000): Promise<DragonflyJob> {
    return waitFor(`job ${id} to finish`, async () => {
      const j = await this.job(id);
      return j.state === 'SUCCESS' || j.state === 'FAILURE' ? j : undefined;
    }, timeoutMs, this.daemons);
  }

  /**
   * The Open API front (see the header): `POST /oapi/v1/jobs` and `GET /oapi/v1/jobs/<id>` with
   * `Authorization: Bearer <token>` are forwarded to the manager's job API; anything else, or a wrong or missing
   * token, is answered as the manager's Open API does (401 `{"message": ...}`, 404). Every request is recorded. It
   * runs in the test process: a client started with spawnSync (or any synchronous wait) would block it, so run
   * clients such as `nydusify preheat` asynchronously.
   */
  async openApi(): Promise<{ url: string; token: string; requests: Array<{ method: string; path: string; authorization?: string; status: number }> }> {
    const token = randomBytes(16).toString('hex');
    const requests: Array<{ method: string; path: string; authorization?: string; status: number }> = [];
    const server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => parts.push(d));
      req.on('end', () => {
        const rec = { method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization, status: 0 };
        requests.push(rec);
        const answer = (status: number, body: Buffer | string) => {
          rec.status = status;
          res.writeHead(status, { 'content-type': 'application/json' }).end(body);
        };
        const m = /^\/oapi\/v1\/jobs(?:\/(\d+))?$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
        if (!m || (req.method === 'POST') === (m[1] !== undefined) || (req.method !== 'POST' && req.method !== 'GET')) return answer(404, JSON.stringify({ message: 'not found' }));
        if (req.headers.authorization !== `Bearer ${token}`) return answer(401, JSON.stringify({ message: 'invalid personal access token' }));
        const forwarded = req.method === 'POST'
          ? httpRequest(`${this.managerUrl}/api/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.concat(parts) })
          : httpRequest(`${this.managerUrl}/api/v1/jobs/${m[1]}`);
        forwarded.then((r) => answer(r.status, r.body), (e: Error) => answer(502, JSON.stringify({ message: e.message })));
      });
    });
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
    });
    this.openApiServer = server;
    return { url: `http://127.0.0.1:${port}`, token, requests };
  }

  /** Kills every process of the cluster and removes its directory. */
  async stop(): Promise<void> {
    if (this.openApiServer) {
      this.openApiServer.closeAllConnections();
      await new Promise((r) => this.openApiServer!.close(() => r(undefined)));
    }
    const all = [...this.peers.map((p) => p.daemon), ...(this.seedPeer ? [this.seedPeer.daemon] : []), ...this.daemons.slice().reverse()];
    for (const d of all) await d.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
