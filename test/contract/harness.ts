// The snapshotter's side of the contract (snapshotter-contract.md): the directory layout under its root R (6.1), the
// config file it writes (2.1, 2.2 example B), the argv it spawns nydusd with (1.1, 1.3), its raw HTTP requests byte
// for byte (3.1) and its wait loops (3.3, 3.5, 3.7). The contract tests replay these against the real daemon.
// Budgets: each loop runs the snapshotter's own attempt count at the upper end of its documented spacing, so a
// daemon within the contract passes however loaded the machine is, and one outside it fails instead of hanging.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, cpSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { projectRoot } from '../helpers/paths.js';
import { after } from 'node:test';
import { cleanupDaemons, Daemon, removeDir, sleep } from '../nydusd/helpers.js';
import { readMounts } from '../../src/fuse/mountinfo.js';

export const SAMPLES = path.join(projectRoot, 'bootstrap-samples');
/** The image the harness serves as snapshot 42 (a nydus-ts build of bootstrap-samples/tree). */
export const SAMPLE = path.join(SAMPLES, 'v6-zstd');
/** A daemon id as the snapshotter makes them: a 20-character rs/xid in the alphabet 0-9a-v (contract conventions). */
export const ID = 'cs2b9a3q1h5c73d0ab9g';
/** The RAFS instance key: the containerd snapshot id of the meta layer. */
export const SID = '42';

/** The snapshotter's paths for one daemon (snapshotter-contract.md 1.2, 6.1). */
export interface Root {
  R: string;
  cache: string;
  configFile: string;
  bootstrap: string;
  /** dedicated mountpoint R/snapshots/42/mnt */
  mnt: string;
  /** shared mountpoint R/mnt */
  sharedMnt: string;
  sock: string;
  logFile: string;
  supervisor: string;
}

/**
 * A fresh snapshotter root with what the snapshotter prepares before a spawn (1.4): R/socket/ID, R/config/ID with the
 * config.json, the unpacked meta layer at R/snapshots/42/fs/image/image.boot, the mountpoints, CACHE holding the
 * blobs (the localfs template reads them from CACHE/, example B). It does NOT create R/logs/ID: the daemon must.
 * The root is removed after the test file's tests.
 */
export function snapshotterRoot(image = SAMPLE): Root {
  const R = mkdtempSync('/tmp/nydus-contract-');
  // R/socket/<xid>/api?.sock must fit in sun_path: the snapshotter enforces len(R) <= 70
  assert.ok(R.length <= 70);
  const r: Root = {
    R,
    cache: path.join(R, 'cache'),
    configFile: path.join(R, 'config', ID, 'config.json'),
    bootstrap: path.join(R, 'snapshots', SID, 'fs', 'image', 'image.boot'),
    mnt: path.join(R, 'snapshots', SID, 'mnt'),
    sharedMnt: path.join(R, 'mnt'),
    sock: path.join(R, 'socket', ID, 'api.sock'),
    logFile: path.join(R, 'logs', ID, 'nydusd.log'),
    supervisor: path.join(R, 'supervisor', `${ID}.sock`),
  };
  for (const d of [path.dirname(r.sock), path.dirname(r.configFile), path.dirname(r.bootstrap), r.mnt, r.sharedMnt, path.dirname(r.supervisor)]) {
    mkdirSync(d, { recursive: true });
  }
  cpSync(path.join(image, 'blobs'), r.cache, { recursive: true });
  cpSync(path.join(image, 'bootstrap'), r.bootstrap);
  writeAtomically(r.configFile, localfsConfig(r, SID));
  made.push(r);
  return r;
}

/**
 * Every root made by the test file that imported this module, removed after its tests (registered at import, so before
 * the file's own hooks: the daemons still running on a root are stopped and unmounted first).
 */
const made: Root[] = [];
after(async () => {
  await cleanupDaemons();
  for (const r of made.splice(0)) {
    // a daemon killed on purpose (SIGKILL) leaves its dead FUSE mount: detach it, never recurse into it
    for (const m of readMounts()) if (m.mountPoint.startsWith(`${r.R}/`)) spawnSync('umount', ['-l', m.mountPoint]);
    removeDir(r.R);
  }
});

/**
 * The config JSON the snapshotter writes for the localfs template (2.2 example B), byte for byte: Go's compact
 * json.Marshal in struct order, `device.id` = "/" + SID, backend dir and cache work_dir = CACHE. `o` stands for a
 * template with another blob dir or work dir, or a backend `timeout` (emitted after `proxy`, in struct order).
 */
export function localfsConfig(r: Root, sid: string, o: { dir?: string; workDir?: string; timeout?: number } = {}): string {
  const timeout = o.timeout !== undefined ? `,"timeout":${o.timeout}` : '';
  return (
    `{"device":{"id":"/${sid}","backend":{"type":"localfs","config":{"dir":"${o.dir ?? r.cache}/","readahead":false,"proxy":{"fallback":false}${timeout}}},` +
    `"cache":{"type":"blobcache","config":{"work_dir":"${o.workDir ?? r.cache}","disable_indexed_map":false}}},"mode":"direct","digest_validate":false,` +
    `"enable_xattr":true,"amplify_io":1048576,"fs_prefetch":{"enable":true,"prefetch_all":false,"threads_count":2}}`
  );
}

/** As the snapshotter writes config.json (1.4): a 0600 temp file `config.json.tmp-*`, then a rename. */
export function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  writeSync(fd, text);
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, file);
}

export interface ArgvOptions {
  /** recover_policy = "failover" with threads_number = 4 (misc/snapshotter/config.toml): --thread-num, --id, --supervisor */
  failover?: boolean;
  /** the hot-upgrade replacement's --upgrade */
  upgrade?: boolean;
  logLevel?: string;
  failoverPolicy?: string;
  /** a bootstrap other than R/snapshots/42/fs/image/image.boot */
  bootstrap?: string;
}

/** The dedicated fusedev argv of 1.3, in the struct-field order of 1.1, every value its own element. */
export function dedicatedArgv(r: Root, o: ArgvOptions = {}): string[] {
  return [
    'fuse',
    ...(o.upgrade ? ['--upgrade'] : []),
    ...(o.failover ? ['--thread-num', '4', '--id', ID] : []),
    '--config', r.configFile,
    '--bootstrap', o.bootstrap ?? r.bootstrap,
    '--mountpoint', r.mnt,
    '--apisock', r.sock,
    '--log-level', o.logLevel ?? 'info',
    '--log-rotation-size', '100',
    ...(o.failover ? ['--supervisor', r.supervisor] : []),
    '--log-file', r.logFile,
    '--failover-policy', o.failoverPolicy ?? 'resend',
  ];
}

/** The shared fusedev argv of 1.3: no config, no bootstrap, the mountpoint R/mnt. */
export function sharedArgv(r: Root, o: Pick<ArgvOptions, 'upgrade' | 'logLevel' | 'failoverPolicy'> = {}): string[] {
  return [
    'fuse',
    ...(o.upgrade ? ['--upgrade'] : []),
    '--thread-num', '4', '--id', ID,
    '--mountpoint', r.sharedMnt,
    '--apisock', r.sock,
    '--log-level', o.logLevel ?? 'info',
    '--log-rotation-size', '100',
    '--supervisor', r.supervisor,
    '--log-file', r.logFile,
    '--failover-policy', o.failoverPolicy ?? 'resend',
  ];
}

/** The fscache argv of 1.3 (`--upgrade` after `--fscache-threads`, 1.1). */
export function fscacheArgv(r: Root, o: Pick<ArgvOptions, 'upgrade'> = {}): string[] {
  return [
    'singleton', '--fscache', r.cache, '--fscache-threads', '4',
    ...(o.upgrade ? ['--upgrade'] : []),
    '--id', ID, '--apisock', r.sock, '--log-level', 'info', '--log-rotation-size', '100',
    '--supervisor', r.supervisor, '--log-file', r.logFile,
  ];
}

export function isSocketFile(p: string): boolean {
  try {
    return statSync(p).isSocket();
  } catch {
    return false;
  }
}

/** /proc/<pid>/stat field 3, split on spaces as the snapshotter's zombie check does (1.4); undefined once reaped. */
export function procState(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2];
  } catch {
    return undefined;
  }
}

/**
 * GetClient's socket wait (3.3): 100 attempts 200 ms apart (the upper end of 100-200 ms), stopping early when the
 * process is gone or a zombie. Resolves whether the socket appeared.
 */
export async function waitForSocketFile(d: Daemon, sock: string): Promise<boolean> {
  for (let attempt = 0; attempt < 100; attempt++) {
    if (isSocketFile(sock)) return true;
    if (!d.running || procState(d.pid) === 'Z') return false;
    await sleep(200);
  }
  return isSocketFile(sock);
}

/** Spawns nydusd with `argv` and waits for its socket as the snapshotter does; fails with its stderr otherwise. */
export async function spawnDaemon(argv: string[], mountpoint: string, sock: string): Promise<Daemon> {
  const d = new Daemon(argv, mountpoint);
  if (!(await waitForSocketFile(d, sock))) throw new Error(`no API socket at ${sock} (nydusd ${d.running ? 'alive' : 'exited'}): ${d.stderr}`);
  return d;
}

/** The request bytes Go's client sends (3.1): Host, User-Agent, Content-Length, Content-Type, Accept-Encoding. */
export function goRequest(method: string, target: string, body?: string): string {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: unix', 'User-Agent: Go-http-client/1.1'];
  // POST and PUT without a body send Content-Length: 0; GET and DELETE without a body send none
  if (body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(body)}`, 'Content-Type: application/json');
  else if (method === 'POST' || method === 'PUT') lines.push('Content-Length: 0');
  lines.push('Accept-Encoding: gzip');
  return `${lines.join('\r\n')}\r\n\r\n${body ?? ''}`;
}

/** The mount request body (3.1, 3.2 row 2): source and the config as a JSON string; never prefetch_files. */
export function mountBody(source: string, config: string): string {
  return JSON.stringify({ fs_type: 'rafs', source, config });
}

export interface RawResponse {
  status: number;
  /** header names lower-cased */
  headers: Record<string, string>;
  body: string;
  /** the body parsed as JSON; undefined when empty */
  json: unknown;
}

/** One raw client connection: exact bytes out, responses parsed strictly from what comes back. */
export class RawConnection {
  private buf = Buffer.alloc(0);
  private ended = false;
  private waiter: (() => void) | undefined;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiter?.();
    });
    socket.on('close', () => {
      this.ended = true;
      this.waiter?.();
    });
    socket.on('error', () => undefined);
  }

  static open(sock: string): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s = net.connect(sock);
      s.once('connect', () => resolve(new RawConnection(s)));
      s.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Bytes received and not yet taken by readResponse. */
  get pending(): Buffer {
    return this.buf;
  }

  write(bytes: string): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(bytes, (err) => (err ? reject(err) : resolve())));
  }

  private async more(deadline: number, what: string): Promise<void> {
    if (this.ended) throw new Error(`connection closed while waiting for ${what}; got ${JSON.stringify(this.buf.toString('latin1'))}`);
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no ${what} within the 30 s request timeout of the snapshotter's client (3.7)`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, left);
      this.waiter = () => {
        clearTimeout(t);
        resolve();
      };
    });
    this.waiter = undefined;
  }

  /**
   * The next response: a 204 (and 304) ends at its header block; anything else must be framed by Content-Length, as
   * the contract requires of 200 bodies (3.1). Chunked or unframed bodies fail the test.
   */
  async readResponse(): Promise<RawResponse> {
    const deadline = Date.now() + 30_000;
    let end: number;
    while ((end = this.buf.indexOf('\r\n\r\n')) < 0) await this.more(deadline, 'response headers');
    const head = this.buf.subarray(0, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(head[0]!);
    assert.ok(m, `status line ${JSON.stringify(head[0])}`);
    const status = Number(m[1]);
    const headers: Record<string, string> = {};
    for (const line of head.slice(1)) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    let length = 0;
    if (status !== 204 && status !== 304) {
      assert.equal(headers['transfer-encoding'], undefined, `a ${status} body must be framed by Content-Length, not chunked`);
      assert.ok(headers['content-length'] !== undefined, `a ${status} answer without Content-Length: ${head.join(' | ')}`);
      length = Number(headers['content-length']);
    } else {
      assert.ok(headers['content-length'] === undefined || headers['content-length'] === '0', `a ${status} with a body length ${headers['content-length']}`);
    }
    const start = end + 4;
    while (this.buf.length < start + length) await this.more(deadline, `${length} body bytes`);
    const body = this.buf.subarray(start, start + length).toString('utf8');
    this.buf = this.buf.subarray(start + length);
    let json: unknown;
    if (body) {
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
    }
    return { status, headers, body, json };
  }

  close(): void {
    this.socket.destroy();
  }
}

/** One request on its own connection (`bytes` may be several writes, `gapMs` apart), and its response. */
export async function exchange(sock: string, bytes: string | string[], gapMs = 0): Promise<RawResponse> {
  const c = await RawConnection.open(sock);
  try {
    const parts = typeof bytes === 'string' ? [bytes] : bytes;
    for (let i = 0; i < parts.length; i++) {
      if (i > 0) await sleep(gapMs);
      await c.write(parts[i]!);
    }
    return await c.readResponse();
  } finally {
    c.close();
  }
}

export const GET_DAEMON = goRequest('GET', '/api/v1/daemon');

/** The daemon's `state`, or undefined when the request failed (refused, not JSON): a failed attempt for the loop. */
export async function daemonState(sock: string): Promise<string | undefined> {
  try {
    const r = await exchange(sock, GET_DAEMON);
    return r.status === 200 ? (r.json as { state?: string }).state : undefined;
  } catch {
    return undefined;
  }
}

/** WaitUntilState (3.3): 20 attempts, 19 sleeps of 200 ms (the upper end of 100 ms + 0-100 ms jitter). */
export async function waitUntilState(sock: string, want: string): Promise<void> {
  let last: string | undefined;
  for (let attempt = 0; attempt < 20; attempt++) {
    if (attempt > 0) await sleep(200);
    last = await daemonState(sock);
    if (last === want) return;
  }
  assert.fail(`the daemon did not reach ${want} within the snapshotter's 20 polls (last state: ${last ?? 'no answer'})`);
}

/** "Is a mountpoint" as the snapshotter decides it (3.5 step 6, 6.3): st_dev differs from the parent's. */
export function isMountpoint(dir: string): boolean {
  try {
    return statSync(dir).dev !== statSync(path.dirname(dir)).dev;
  } catch {
    // a dead FUSE mount answers ENOTCONN: still a mountpoint
    return true;
  }
}

/** The unmount check after exit (3.5 step 6): 20 checks 150 ms apart (the upper end of 50 ms + 0-100 ms). */
export async function waitUnmounted(dir: string): Promise<boolean> {
  for (let attempt = 0; attempt < 20; attempt++) {
    if (!isMountpoint(dir)) return true;
    await sleep(150);
  }
  return !isMountpoint(dir);
}

/** An error answer as the Go client decodes it (3.1, 3.4 ErrorMessage): non-2xx, JSON with string code and message. */
export function assertErrorBody(r: RawResponse, what: string): { code: string; message: string } {
  assert.ok(r.status >= 400, `${what}: expected an error status, got ${r.status} ${r.body}`);
  const e = r.json as { code?: unknown; message?: unknown } | undefined;
  assert.ok(e && typeof e.code === 'string' && typeof e.message === 'string', `${what}: the error body is not {code, message}: ${JSON.stringify(r.body)}`);
  return e as { code: string; message: string };
}
