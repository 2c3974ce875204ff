// nydusctl against a real running nydusd (--apisock, the v6 sample image): `info` text and `--raw` against GET
// /api/v1/daemon, `set log-level`, every metrics kind, mount/umount in a shared daemon, usage errors, and an
// unreachable socket. The
// exact requests it sends (method, target, body) are checked against a plain HTTP server on a Unix socket.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { projectRoot } from '../helpers/paths.js';
import { cleanupDaemons, Daemon, md5, removeDir, requireEnv, tempDir, waitFor } from '../nydusd/helpers.js';
import { request, SAMPLE, startApiDaemon, waitForSocket, type ApiDaemon } from '../api/helpers.js';
import { formatInfo, sortedJson, valueDebug } from '../../src/cli/nydusctl/format.js';

const NYDUSCTL = path.join(projectRoot, 'dist', 'src', 'cli', 'nydusctl.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs nydusctl to completion without blocking the event loop (a test server may have to answer it). */
function nydusctl(...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [NYDUSCTL, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

let d: ApiDaemon;

before(async () => {
  requireEnv();
  d = await startApiDaemon();
});

after(async () => {
  await cleanupDaemons();
  if (d) removeDir(d.dir);
});

/** The line nydusctl prints for an API error answer (spec 5.1), from the answer the route gives now. */
async function apiError(method: string, url: string, body?: string): Promise<{ status: number; line: string }> {
  const r = await request(d.sock, method, url, body !== undefined ? { body } : {});
  assert.ok(r.status >= 400, `${method} ${url}: ${r.status}`);
  return { status: r.status, line: `Error: Request failed. ${valueDebug(r.json)}\n` };
}

test('info prints the version block and the mounted instance; --raw (before or after the command) is the route\'s JSON', async () => {
  const api = await request(d.sock, 'GET', '/api/v1/daemon');
  assert.equal(api.status, 200);
  const json = api.json as { version: { package_ver: string; git_commit: string }; backend_collection: Record<string, { mounted_time: string }> };
  const r = await nydusctl('--sock', d.sock, 'info');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const lines = r.stdout.split('\n');
  assert.deepEqual(lines.slice(0, 12), [
    '',
    `Version:                "${json.version.package_ver}"`,
    'Status:                 "RUNNING"',
    'Profile:                "release"',
    `Commit:                 "${json.version.git_commit}"`,
    'Instances:',
    '\tInstance Mountpoint:  /',
    '\tType:  Rafs',
    `\tMounted Time:  ${json.backend_collection['/']!.mounted_time.replace(/ 0(\d):/, ' $1:').replace(/(\.\d*?)0+ /, '$1 ').replace(/\. /, ' ')}`,
    // --localfs-dir synthesizes a direct-mode config without prefetch
    '\tMode:  direct',
    '\tPrefetch:  false',
    `\tPrefetch Merging Size:  ${(api.json as { backend_collection: Record<string, { config: { cache: { prefetch: { batch_size: number } } } }> }).backend_collection['/']!.config.cache.prefetch.batch_size}`,
  ]);
  // nothing in DaemonInfo changes between two calls on an idle dedicated daemon, so the text is exactly the formatter's
  assert.equal(r.stdout, formatInfo(api.json));
  for (const argv of [['--sock', d.sock, '--raw', 'info'], ['-S', d.sock, 'info', '-r']]) {
    const raw = await nydusctl(...argv);
    assert.equal(raw.code, 0, raw.stderr);
    assert.deepEqual(JSON.parse(raw.stdout), api.json);
    assert.equal(raw.stdout, `${sortedJson(api.json)}\n`);
  }
});

test('set log-level changes the daemon\'s level (and prints nothing); a level the daemon refuses is its error, exit 1', async () => {
  const r = await nydusctl('--sock', d.sock, 'set', 'log-level', 'debug');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout + r.stderr, '');
  await waitFor(() => /INFO log level set to debug through the API$/m.test(d.daemon.stderr), 10_000, 'the daemon to log its new level');
  const bad = await nydusctl('--sock', d.sock, 'set', 'log-level', 'loud');
  assert.equal(bad.code, 1);
  assert.equal(bad.stdout, '');
  assert.equal(bad.stderr, 'Error: Request failed. Object {"code": String("UNDEFINED"), "message": String("Configure: unknown log level \\"loud\\": expected one of off, error, warn, info, debug, trace")}\n');
  assert.equal((await nydusctl('--sock', d.sock, 'set', 'log-level', 'info')).code, 0);
});

test('every metrics kind asks its route and prints its answer; --raw prints the route\'s JSON; exit 0', async () => {
  const kinds: [string[], string][] = [
    [['metrics', 'backend'], '/api/v1/metrics/backend'],
    [['backend'], '/api/v1/metrics/backend'],
    [['metrics', 'cache'], '/api/v1/metrics/blobcache'],
    [['metrics', 'blobcache'], '/api/v1/metrics/blobcache'],
    [['blobcache'], '/api/v1/metrics/blobcache'],
    [['metrics', 'fsstats'], '/api/v1/metrics'],
    [['metrics', 'inflight'], '/api/v1/metrics/inflight'],
    [['metrics', 'files'], '/api/v1/metrics/files'],
    [['metrics', 'files', '--latest'], '/api/v1/metrics/files?latest=true'],
    [['metrics', 'pattern'], '/api/v1/metrics/pattern'],
    [['metrics', 'fsstats', '--id', '/'], '/api/v1/metrics?id=/'],
  ];
  for (const [argv, url] of kinds) {
    const text = await nydusctl('--sock', d.sock, ...argv);
    assert.equal(text.code, 0, `${argv.join(' ')}: ${text.stderr}`);
    assert.equal(text.stderr, '', argv.join(' '));
    assert.notEqual(text.stdout.trim(), '', argv.join(' '));
    const raw = await nydusctl('--sock', d.sock, '--raw', ...argv);
    assert.equal(raw.code, 0, `--raw ${argv.join(' ')}: ${raw.stderr}`);
    // nothing reads the mount meanwhile: the route answers the same now
    const api = await request(d.sock, 'GET', url);
    if (api.status === 204) assert.equal(raw.stdout, '', `--raw ${argv.join(' ')}: nothing in flight prints nothing`);
    else assert.deepEqual(JSON.parse(raw.stdout), api.json, `--raw ${argv.join(' ')}`);
  }
  // an unknown id is the API's 404, printed as the reference's nydusctl does, exit 1
  const missing = await apiError('GET', '/api/v1/metrics?id=/nope');
  assert.equal(missing.status, 404);
  const r = await nydusctl('--sock', d.sock, 'metrics', 'fsstats', '--id', '/nope');
  assert.equal(r.code, 1);
  assert.equal(r.stderr, missing.line);
});

test('mount attaches an image in a shared daemon, info lists it, umount detaches it; a second umount is the API\'s error', async () => {
  // a shared daemon: only --mountpoint and --apisock (snapshotter-contract.md 1.3)
  const dir = tempDir('nydusctl-shared');
  const mnt = path.join(dir, 'mnt');
  mkdirSync(mnt);
  const sock = path.join(dir, 'api.sock');
  const shared = new Daemon(['fuse', '--mountpoint', mnt, '--apisock', sock], mnt);
  try {
    await waitForSocket(shared, sock);
    const cache = path.join(dir, 'cache');
    mkdirSync(cache);
    const cfg = path.join(dir, 'config.json');
    writeFileSync(cfg, JSON.stringify({ device: { backend: { type: 'localfs', config: { dir: path.join(SAMPLE, 'blobs') } }, cache: { type: 'blobcache', config: { work_dir: cache } } }, mode: 'direct' }));
    const r = await nydusctl('--sock', sock, 'mount', '-s', path.join(SAMPLE, 'bootstrap'), '-c', cfg, '-m', '/sub', '-t', 'rafs');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout + r.stderr, '');
    // the image is served at <mountpoint>/sub: a file reads as the sample tree has it
    const file = path.join('docs', 'readme.txt');
    assert.equal(md5(readFileSync(path.join(mnt, 'sub', file))), md5(readFileSync(path.join(projectRoot, 'bootstrap-samples', 'tree', file))));
    const info = await nydusctl('--sock', sock, 'info');
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /^Instances:\n\tInstance Mountpoint:  \/sub\n\tType:  Rafs\n\tMounted Time:  \d{4}-\d\d-\d\d \d{1,2}:\d\d:\d\d(\.\d+)? \+00:00:00\n\tMode:  direct\n/m);
    assert.equal(info.stdout, formatInfo((await request(sock, 'GET', '/api/v1/daemon')).json));
    const u = await nydusctl('--sock', sock, 'umount', '-m', '/sub');
    assert.equal(u.code, 0, u.stderr);
    assert.equal(u.stdout + u.stderr, '');
    assert.equal(existsSync(path.join(mnt, 'sub', file)), false, 'the image is still served after umount');
    const again = await nydusctl('--sock', sock, 'umount', '-m', '/sub');
    assert.equal(again.code, 1);
    const expected = await request(sock, 'DELETE', '/api/v1/mount?mountpoint=/sub');
    assert.equal(expected.status, 500, expected.text);
    assert.equal(again.stderr, `Error: Request failed. ${valueDebug(expected.json)}\n`);
  } finally {
    await shared.cleanup();
    removeDir(dir);
  }
});

test('an unreachable socket is one Error line and exit 1: missing, stale (nobody listening), or not a socket', async () => {
  const dir = tempDir('nydusctl');
  try {
    const missing = path.join(dir, 'missing.sock');
    const stale = path.join(dir, 'stale.sock');
    // a socket file whose server died without removing it
    const child = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    assert.equal(child.signal, 'SIGKILL');
    const plain = path.join(dir, 'plain');
    writeFileSync(plain, '');
    for (const [sock, reason] of [
      [missing, 'no such file (is nydusd running with --apisock?)'],
      [stale, 'connection refused (no daemon serves this socket)'],
      [plain, 'connection refused (no daemon serves this socket)'],
    ] as const) {
      for (const argv of [['info'], ['metrics', 'backend'], ['set', 'log-level', 'info']]) {
        const r = await nydusctl('--sock', sock, ...argv);
        assert.equal(r.code, 1, `${sock} ${argv.join(' ')}`);
        assert.equal(r.stdout, '');
        assert.equal(r.stderr, `Error: cannot connect to nydusd's API socket ${sock}: ${reason}\n`);
      }
    }
  } finally {
    removeDir(dir);
  }
});

test('usage errors exit 2 with the message and the usage; --help exits 0', async () => {
  const usage: [string[], string][] = [
    [['info'], "'--sock <apisock>' is required (before the command)"],
    [['--sock', d.sock], 'a command is required'],
    [['--sock', d.sock, 'frob'], "unknown command 'frob' (expected info, set, metrics, backend, blobcache, mount or umount)"],
    [['--sock', d.sock, 'metrics', 'bogus'], "metrics: unknown kind 'bogus' (expected backend, cache, blobcache, fsstats, inflight, files, pattern)"],
    [['--sock', d.sock, 'metrics'], 'metrics: expected a metrics kind (backend, cache, blobcache, fsstats, inflight, files, pattern), got nothing'],
    [['--sock', d.sock, 'set', 'level', 'info'], "set: unknown kind 'level' (expected log-level)"],
    [['--sock', d.sock, 'mount', '-m', '/x', '-c', '/c'], "mount: '--source' is required"],
    [['--sock', d.sock, 'umount'], "umount: '--mountpoint' is required"],
    [['--sock', d.sock, 'info', '--sock', d.sock], "unexpected argument '--sock'"],
    [['--sock'], "a value is required for '--sock' but none was supplied"],
    [['--sock', d.sock, 'metrics', 'cache', '--interval', '1'], "metrics: '--interval' applies to metrics backend only"],
    [['--sock', d.sock, 'metrics', 'backend', '-I', '0'], "metrics: invalid interval '0': a whole number of seconds from 1"],
  ];
  for (const [argv, message] of usage) {
    const r = await nydusctl(...argv);
    assert.equal(r.code, 2, argv.join(' '));
    assert.equal(r.stdout, '');
    assert.ok(r.stderr.startsWith(`error: ${message}\n\nUsage: nydusctl --sock <apisock>`), `${argv.join(' ')}: ${r.stderr}`);
  }
  const help = await nydusctl('--help');
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: nydusctl --sock <apisock> \[--raw\] <COMMAND> \[ARGS\]\n/);
});

test('the requests nydusctl sends, as a plain HTTP server on a Unix socket receives them', async () => {
  const dir = tempDir('nydusctl-requests');
  const sock = path.join(dir, 'api.sock');
  const got: string[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c));
    req.on('end', () => {
      got.push(`${req.method} ${req.url} ${req.headers['user-agent']} ${req.headers['content-length'] ?? '-'} ${body}`);
      if (req.method === 'GET') {
        res.writeHead(req.url === '/api/v1/metrics/inflight' ? 204 : 200, { 'Content-Type': 'application/json' });
        res.end(req.url === '/api/v1/metrics/inflight' ? undefined : '{"z":1,"a":[{"y":2,"b":3}]}');
      } else {
        res.writeHead(204).end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    const cfgText = '{"device":{"backend":{"type":"localfs","config":{"dir":"/b"}}},"mode":"direct"}\n';
    const cfg = path.join(dir, 'c.json');
    writeFileSync(cfg, cfgText);
    const list = path.join(dir, 'prefetch');
    writeFileSync(list, '/etc/hosts\n\n  /bin \n');
    const ok = async (...argv: string[]) => {
      const r = await nydusctl('--sock', sock, ...argv);
      assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    await ok('set', 'log-level', 'trace');
    await ok('mount', '--source', '/boot strap', '--config', cfg, '--mountpoint', '/sub dir', '-p', list);
    await ok('umount', '-m', '/sub');
    assert.equal(await ok('-r', 'metrics', 'blobcache', '-i', '/42'), '{"a":[{"b":3,"y":2}],"z":1}\n');
    assert.equal(await ok('metrics', 'inflight'), '\nNo FUSE request in flight\n');
    assert.equal(await ok('--raw', 'metrics', 'inflight'), '');
    const mountBody = JSON.stringify({ config: cfgText, fs_type: 'rafs', prefetch_files: ['/etc/hosts', '/bin'], source: '/boot strap' });
    assert.deepEqual(got, [
      'PUT /api/v1/daemon nydusctl 21 {"log_level":"trace"}',
      `POST /api/v1/mount?mountpoint=/sub%20dir nydusctl ${Buffer.byteLength(mountBody)} ${mountBody}`,
      'DELETE /api/v1/mount?mountpoint=/sub nydusctl - ',
      'GET /api/v1/metrics/blobcache?id=/42 nydusctl - ',
      'GET /api/v1/metrics/inflight nydusctl - ',
      'GET /api/v1/metrics/inflight nydusctl - ',
    ]);
  } finally {
    await new Promise((r) => server.close(r));
    removeDir(dir);
  }
});
