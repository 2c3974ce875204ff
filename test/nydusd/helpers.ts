// Drives the real `nydusd` CLI the way nydus-snapshotter does: spawn it as a child process, wait until its
// FUSE mount shows up in /proc/self/mountinfo, and always take it down again (SIGTERM, then SIGKILL and a
// lazy umount as the last resort), even when the test failed half-way.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { projectRoot } from '../helpers/paths.js';
import { loadImageFile } from '../image/helpers.js';
import type { Bootstrap, ChunkInfo } from '../../src/image-model.js';
import { mountAt, readMounts } from '../../src/fuse/mountinfo.js';

export const NYDUSD = path.join(projectRoot, 'dist', 'src', 'cli', 'nydusd.cjs');

/** Prerequisites are part of CI: a missing tool or device is a loud failure, never a skip. */
export function requireEnv(tools: string[] = []): void {
  if (process.getuid?.() !== 0) throw new Error('the nydusd tests mount FUSE filesystems and must run as root');
  if (!existsSync('/dev/fuse')) throw new Error('/dev/fuse is missing: the nydusd tests need kernel FUSE');
  if (!existsSync(NYDUSD)) throw new Error(`${NYDUSD} is missing: build the project first (npx tsc -p tsconfig.json)`);
  for (const t of tools) {
    if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0) throw new Error(`required tool '${t}' is not installed (CI must provide it)`);
  }
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `nydusd-${prefix}-`));
}

/** Runs a command to completion; a non-zero status fails with its stderr. */
export function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: opts.cwd, env: opts.env, maxBuffer: 1 << 28, timeout: 60_000 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/**
 * Runs a command without blocking this process (so several can overlap, or overlap a daemon's work); a run
 * longer than `timeoutMs` is killed and reported as a hang, a non-zero status fails with its stderr.
 */
export function runBounded(
  cmd: string,
  args: string[],
  timeoutMs: number,
  onSpawn?: (pid: number) => void,
): Promise<{ stdout: string; elapsed: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid !== undefined) onSpawn?.(child.pid);
    const out: Buffer[] = [];
    let err = '';
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout: Buffer.concat(out).toString('utf8'), elapsed: Date.now() - started });
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code ?? signal}: ${err}`));
    });
  });
}

/**
 * Waits until process `pid` sits in a read(2) of `file` (from /proc/<pid>/syscall and its fd table), i.e. its
 * READ has gone to the daemon. False if the process ended first (the read was served before we looked).
 */
export async function inReadOf(pid: number, file: string, timeoutMs: number): Promise<boolean> {
  let reading = false;
  let gone = false;
  const look = (): boolean => {
    let call: string;
    try {
      call = readFileSync(`/proc/${pid}/syscall`, 'utf8');
    } catch {
      return (gone = true);
    }
    const [nr, fd] = call.split(' ');
    try {
      reading = nr === '0' && fd !== undefined && readlinkSync(`/proc/${pid}/fd/${Number(fd)}`) === file;
    } catch {
      // the process is just ending
    }
    return reading;
  };
  await waitFor(look, timeoutMs, `process ${pid} to start reading ${file}`);
  return reading && !gone;
}

/** Peak resident memory of a process so far (VmHWM), in bytes. */
export function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

export function md5(data: Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

export function isMounted(mountpoint: string): boolean {
  return mountAt(mountpoint) !== undefined;
}

export interface ConfigOptions {
  blobDir: string;
  workDir: string;
  /** localfs read timeout in seconds */
  timeout?: number;
  enableXattr?: boolean;
  amplifyIo?: number;
  /** cache.validate: check chunk digests when reading from the cache */
  cacheValidate?: boolean;
  /** digest_validate: check chunk digests of fetched data (v5 only) */
  digestValidate?: boolean;
  /** cache.compressed: keep chunks compressed in `<blob>.blob.raw` */
  compressed?: boolean;
}

/** A v1 config as nydus-snapshotter writes it, with the localfs backend. Returns its path. */
export function writeConfig(file: string, o: ConfigOptions): string {
  const backend: Record<string, unknown> = { dir: o.blobDir };
  if (o.timeout !== undefined) backend.timeout = o.timeout;
  const cfg: Record<string, unknown> = {
    device: { backend: { type: 'localfs', config: backend }, cache: { type: 'blobcache', validate: o.cacheValidate ?? false, compressed: o.compressed ?? false, config: { work_dir: o.workDir } } },
    mode: 'direct',
    enable_xattr: o.enableXattr ?? true,
  };
  if (o.amplifyIo !== undefined) cfg.amplify_io = o.amplifyIo;
  if (o.digestValidate !== undefined) cfg.digest_validate = o.digestValidate;
  writeFileSync(file, JSON.stringify(cfg));
  return file;
}

export interface ExitResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** milliseconds from spawn to exit */
  elapsed: number;
}

/** Another user to run nydusd as, and the nydusd script that user can read. */
export interface RunAs {
  uid: number;
  gid: number;
  nydusd?: string;
}

const live = new Set<Daemon>();

/** One nydusd child process. */
export class Daemon {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly started = Date.now();
  readonly exited: Promise<ExitResult>;
  private exitResult: ExitResult | undefined;

  constructor(
    readonly args: string[],
    readonly mountpoint?: string,
    /** run as this user instead of root, from `nydusd` (default NYDUSD) */
    user?: RunAs,
    /** an executable to run instead of our nydusd (the reference daemon of test/differential) */
    program?: string,
  ) {
    const { nydusd = NYDUSD, ...ids } = user ?? {};
    const [cmd, argv] = program ? [program, args] : [process.execPath, [nydusd, ...args]];
    this.child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...ids });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    live.add(this);
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => {
        live.delete(this);
        this.exitResult = { code, signal, stdout: this.stdout, stderr: this.stderr, elapsed: Date.now() - this.started };
        resolve(this.exitResult);
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exitResult === undefined;
  }

  /** Resolves once the mountpoint is a FUSE mount; rejects if the daemon exits first or time runs out. */
  async waitMounted(timeoutMs = 10_000): Promise<void> {
    const mp = this.mountpoint!;
    const deadline = Date.now() + timeoutMs;
    while (!isMounted(mp)) {
      if (!this.running) throw new Error(`nydusd exited (${this.exitResult!.code}/${this.exitResult!.signal}) before mounting ${mp}: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`nydusd did not mount ${mp} within ${timeoutMs} ms: ${this.stderr}`);
      await sleep(20);
    }
  }

  /** Waits for the exit; a daemon still alive after `timeoutMs` is killed and reported as a hang. */
  async waitExit(timeoutMs: number): Promise<ExitResult> {
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`nydusd ${this.args.join(' ')} did not exit within ${timeoutMs} ms: ${this.stderr}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, hang]);
    } catch (err) {
      await this.kill();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /** SIGTERM and wait for a clean exit (the graceful path under test). */
  async stop(timeoutMs = 5_000): Promise<ExitResult> {
    this.signal('SIGTERM');
    return this.waitExit(timeoutMs);
  }

  /** Last resort: SIGKILL, then detach whatever mount is left. Never throws. */
  async kill(): Promise<void> {
    if (this.running) {
      this.child.kill('SIGKILL');
      await Promise.race([this.exited, sleep(3_000)]);
    }
    if (this.mountpoint && isMounted(this.mountpoint)) spawnSync('umount', ['-l', this.mountpoint]);
  }

  /** Graceful stop when possible, forced otherwise; for `after` hooks. Never throws. */
  async cleanup(): Promise<void> {
    if (this.running) {
      this.signal('SIGTERM');
      await Promise.race([this.exited, sleep(3_000)]);
    }
    await this.kill();
  }
}

/** Takes down every daemon a test left behind: call it from `after`/`afterEach`. */
export async function cleanupDaemons(): Promise<void> {
  await Promise.all([...live].map((d) => d.cleanup()));
}

// a crash of the test process itself must not leave mounts behind either
process.once('exit', () => {
  for (const d of live) {
    try {
      d.child.kill('SIGKILL');
    } catch {
      // already gone
    }
    if (d.mountpoint) spawnSync('umount', ['-l', d.mountpoint]);
  }
});

/** Starts nydusd and waits for its mount. */
export async function mountImage(args: string[], mountpoint: string, timeoutMs = 10_000, user?: RunAs): Promise<Daemon> {
  mkdirSync(mountpoint, { recursive: true });
  const d = new Daemon(args, mountpoint, user);
  try {
    await d.waitMounted(timeoutMs);
  } catch (err) {
    await d.kill();
    throw err;
  }
  return d;
}

/** Runs nydusd expecting it to exit by itself (bad input); a hang is a failure. */
export function runNydusd(args: string[], timeoutMs = 10_000, mountpoint?: string): Promise<ExitResult> {
  return new Daemon(args, mountpoint).waitExit(timeoutMs);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Whether process `pid` sleeps waiting for a FUSE daemon's answer: the kernel function it waits in
 * (/proc/<pid>/wchan) is FUSE's request_wait_answer. False once the process is gone.
 */
export function waitsOnFuse(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/wchan`, 'utf8').trim() === 'request_wait_answer';
  } catch {
    return false;
  }
}

/**
 * Polls `cond` every few milliseconds until it holds: synchronisation on a condition instead of a fixed sleep. The
 * deadline only guards against a hang (it should be far above the normal wait) and fails with `what`.
 */
export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

export function removeDir(dir: string): void {
  // a forgotten mount below `dir` must never make rm recurse into a live filesystem
  if (readMounts().some((m) => m.mountPoint.startsWith(`${dir}/`))) {
    throw new Error(`refusing to remove ${dir}: something is still mounted below it`);
  }
  rmSync(dir, { recursive: true, force: true });
}

export const NYDUS_IMAGE = path.join(projectRoot, 'dist', 'src', 'cli', 'nydus-image.js');

export interface BuiltImage {
  src: string;
  bootstrap: string;
  blobDir: string;
  blobId: string;
}

/** Builds an image from `src` with our nydus-image; one data blob is expected. */
export function buildImage(src: string, out: string, opts: { version: 5 | 6; compressor: string; chunkSize: string }): BuiltImage {
  const bootstrap = path.join(out, 'bootstrap');
  const blobDir = path.join(out, 'blobs');
  run(process.execPath, [NYDUS_IMAGE, 'create', '--fs-version', String(opts.version), '--compressor', opts.compressor, '--chunk-size', opts.chunkSize, '-B', bootstrap, '-D', blobDir, src]);
  const blobs = readdirSync(blobDir);
  if (blobs.length !== 1) throw new Error(`expected one blob in ${blobDir}, found ${blobs.join(', ')}`);
  return { src, bootstrap, blobDir, blobId: blobs[0]! };
}

/** Half random, half repetitive bytes: chunks that compress and chunks that do not. */
export function mixedBytes(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    // every other 16 KiB stretch is a short repeating pattern
    const v = (i >>> 14) & 1 ? (i >>> 6) & 0xff : x;
    if (i + 4 <= size) b.writeUInt32LE(v >>> 0, i);
    else for (let k = 0; i + k < size; k++) b[i + k] = (v >>> (8 * k)) & 0xff;
  }
  return b;
}

/** Chunk map of a blob cache: header fields and ready bits (spec nydusd-runtime §6.2). */
export interface ChunkMapFile {
  magic: string;
  version: number;
  magic2: string;
  allReady: boolean;
  size: number;
  ready: (index: number) => boolean;
  readyCount: number;
}

export function readChunkMap(file: string, chunkCount: number): ChunkMapFile {
  const buf = readFileSync(file);
  const ready = (i: number) => (buf[4096 + (i >>> 3)]! & (0x80 >> (i & 7))) !== 0;
  let readyCount = 0;
  for (let i = 0; i < chunkCount; i++) if (ready(i)) readyCount++;
  return {
    magic: buf.subarray(0, 4).toString('latin1'),
    version: buf.readUInt32LE(4),
    magic2: buf.subarray(8, 12).toString('latin1'),
    allReady: buf.readUInt32LE(12) === 0x4d4d4150,
    size: buf.length,
    ready,
    readyCount,
  };
}

/** Sends SIGUSR2 and returns the `metrics:` line the daemon logs in answer (stderr, or `logFile`). */
export async function daemonMetrics(d: Daemon, logFile?: string, timeoutMs = 5_000): Promise<{
  backend: { type: string; reads: number; bytes: number; errors: number };
  cache: { backendReads: number; backendBytes: number; cacheHits: number; chunksFetched: number };
  /** requests per FUSE opcode since the mount */
  fuse: Record<string, number>;
}> {
  const text = () => (logFile ? (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '') : d.stderr);
  const count = () => text().split('\n').filter((l) => l.includes(' metrics: ')).length;
  const before = count();
  d.signal('SIGUSR2');
  const deadline = Date.now() + timeoutMs;
  while (count() <= before) {
    if (!d.running) throw new Error(`nydusd exited while asked for metrics: ${d.stderr}`);
    if (Date.now() > deadline) throw new Error(`nydusd logged no metrics line within ${timeoutMs} ms after SIGUSR2`);
    await sleep(10);
  }
  const line = text().split('\n').filter((l) => l.includes(' metrics: ')).at(-1)!;
  return JSON.parse(line.slice(line.indexOf(' metrics: ') + ' metrics: '.length));
}

/** Backend reads logged at debug level: `backend <kind>: read blob <id> offset <o> length <l> ...`. */
export function backendReads(log: string): Array<{ blobId: string; offset: number; length: number }> {
  const out: Array<{ blobId: string; offset: number; length: number }> = [];
  for (const m of log.matchAll(/backend \S+: read blob (\S+) offset (\d+) length (\d+) in /g)) {
    out.push({ blobId: m[1]!, offset: Number(m[2]), length: Number(m[3]) });
  }
  return out;
}

/** Every chunk of every regular file: where its bytes come from in the source tree. */
export function chunkSources(bs: Bootstrap, src: string): Map<number, { file: string; chunk: ChunkInfo }> {
  const out = new Map<number, { file: string; chunk: ChunkInfo }>();
  const walk = (ino: number, rel: string) => {
    for (const e of bs.readdir(ino)) {
      const p = path.join(rel, e.name.toString());
      const i = bs.getInode(e.ino);
      if ((i.mode & 0o170000) === 0o040000) walk(e.ino, p);
      else if ((i.mode & 0o170000) === 0o100000) for (const c of bs.chunks(e.ino)) out.set(c.index, { file: path.join(src, p), chunk: c });
    }
  };
  walk(bs.superblock.rootIno, '');
  return out;
}

export function fileChunks(bs: Bootstrap, rel: string): ChunkInfo[] {
  let ino = bs.superblock.rootIno;
  for (const part of rel.split('/')) ino = bs.lookup(ino, Buffer.from(part))!.ino;
  return bs.chunks(ino);
}

/**
 * Every chunk the map calls ready holds its source bytes in the data file (or, with `compressed`, the blob's
 * bytes at its compressed range of `.blob.raw`); returns how many were ready.
 */
export function checkReadyChunks(img: BuiltImage, workDir: string, compressed = false): number {
  const bs = loadImageFile(img.bootstrap);
  const blob = bs.blobs[0]!;
  const map = readChunkMap(path.join(workDir, `${img.blobId}.blob.data.chunk_map`), blob.chunkCount);
  const sources = chunkSources(bs, img.src);
  if (compressed) {
    const raw = readFileSync(path.join(workDir, `${img.blobId}.blob.raw`));
    const stored = readFileSync(path.join(img.blobDir, img.blobId));
    for (let i = 0; i < blob.chunkCount; i++) {
      if (!map.ready(i)) continue;
      const c = sources.get(i)?.chunk;
      assert.ok(c && c.compressedSize > 0, `chunk ${i} is marked ready but no file uses it (or its record has no compressed range)`);
      const range = [c.compressedOffset, c.compressedOffset + c.compressedSize] as const;
      assert.ok(raw.subarray(...range).equals(stored.subarray(...range)), `chunk ${i} is marked ready but ${img.blobId}.blob.raw differs from the blob at ${c.compressedOffset}`);
    }
    return map.readyCount;
  }
  const data = readFileSync(path.join(workDir, `${img.blobId}.blob.data`));
  const files = new Map<string, Buffer>();
  for (let i = 0; i < blob.chunkCount; i++) {
    if (!map.ready(i)) continue;
    const s = sources.get(i);
    assert.ok(s, `chunk ${i} is marked ready but no file uses it`);
    const want = (files.get(s.file) ?? files.set(s.file, readFileSync(s.file)).get(s.file)!).subarray(
      s.chunk.fileOffset,
      s.chunk.fileOffset + s.chunk.uncompressedSize,
    );
    const got = data.subarray(s.chunk.uncompressedOffset, s.chunk.uncompressedOffset + s.chunk.uncompressedSize);
    assert.ok(got.equals(want), `chunk ${i} is marked ready but ${img.blobId}.blob.data holds other bytes at ${s.chunk.uncompressedOffset}`);
  }
  return map.readyCount;
}


/** Bytes [offset, +length) of `file` (fewer where it ends); a failed open or read throws. */
export function readRange(file: string, offset: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const n = readSync(fd, buf, done, length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return buf.subarray(0, done);
  } finally {
    closeSync(fd);
  }
}

/** readRange, or the errno code of the failure (what a read through a mount that must fail gives). */
export function tryReadRange(file: string, offset: number, length: number): Buffer | string {
  try {
    return readRange(file, offset, length);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

/**
 * Mounts test/nydusd/hung-blob-server.js at `dir` (created if missing), serving one blob file `name` of `size` bytes
 * whose reads never answer until the server gets SIGUSR1 (then EIO); resolves once it says it is serving.
 */
export async function startHungBlobServer(dir: string, name: string, size: number): Promise<ChildProcess> {
  mkdirSync(dir, { recursive: true });
  const script = path.join(projectRoot, 'dist', 'test', 'nydusd', 'hung-blob-server.js');
  const child = spawn(process.execPath, [script, dir, name, String(size)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('hung-blob-server did not get ready in 10 s')), 10_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('ready\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('close', (code) => reject(new Error(`hung-blob-server exited with ${code}`)));
  });
  return child;
}
