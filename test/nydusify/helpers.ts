// The nydusify tests' pieces: running the CLI, a source OCI image built with umoci from this machine's files (two
// layers, the second deleting and changing what the first added, so whiteouts are exercised), and a mount through
// `nydusify mount` that is always taken down again.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  copyFileSync, cpSync, existsSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { projectRoot } from '../helpers/paths.js';
import { mountAt } from '../../src/fuse/mountinfo.js';
import { requireEnv, run, sleep } from '../nydusd/helpers.js';
import { diffSnapshots, snapshotDisk } from '../image/helpers.js';
import assert from 'node:assert/strict';

export const NYDUSIFY = path.join(projectRoot, 'dist', 'src', 'cli', 'nydusify.js');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs nydusify to completion without blocking the test process (a registry may be served by it). */
export function nydusify(args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 300_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [NYDUSIFY, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`nydusify ${args.join(' ')} did not finish within ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

export async function nydusifyOk(args: string[], env?: NodeJS.ProcessEnv): Promise<CliResult> {
  const r = await nydusify(args, env);
  if (r.status !== 0) throw new Error(`nydusify ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r;
}

export function requireTools(): void {
  requireEnv(['umoci', 'skopeo', 'zstd', 'getfattr']);
}

/** The first regular files under `dir` (sorted walk), at most `limit`, skipping what cannot be read. */
function someFiles(dir: string, limit: number, out: string[] = []): string[] {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return out;
  }
  for (const n of names) {
    if (out.length >= limit) break;
    const p = path.join(dir, n);
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) someFiles(p, limit, out);
    else if (st.isFile() && st.size < 512 * 1024) out.push(p);
  }
  return out;
}

/** A file of this machine between 1 and 16 MiB (spans several 1 MiB chunks). */
function bigFile(): string {
  for (const dir of ['/usr/lib/x86_64-linux-gnu', '/usr/lib', '/usr/bin']) {
    for (const n of readdirSync(dir).sort()) {
      const p = path.join(dir, n);
      const st = statSync(p, { throwIfNoEntry: false });
      if (st?.isFile() && st.size > 1.5 * 1024 * 1024 && st.size < 16 * 1024 * 1024) return p;
    }
  }
  throw new Error('no file between 1.5 and 16 MiB under /usr/lib or /usr/bin to put into the test image');
}

export interface SourceImage {
  /** the OCI layout (tag v1: gzip layers, as umoci writes them) */
  layout: string;
  /** the image's final tree, as umoci unpacks it */
  rootfs: string;
}

/**
 * Builds a two-layer OCI image in `dir`/layout. Layer 1: a few hundred files from /usr/share/doc and /usr/lib, a
 * file over 1 MiB, symlinks (relative, absolute, dangling), a hardlink, an empty directory, odd modes and owners.
 * Layer 2: deletes a file and a directory (whiteouts), replaces a file's content, adds files.
 */
export function buildSourceImage(dir: string): SourceImage {
  const layout = path.join(dir, 'layout');
  const bundle = path.join(dir, 'bundle');
  run('umoci', ['init', '--layout', layout]);
  run('umoci', ['new', '--image', `${layout}:v1`]);
  run('umoci', ['unpack', '--image', `${layout}:v1`, bundle]);
  const rootfs = path.join(bundle, 'rootfs');
  const files = [...someFiles('/usr/share/doc', 250), ...someFiles('/usr/lib/python3', 150)];
  for (const f of files) {
    const dest = path.join(rootfs, f);
    mkdirSync(path.dirname(dest), { recursive: true });
    copyFileSync(f, dest);
  }
  mkdirSync(path.join(rootfs, 'data/empty'), { recursive: true });
  copyFileSync(bigFile(), path.join(rootfs, 'data/big.bin'));
  writeFileSync(path.join(rootfs, 'data/hello.txt'), 'hello nydus\n');
  linkSync(path.join(rootfs, 'data/hello.txt'), path.join(rootfs, 'data/hello-hardlink.txt'));
  symlinkSync('hello.txt', path.join(rootfs, 'data/hello-symlink'));
  symlinkSync('/usr/share/doc', path.join(rootfs, 'data/abs-symlink'));
  symlinkSync('does-not-exist', path.join(rootfs, 'data/dangling'));
  writeFileSync(path.join(rootfs, 'data/empty-file'), '');
  writeFileSync(path.join(rootfs, 'data/owned'), 'owned by 1234:5678\n', { mode: 0o640 });
  spawnSync('chown', ['1234:5678', path.join(rootfs, 'data/owned')]);
  writeFileSync(path.join(rootfs, 'data/doomed.txt'), 'deleted in layer 2\n');
  mkdirSync(path.join(rootfs, 'data/doomed-dir/sub'), { recursive: true });
  writeFileSync(path.join(rootfs, 'data/doomed-dir/sub/f'), 'also deleted\n');
  writeFileSync(path.join(rootfs, 'data/changed.txt'), 'version 1\n');
  run('umoci', ['repack', '--image', `${layout}:v1`, bundle]);

  // the second layer is the difference from a fresh unpack of the first (repack diffs against the unpacked state)
  rmSync(bundle, { recursive: true });
  run('umoci', ['unpack', '--image', `${layout}:v1`, bundle]);
  rmSync(path.join(rootfs, 'data/doomed.txt'));
  rmSync(path.join(rootfs, 'data/doomed-dir'), { recursive: true });
  writeFileSync(path.join(rootfs, 'data/changed.txt'), 'version 2, longer than the first\n');
  mkdirSync(path.join(rootfs, 'data/layer2'));
  cpSync('/etc/os-release', path.join(rootfs, 'data/layer2/os-release'), { dereference: true });
  writeFileSync(path.join(rootfs, 'data/layer2/script.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  run('umoci', ['repack', '--image', `${layout}:v1`, bundle]);
  // the expected tree is the image unpacked again: the layers' tars carry mtimes rounded to seconds
  const expected = path.join(dir, 'expected');
  run('umoci', ['unpack', '--image', `${layout}:v1`, expected]);
  return { layout, rootfs: path.join(expected, 'rootfs') };
}

/**
 * The same image with other layer compressions: zstd through skopeo; uncompressed by hand, as skopeo 1.9 keeps
 * gzip for an oci: destination whatever --dest-decompress says.
 */
export function recompressed(layout: string, dest: string, how: 'zstd' | 'none'): string {
  if (how === 'zstd') {
    run('skopeo', ['copy', '-q', '--dest-compress-format', 'zstd', '--dest-compress', `oci:${layout}:v1`, `oci:${dest}:v1`]);
    return dest;
  }
  cpSync(layout, dest, { recursive: true });
  const { json: m } = layoutManifest(dest, 'v1');
  for (const l of m.layers as Array<{ mediaType: string; digest: string; size: number }>) {
    const tar = gunzipSync(readFileSync(layoutBlob(dest, l.digest)));
    l.digest = sha256(tar);
    l.size = tar.length;
    l.mediaType = 'application/vnd.oci.image.layer.v1.tar';
    writeFileSync(layoutBlob(dest, l.digest), tar);
  }
  const body = Buffer.from(JSON.stringify(m));
  writeFileSync(layoutBlob(dest, sha256(body)), body);
  writeFileSync(path.join(dest, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(body), size: body.length, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }],
  }));
  return dest;
}

export function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

export interface OciIndexEntry {
  digest: string;
  annotations?: Record<string, string>;
}

/** The manifest tagged `tag` in an OCI layout, parsed. */
export function layoutManifest(layout: string, tag: string): { digest: string; json: Record<string, any> } {
  const index = JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: OciIndexEntry[] };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!entry) throw new Error(`${layout} has no manifest tagged ${tag}`);
  return { digest: entry.digest, json: JSON.parse(readFileSync(layoutBlob(layout, entry.digest), 'utf8')) };
}

export function layoutBlob(layout: string, digest: string): string {
  return path.join(layout, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
}

/** Flips one byte in the middle of a file (a blob corrupted at rest). */
export function tamper(file: string): void {
  const b = readFileSync(file);
  b[b.length >> 1] ^= 0xff;
  writeFileSync(file, b);
}

/** A `nydusify mount` in the background; `stop()` sends SIGINT and waits for its exit. */
/**
 * Asserts that a mounted Nydus image has the source tree: attributes, link counts, xattrs (but security.*) and the
 * content of every file. The mount point's own attributes are the root's, which umoci's unpacked rootfs directory does
 * not carry; and a directory's mtime after a whiteout is the unpacker's choice (umoci keeps the lower layer's, the OCI
 * layer stack and nydus the upper's; `check` compares those against the layers themselves). Files and links keep theirs.
 */
export function assertMountHasSource(rootfs: string, mnt: string): void {
  const opts = { content: true, mtime: true, nlink: true, ignoreXattr: (n: string) => n.startsWith('security.') };
  const want = snapshotDisk(rootfs, opts);
  const got = snapshotDisk(mnt, opts);
  want.delete('/');
  got.delete('/');
  for (const s of [want, got]) for (const e of s.values()) if ((e.mode & 0o170000) === 0o040000) delete e.mtime;
  assert.ok(want.size > 400, `the source tree has ${want.size} entries`);
  assert.deepEqual(diffSnapshots(want, got), []);
}

export class NydusifyMount {
  readonly child: ChildProcess;
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(args: string[], readonly mountPath: string, env: NodeJS.ProcessEnv = process.env) {
    this.child = spawn(process.execPath, [NYDUSIFY, 'mount', ...args, '--mount-path', mountPath], { stdio: ['ignore', 'ignore', 'pipe'], env });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.child.once('close', (code) => resolve(code)));
  }

  async waitMounted(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let done = false;
    void this.exited.then(() => (done = true));
    while (mountAt(this.mountPath) === undefined) {
      if (done) throw new Error(`nydusify mount exited before mounting: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`nydusify mount did not mount within ${timeoutMs} ms: ${this.stderr}`);
      await sleep(20);
    }
  }

  /** SIGINT, then the exit status; a hang is killed and reported. */
  async stop(signal: NodeJS.Signals = 'SIGINT', timeoutMs = 15_000): Promise<number | null> {
    this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`nydusify mount did not exit within ${timeoutMs} ms of ${signal}: ${this.stderr}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, hang]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The nydusd this mount started (the one child of nydusify). */
  nydusdPid(): number {
    const pid = this.child.pid!;
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter((x) => x !== '');
    if (kids.length !== 1) throw new Error(`nydusify mount (pid ${pid}) has ${kids.length} children, expected its one nydusd`);
    return Number(kids[0]);
  }

  /** nydusd's backend counters: SIGUSR2 makes it log one `metrics: {json}` line (nydusd's stderr is ours). */
  async backendBytes(timeoutMs = 10_000): Promise<number> {
    const lines = () => this.stderr.split('\n').filter((l) => l.includes(' metrics: '));
    const before = lines().length;
    process.kill(this.nydusdPid(), 'SIGUSR2');
    const deadline = Date.now() + timeoutMs;
    while (lines().length <= before) {
      if (Date.now() > deadline) throw new Error(`nydusd logged no metrics line within ${timeoutMs} ms of SIGUSR2: ${this.stderr}`);
      await sleep(10);
    }
    const line = lines().at(-1)!;
    return (JSON.parse(line.slice(line.indexOf(' metrics: ') + ' metrics: '.length)) as { backend: { bytes: number } }).backend.bytes;
  }

  /** Last resort for `after` hooks: kill and detach. Never throws. */
  async cleanup(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await Promise.race([this.exited, sleep(3_000)]);
    }
    if (existsSync(this.mountPath) && mountAt(this.mountPath) !== undefined) spawnSync('umount', ['-l', this.mountPath]);
  }
}
