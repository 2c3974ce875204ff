// Shared plumbing of the benchmarks: timing child processes, medians, machine facts, tables, and the
// mount/daemon bookkeeping that must be undone however a run ends.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { REF_NYDUSD } from '../test/helpers/peers.js';
import { fileURLToPath } from 'node:url';

/** The checkout root (dist/bench/common.js -> ../..). */
export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const nydusImageJs = path.join(projectRoot, 'dist/src/cli/nydus-image.js');
export const nydusdJs = path.join(projectRoot, 'dist/src/cli/nydusd.cjs');

export interface CommonArgs {
  work: string;
  runs: number;
  rest: Map<string, string>;
}

/** `--work DIR` (datasets and images, default /tmp/nydus-bench), `--runs N` (default 3), other `--k v` pairs. */
export function parseCommonArgs(argv: string[]): CommonArgs {
  const rest = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    if (eq > 0) rest.set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) rest.set(a.slice(2), argv[++i]);
    else rest.set(a.slice(2), 'true');
  }
  const runs = Number(rest.get('runs') ?? '3');
  if (!Number.isInteger(runs) || runs < 1 || runs > 20) throw new Error(`--runs must be 1..20, got ${rest.get('runs')}`);
  const work = path.resolve(rest.get('work') ?? '/tmp/nydus-bench');
  rest.delete('runs');
  rest.delete('work');
  fs.mkdirSync(work, { recursive: true });
  return { work, runs, rest };
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function nowSec(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

export interface RunResult {
  seconds: number;
  /** user + system CPU seconds of the command and its waited-for children (from /usr/bin/time) */
  cpuSeconds: number;
  /** peak resident set of the command (largest single process), MiB */
  maxRssMiB: number;
  stdout: Buffer;
  stderr: string;
}

let timeFileSeq = 0;
/** GNU time (package `time`); without it the CPU columns read NaN. */
const HAVE_TIME = fs.existsSync('/usr/bin/time');

/**
 * Runs a command to completion, timing it from spawn to exit; a non-zero exit is an Error with its stderr.
 * CPU time is taken too: on this shared machine, wall time swings with other people's load while CPU
 * seconds per unit of work stay comparable.
 */
export function timed(cmd: string, args: string[], opts: { stdoutToNull?: boolean; cwd?: string; input?: Buffer } = {}): RunResult {
  const timeFile = path.join(os.tmpdir(), `nydus-bench-time-${process.pid}-${timeFileSeq++}`);
  const [c, a] = HAVE_TIME ? ['/usr/bin/time', ['-f', '%U %S %M', '-o', timeFile, cmd, ...args]] : [cmd, args];
  const t0 = nowSec();
  const r = spawnSync(c, a, {
    cwd: opts.cwd,
    input: opts.input,
    maxBuffer: 1 << 30,
    stdio: [opts.input ? 'pipe' : 'ignore', opts.stdoutToNull ? 'ignore' : 'pipe', 'pipe'],
  });
  const seconds = nowSec() - t0;
  const { cpuSeconds, maxRssMiB } = readTimeFile(timeFile);
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}: ${r.stderr?.toString().slice(-2000)}`);
  return { seconds, cpuSeconds, maxRssMiB, stdout: r.stdout ?? Buffer.alloc(0), stderr: r.stderr?.toString() ?? '' };
}

/** What GNU time wrote (`%U %S %M`), then the file is removed; NaN when there is none. */
function readTimeFile(timeFile: string): { cpuSeconds: number; maxRssMiB: number } {
  try {
    const [u, s, kb] = fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
    return { cpuSeconds: u + s, maxRssMiB: kb / 1024 };
  } catch {
    return { cpuSeconds: NaN, maxRssMiB: NaN }; // no CPU figure; the wall time still stands
  } finally {
    fs.rmSync(timeFile, { force: true });
  }
}

/**
 * `timed` without blocking the event loop, for benchmarks whose servers are children of this process writing to pipes
 * it drains (FuseServer reads each daemon's stderr): a blocked loop stops draining them, and a chatty server stalls on
 * its next write, as docker-registry did while it logged to a pipe (the harness now gives it a file).
 */
export function timedAsync(cmd: string, args: string[], opts: { stdoutToNull?: boolean } = {}): Promise<RunResult> {
  const timeFile = path.join(os.tmpdir(), `nydus-bench-time-${process.pid}-${timeFileSeq++}`);
  const [c, a] = HAVE_TIME ? ['/usr/bin/time', ['-f', '%U %S %M', '-o', timeFile, cmd, ...args]] : [cmd, args];
  const t0 = nowSec();
  const child = spawn(c, a, { stdio: ['ignore', opts.stdoutToNull ? 'ignore' : 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => out.push(d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.once('error', (e) => reject(new Error(`${cmd}: ${e.message}`)));
    child.once('close', (status, signal) => {
      const seconds = nowSec() - t0;
      const { cpuSeconds, maxRssMiB } = readTimeFile(timeFile);
      if (status !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited with ${status ?? signal}: ${stderr.slice(-2000)}`));
      else resolve({ seconds, cpuSeconds, maxRssMiB, stdout: Buffer.concat(out), stderr });
    });
  });
}

/** Like `timed` through `sh -c`, for pipelines and redirections. */
export function timedSh(script: string): RunResult {
  return timed('sh', ['-c', script], { stdoutToNull: true });
}

export function sh(script: string): string {
  const r = spawnSync('sh', ['-c', script], { maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`sh -c '${script}' failed (${r.status}): ${r.stderr.toString().slice(-2000)}`);
  return r.stdout.toString();
}

/** Empties the page cache, dentries and inodes, as the cold runs need (root only). */
export function dropCaches(): void {
  sh('sync; echo 3 > /proc/sys/vm/drop_caches');
}

export function machineInfo(): string {
  const load = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  return [
    `date: ${new Date().toISOString()}`,
    `machine: nproc=${os.cpus().length}, kernel ${os.release()}, node ${process.version}, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM`,
    `load average at start: ${load}`,
  ].join('\n');
}

export function loadavg(): string {
  return os.loadavg().map((l) => l.toFixed(2)).join(' ');
}

/** Prints a GitHub-markdown table (ready to paste into BENCHMARKS.md). */
export function printTable(header: string[], rows: (string | number)[][]): void {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)));
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${header.map(() => '---').join('|')}|`);
  for (const r of cells) console.log(`| ${r.join(' | ')} |`);
}

/** Three significant figures down to 0.001 (a 0.047 s first read printed as 0.05 hid a 6 % difference). */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(1);
  if (Math.abs(x) >= 1) return x.toFixed(2);
  return x.toFixed(3);
}

export function runsList(xs: number[]): string {
  return xs.map(fmt).join(' / ');
}

/** Total bytes of regular files and number of entries (root included) under a directory, without following links. */
export function treeStats(dir: string): { bytes: number; entries: number; files: number } {
  let bytes = 0;
  let entries = 1;
  let files = 0;
  const seen = new Set<string>();
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop()!;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      entries++;
      const p = path.join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) {
        const st = fs.lstatSync(p);
        files++;
        const key = `${st.dev}:${st.ino}`;
        if (st.nlink > 1) {
          if (seen.has(key)) continue;
          seen.add(key);
        }
        bytes += st.size;
      }
    }
  }
  return { bytes, entries, files };
}

export function fileSize(p: string): number {
  return fs.statSync(p).size;
}

export function dirSize(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.isFile()) n += fs.statSync(path.join(dir, e.name)).size;
  }
  return n;
}

export function rmrf(p: string): void {
  fs.rmSync(p, { recursive: true, force: true });
}

// ---- mounts and daemons ----------------------------------------------------------------------------------------

export function isMounted(dir: string): boolean {
  const real = fs.existsSync(dir) ? fs.realpathSync(dir) : dir;
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === real.replace(/ /g, '\\040'));
}

export async function waitFor(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A mounted FUSE server (nydusd or squashfuse_ll) running in the foreground as our child. */
export class FuseServer {
  private exited = false;
  private stderrTail = '';

  private constructor(
    readonly name: string,
    readonly mountpoint: string,
    private readonly child: ChildProcess,
  ) {
    child.on('exit', () => (this.exited = true));
    child.stderr?.on('data', (d: Buffer) => (this.stderrTail = (this.stderrTail + d.toString()).slice(-4000)));
    child.stdout?.on('data', () => undefined);
  }

  static async start(name: string, cmd: string, args: string[], mountpoint: string): Promise<FuseServer> {
    fs.mkdirSync(mountpoint, { recursive: true });
    if (isMounted(mountpoint)) throw new Error(`${mountpoint} is already mounted`);
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const s = new FuseServer(name, mountpoint, child);
    live.add(s);
    try {
      await waitFor(() => isMounted(mountpoint) || s.exited, `${name} to mount ${mountpoint}`);
      if (s.exited) throw new Error(`${name} exited before mounting: ${s.stderrTail}`);
      // The mount appears before INIT completes; one stat waits for it.
      fs.statSync(mountpoint);
      // nydusd creates its API socket once mounted (nydusd-runtime.md 1.9 step 8), a moment after the mount appears:
      // a script that asks the API at once would race it
      const api = args.indexOf('--apisock');
      if (api >= 0) await untilRunning(args[api + 1]!, () => s.exited, name);
    } catch (e) {
      await s.stop();
      throw e;
    }
    return s;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Peak resident set of the server so far (VmHWM), MiB. */
  peakRssMiB(): number {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${this.child.pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  }

  /** User + system CPU seconds the server process (all its threads) has used so far. */
  cpuSeconds(): number {
    return processCpuSeconds(this.child.pid!);
  }

  /** Unmounts and waits for the server to exit; lazy unmount and SIGKILL are the last resorts. */
  async stop(): Promise<void> {
    live.delete(this);
    try {
      if (isMounted(this.mountpoint)) {
        const r = spawnSync('fusermount3', ['-u', this.mountpoint]);
        if (r.status !== 0) spawnSync('umount', [this.mountpoint]);
        if (isMounted(this.mountpoint)) spawnSync('umount', ['-l', this.mountpoint]);
      }
      if (!this.exited) {
        await waitFor(() => this.exited, `${this.name} to exit`, 10_000).catch(() => {
          this.child.kill('SIGTERM');
          return waitFor(() => this.exited, `${this.name} to exit after SIGTERM`, 5_000);
        });
      }
    } catch {
      if (!this.exited) this.child.kill('SIGKILL');
    }
  }
}

const live = new Set<FuseServer>();
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim()) || 100;

/** User + system CPU seconds a live process (all its threads) has used so far. */
export function processCpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields 14 and 15 of stat(5), counted after "pid (comm) ": indexes 11 and 12
  return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
}

/** Stops every server still running (finally blocks and signals call this). */
export async function stopAll(): Promise<void> {
  for (const s of [...live]) await s.stop();
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    void stopAll().finally(() => process.exit(130));
  });
}

/** Writes a nydusd v2 config: localfs backend on `blobDir`, blobcache in `cacheDir` (`compressed`: cache.compressed). */
export function writeNydusdConfig(file: string, blobDir: string, cacheDir: string, compressed = false): void {
  const cfg = {
    version: 2,
    id: 'bench',
    backend: { type: 'localfs', localfs: { dir: blobDir } },
    cache: { type: 'blobcache', compressed, filecache: { work_dir: cacheDir } },
    rafs: { mode: 'direct', enable_xattr: true },
  };
  fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
}

/** `nodeArgs` go before the script, e.g. `--cpu-prof --cpu-prof-dir D` (the profile is written when nydusd exits). */
export async function startNydusd(
  bootstrap: string,
  blobDir: string,
  work: string,
  mountpoint: string,
  nodeArgs: string[] = [],
  opts: { keepCache?: boolean; compressed?: boolean; args?: string[] } = {},
): Promise<FuseServer> {
  const cacheDir = path.join(work, 'nydusd-cache');
  if (!opts.keepCache) rmrf(cacheDir);
  fs.mkdirSync(cacheDir, { recursive: true });
  const cfg = path.join(work, 'nydusd-config.json');
  writeNydusdConfig(cfg, blobDir, cacheDir, opts.compressed);
  return FuseServer.start('nydusd', process.execPath, [...nodeArgs, nydusdJs, 'fuse', '--config', cfg, '--bootstrap', bootstrap, '--mountpoint', mountpoint, '--log-level', 'warn', ...(opts.args ?? [])], mountpoint);
}

/** Resident set of a live process now (VmRSS), and its anonymous and file-backed parts, MiB. */
export function rssMiB(pid: number): { rss: number; anon: number; file: number } {
  const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(st)?.[1] ?? NaN) / 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') };
}

/** The reference nydusd (nydus-rs, `npm run peers`), where the differential tests find it too. */
export const referenceNydusd = REF_NYDUSD;

/**
 * The reference nydusd on the same image, backend and cache layout as `startNydusd` (its own cache directory). Its v1
 * configuration is the one nydus-snapshotter writes; `--rlimit-nofile 0` keeps it from raising RLIMIT_NOFILE to 10^6,
 * which fails where the hard limit is lower (it exits "Operation not permitted").
 */
export async function startReferenceNydusd(
  bootstrap: string,
  blobDir: string,
  work: string,
  mountpoint: string,
  opts: { keepCache?: boolean; compressed?: boolean; args?: string[] } = {},
): Promise<FuseServer> {
  if (!fs.existsSync(referenceNydusd)) throw new Error(`the reference nydusd is missing at ${referenceNydusd}: run npm run peers`);
  const cacheDir = path.join(work, 'nydusd-rs-cache');
  if (!opts.keepCache) rmrf(cacheDir);
  fs.mkdirSync(cacheDir, { recursive: true });
  const cfg = path.join(work, 'nydusd-rs-config.json');
  fs.writeFileSync(cfg, JSON.stringify({
    device: { backend: { type: 'localfs', config: { dir: blobDir } }, cache: { type: 'blobcache', compressed: opts.compressed ?? false, config: { work_dir: cacheDir } } },
    mode: 'direct', digest_validate: false, enable_xattr: true,
  }));
  return FuseServer.start('nydusd-rs', referenceNydusd, ['fuse', '--config', cfg, '--bootstrap', bootstrap, '--mountpoint', mountpoint, '--log-level', 'warn', '--rlimit-nofile', '0', ...(opts.args ?? [])], mountpoint);
}

/** Resident set of a process now, MiB. */
export function rssNowMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export async function startSquashfuse(image: string, mountpoint: string): Promise<FuseServer> {
  return FuseServer.start('squashfuse_ll', 'squashfuse_ll', ['-f', image, mountpoint], mountpoint);
}

/** One request to a daemon's API socket (a JSON body when given): status and body text. */
export function apiRequest(sock: string, method: string, url: string, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: sock, method, path: url, headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {} }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Polls GET /api/v1/daemon on `sock` until it answers with state RUNNING (at most 10 s, or until `gone`). */
async function untilRunning(sock: string, gone: () => boolean, name: string): Promise<void> {
  const end = Date.now() + 10_000;
  for (;;) {
    const r = fs.existsSync(sock) ? await apiRequest(sock, 'GET', '/api/v1/daemon').catch(() => undefined) : undefined;
    if (r?.status === 200 && (JSON.parse(r.text) as { state?: string }).state === 'RUNNING') return;
    if (gone() || Date.now() > end) throw new Error(`${name}: not RUNNING on the API socket ${sock}`);
    await new Promise((res) => setTimeout(res, 10));
  }
}
