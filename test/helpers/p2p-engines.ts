// What the Dragonfly and Kraken clusters of the tests share (issue 11; spec p2p-seeds.md, nydusd-runtime.md 7.5):
// where scripts/p2p-peers.sh installed the real engines, daemons run in process groups of their own that die with
// the test process (even when a test fails or the file is killed), free loopback ports, polling for a condition with a
// deadline, and a Redis server (both engines keep state in one). The registry they serve from is registry.ts's.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { httpRequest } from './http.js';
import { freePort, sha256, type RegistryClient } from './registry.js';

export { httpRequest, type HttpAnswer } from './http.js';

/** Pinned versions: keep in step with scripts/p2p-peers.sh. */
export const DRAGONFLY_VERSION = 'v2.0.9';
export const KRAKEN_VERSION = 'v0.1.4';

const p2pDir = path.join(process.env.NYDUS_TS_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'nydus-ts'), 'p2p');

/** The bin directory of an installed engine; throws (never skips) naming the installer when it is missing. */
export function engineBin(engine: 'dragonfly' | 'kraken', ...names: string[]): string {
  const version = engine === 'dragonfly' ? DRAGONFLY_VERSION : KRAKEN_VERSION;
  const dir = path.join(p2pDir, `${engine}-${version}`);
  const missing = names.filter((n) => !existsSync(path.join(dir, 'bin', n)));
  if (!existsSync(path.join(dir, '.installed')) || missing.length > 0) {
    throw new Error(`${engine} ${version} is not installed in ${dir} (missing: ${missing.join(', ') || '.installed'}); run \`bash scripts/p2p-peers.sh\` (also step 7 of scripts/setup.sh)`);
  }
  return path.join(dir, 'bin');
}

/** Throws unless each Debian program is on PATH, naming setup as the installer. */
export function requireTools(...tools: string[]): void {
  const missing = tools.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  if (missing.length > 0) throw new Error(`missing programs: ${missing.join(', ')}; run \`npm run setup\` as root (Debian packages in scripts/setup.sh)`);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

// ---------------------------------------------------------------------------------------------------------------
// Daemons

const live = new Set<Daemon>();

/** SIGKILLs every live daemon's process group (synchronous: usable from an 'exit' handler). */
function killAll(): void {
  for (const d of live) d.killGroup();
}

// A test file killed by a signal (the runner's timeout, Ctrl-C) would skip 'exit' handlers: exit instead, so that
// they all run (this file's and the other helpers').
process.once('exit', killAll);
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
  process.once(sig, () => process.exit(code));
}

/**
 * One long-running program, started in a process group of its own (Kraken's servers start nginx as a child, which
 * must die with them), its stdout and stderr appended to `logFile`. Registered so that it is killed when the test
 * process ends, however it ends.
 */
export class Daemon {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  exitStatus: string | undefined;

  constructor(
    readonly name: string,
    readonly command: string,
    readonly args: string[],
    readonly logFile: string,
    readonly options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
  ) {}

  get running(): boolean {
    return this.child !== undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    if (this.child) throw new Error(`${this.name} is already running`);
    mkdirSync(path.dirname(this.logFile), { recursive: true });
    const fd = openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(this.command, this.args, { cwd: this.options.cwd, env: this.options.env ?? process.env, stdio: ['ignore', fd, fd], detached: true });
    } finally {
      closeSync(fd);
    }
    this.child = child;
    this.exitStatus = undefined;
    live.add(this);
    this.exited = new Promise((resolve) => {
      child.once('error', (e) => {
        this.exitStatus = `could not start: ${e.message}`;
      });
      child.once('close', (code, signal) => {
        this.exitStatus ??= signal ? `killed by ${signal}` : `exited with status ${code}`;
        if (this.child === child) this.child = undefined;
        live.delete(this);
        resolve();
      });
    });
  }

  /** The last `max` characters of the log. */
  log(max = 3000): string {
    const text = existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
    return text.slice(-max);
  }

  /** Whether the log contains `needle` (a string or a pattern). */
  logHas(needle: string | RegExp): boolean {
    const text = existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
    return typeof needle === 'string' ? text.includes(needle) : needle.test(text);
  }

  killGroup(signal: NodeJS.Signals = 'SIGKILL'): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // already gone
    }
  }

  /** Kills the whole process group (SIGKILL: as abrupt as a crash) and waits until the leader is reaped. */
  async stop(): Promise<void> {
    if (!this.child) return;
    this.killGroup('SIGKILL');
    await this.exited;
  }

  /** Throws with the log's tail if the program is no longer running. */
  assertRunning(): void {
    if (!this.child) throw new Error(`${this.name} is not running (${this.exitStatus ?? 'never started'}); log ${this.logFile}:\n${this.log()}`);
  }
}

/**
 * Polls `check` every 100 ms until it returns a value other than undefined/false, or throws after `timeoutMs` with
 * `what` and the tails of the logs of `watch` (and at once when one of them has died).
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, watch: Daemon[] = []): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    for (const d of watch) d.assertRunning();
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      lastError = (e as Error).message;
    }
    if (Date.now() > deadline) {
      const logs = watch.map((d) => `--- ${d.name} (${d.logFile}):\n${d.log(1500)}`).join('\n');
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${lastError})` : ''}\n${logs}`);
    }
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Plain HTTP

/** The status of a GET, or 0 when nothing answers. */
export async function httpStatus(url: string): Promise<number> {
  try {
    return (await httpRequest(url, { timeoutMs: 3_000 })).status;
  } catch {
    return 0;
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A Prometheus text exposition parsed into `name{labels}` -> value. */
export async function scrape(url: string): Promise<Map<string, number>> {
  const res = await httpRequest(url, { timeoutMs: 5_000 });
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
  const out = new Map<string, number>();
  for (const line of res.body.toString('utf8').split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?)\s+(\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Redis

/** Debian's redis-server on 127.0.0.1:`port`, no persistence, its files in `dir`. Resolves once it answers PING. */
export async function startRedis(dir: string): Promise<{ daemon: Daemon; port: number }> {
  requireTools('redis-server', 'redis-cli');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const daemon = new Daemon('redis-server', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'], path.join(dir, 'redis.log'));
  daemon.start();
  await waitFor('redis-server to answer PING', () => spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG', 20_000, [daemon]);
  return { daemon, port };
}

// ---------------------------------------------------------------------------------------------------------------
// Images both engines can resolve

/**
 * Pushes a one-layer image under `repo:tag` with a Docker schema 2 manifest (config and layer blobs first) and
 * returns the manifest's digest. Both pinned engines read manifests as schema 2 only: Dragonfly v2.0.9's image preheat
 * asks for exactly that media type, and Kraken v0.1.4's build-index resolves only such tags; an OCI manifest is
 * "not found" to them.
 */
export async function pushDockerImage(client: RegistryClient, repo: string, tag: string, layer: Buffer): Promise<string> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [`sha256:${sha256(layer)}`] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: await client.pushBlob(repo, config), size: config.length },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: await client.pushBlob(repo, layer), size: layer.length }],
    }),
  );
  const put = await client.request(`/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json' }, body: manifest });
  if (put.status !== 201) throw new Error(`pushing the manifest ${repo}:${tag}: ${put.status} ${put.body.toString('utf8')}`);
  return `sha256:${sha256(manifest)}`;
}
