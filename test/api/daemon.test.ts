// The API's transport and daemon routes on a real daemon (nydusd-runtime.md 1.9, 3.1-3.5; snapshotter-contract.md
// section 8 items 1, 6, 10, 11): the socket appears only once the daemon is RUNNING with its mount visible, is
// owner-only, replaces a stale file and refuses a live one; DaemonInfo's layout and values; bad requests get clear
// error bodies and the daemon keeps serving; failed backend reads reach the events ring.
import { after, afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, renameSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { NYDUSD, cleanupDaemons, isMounted, removeDir, requireEnv, run, sleep, tempDir, Daemon, runNydusd } from '../nydusd/helpers.js';
import { isSocket, rawExchange, request, SAMPLE, startApiDaemon, waitForSocket, type ApiDaemon } from './helpers.js';

requireEnv();
const dirs: string[] = [];
afterEach(async () => {
  await cleanupDaemons();
});
after(() => {
  for (const d of dirs) removeDir(d);
});

async function start(extra: string[] = [], opts: { dir?: string; sock?: string } = {}): Promise<ApiDaemon> {
  const d = await startApiDaemon(extra, opts);
  dirs.push(d.dir);
  return d;
}

test('the socket appears only after RUNNING: the first answer is RUNNING and the mount is already visible', async () => {
  const dir = tempDir('api-first');
  dirs.push(dir);
  const sock = path.join(dir, 'api.sock');
  const started = startApiDaemon([], { dir, sock });
  // the snapshotter's loop: poll for the socket file, then GET at once
  let first: Awaited<ReturnType<typeof request>> | undefined;
  let mountedAtFirst = false;
  const deadline = Date.now() + 20_000;
  while (!first) {
    if (isSocket(sock)) {
      mountedAtFirst = isMounted(path.join(dir, 'mnt'));
      first = await request(sock, 'GET', '/api/v1/daemon');
    } else {
      // (the socket may appear between the check above and any check here: only what is seen with it counts)
      if (Date.now() > deadline) throw new Error('no socket within 20 s');
      await sleep(5);
    }
  }
  await started;
  assert.equal(first.status, 200, first.text);
  assert.equal((first.json as { state: string }).state, 'RUNNING');
  assert.ok(mountedAtFirst, 'the socket existed before the FUSE mount was in /proc/self/mountinfo');
});

test('DaemonInfo: the documented layout, git_commit equal to --version, state, id and supervisor, the mounted instance', async () => {
  const d = await start(['--id', 'daemon-7', '--supervisor', '/run/nydus-supervisor-7.sock']);
  const version = run(process.execPath, [NYDUSD, '--version']);
  const commit = /Git Commit:\s*(\S.*)/.exec(version)![1]!.trim();
  const before = Date.now();
  const res = await request(d.sock, 'GET', '/api/v1/daemon');
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
  assert.ok(!res.text.includes('\n'), 'compact single-line JSON');
  const info = res.json as Record<string, any>;
  assert.deepEqual(Object.keys(info), ['version', 'id', 'supervisor', 'state', 'backend_collection']);
  assert.deepEqual(Object.keys(info.version), ['package_ver', 'git_commit', 'build_time', 'profile', 'rustc']);
  for (const v of Object.values(info.version)) assert.equal(typeof v, 'string');
  assert.equal(info.version.git_commit, commit);
  assert.equal(info.version.package_ver, `v${JSON.parse(readFileSync(path.join(SAMPLE, '..', '..', 'package.json'), 'utf8')).version}`);
  assert.equal(info.id, 'daemon-7');
  assert.equal(info.supervisor, '/run/nydus-supervisor-7.sock');
  assert.equal(info.state, 'RUNNING');
  assert.deepEqual(Object.keys(info.backend_collection), ['/']);
  const inst = info.backend_collection['/'];
  assert.deepEqual(Object.keys(inst), ['backend_type', 'mountpoint', 'mounted_time', 'config']);
  assert.equal(inst.backend_type, 'Rafs');
  assert.equal(inst.mountpoint, '/');
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})\.(\d{1,9}) \+00:00:00$/.exec(inst.mounted_time);
  assert.ok(m, `mounted_time ${inst.mounted_time}`);
  assert.ok(!m[3]!.endsWith('0') || m[3] === '0', `fractional digits are trimmed: ${m[3]}`);
  const mountedMs = Date.parse(`${m[1]}T${m[2]}.${m[3]!.padEnd(3, '0').slice(0, 3)}Z`);
  assert.ok(mountedMs <= before && mountedMs >= d.daemon.started - 1000, `mounted_time ${inst.mounted_time} is not between spawn and query`);
  assert.equal(inst.config.backend.type, 'localfs');
  assert.equal(inst.config.backend.localfs.dir, d.cache);
  assert.equal(inst.config.cache.filecache.work_dir, d.cache);
  assert.equal(inst.config.rafs.mode, 'direct');
  // v2: the same without the collection
  const v2 = (await request(d.sock, 'GET', '/api/v2/daemon')).json as Record<string, any>;
  assert.deepEqual(Object.keys(v2), ['version', 'id', 'supervisor', 'state', 'backend_collection']);
  assert.deepEqual(v2.version, info.version);
  assert.equal(v2.backend_collection, null);
});

test('the socket is owner-only (0600) by default and --apisock-mode 0660 widens it', async () => {
  const a = await start();
  assert.equal(statSync(a.sock).mode & 0o777, 0o600);
  const b = await start(['--apisock-mode', '0660']);
  assert.equal(statSync(b.sock).mode & 0o777, 0o660);
  const bad = await runNydusd(['--apisock-mode', '0999', '--mountpoint', '/nonexistent']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--apisock-mode/);
});

test('a stale socket file is replaced; a live one is refused before anything is mounted; SIGTERM removes the socket', async () => {
  const dir = tempDir('api-stale');
  dirs.push(dir);
  const sock = path.join(dir, 'api.sock');
  // a socket file nobody listens on: what a SIGKILLed daemon leaves
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(sock, r));
  const stale = path.join(dir, 'stale.sock');
  renameSync(sock, stale);
  srv.close();
  renameSync(stale, sock);
  assert.ok(isSocket(sock));
  // the stale file is a socket already: wait for the daemon to say it listens
  const d = await startApiDaemon([], { dir, sock, ready: (dd) => dd.stderr.includes('management API listening') });
  const res = await request(sock, 'GET', '/api/v1/daemon');
  assert.equal(res.status, 200);

  // a second daemon on the live socket: exit 1, a clear error, its mountpoint never mounted, the first still serving
  const mnt2 = path.join(dir, 'mnt2');
  spawnSync('mkdir', ['-p', mnt2]);
  const second = await runNydusd(['--bootstrap', path.join(SAMPLE, 'bootstrap'), '--localfs-dir', d.cache, '--mountpoint', mnt2, '--apisock', sock]);
  assert.equal(second.code, 1, second.stderr);
  assert.match(second.stderr, /^Error: --apisock .*another process is serving this socket/m);
  assert.ok(!isMounted(mnt2));
  assert.equal((await request(sock, 'GET', '/api/v1/daemon')).status, 200);

  // a path that is not a socket is never deleted
  const file = path.join(dir, 'not-a-socket');
  writeFileSync(file, 'keep me');
  const third = await runNydusd(['--bootstrap', path.join(SAMPLE, 'bootstrap'), '--localfs-dir', d.cache, '--mountpoint', mnt2, '--apisock', file]);
  assert.equal(third.code, 1);
  assert.match(third.stderr, /is not a socket/);
  assert.equal(readFileSync(file, 'utf8'), 'keep me');

  const exit = await d.daemon.stop();
  assert.equal(exit.code, 0, exit.stderr);
  assert.ok(!isSocket(sock), 'the socket file outlived a graceful shutdown');
  assert.ok(!isMounted(d.mountpoint));
});

test('bad requests get clear {code, message} errors and the daemon keeps serving', async () => {
  const d = await start();
  const cases: { method: string; url: string; body?: string | Buffer; headers?: Record<string, string>; status: number; message: RegExp }[] = [
    { method: 'GET', url: '/api/v1/nope', status: 404, message: /^NoRoute$/ },
    { method: 'GET', url: '/api/v1/daemon/', status: 404, message: /^NoRoute$/ },
    { method: 'GET', url: '/api/v1/daemon/start', status: 400, message: /^BadRequest: GET is not served/ },
    { method: 'DELETE', url: '/api/v1/daemon', status: 400, message: /^BadRequest/ },
    { method: 'PUT', url: '/api/v1/daemon', body: '{', status: 400, message: /not valid JSON/ },
    { method: 'PUT', url: '/api/v1/daemon', body: '{"log_level": 5}', status: 400, message: /^ParseBody: body \/log_level must be string/ },
    { method: 'PUT', url: '/api/v1/daemon', body: '[1,2]', status: 400, message: /^ParseBody/ },
    { method: 'PUT', url: '/api/v1/daemon', status: 400, message: /needs a JSON body/ },
    { method: 'GET', url: '/api/v1/daemon', body: '{}', status: 400, message: /takes no body/ },
    { method: 'POST', url: '/api/v1/mount', body: '{', status: 400, message: /mountpoint|JSON/ },
    { method: 'PUT', url: '/api/v1/daemon', body: '{"log_level":"info"}', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, status: 204, message: /^$/ },
  ];
  for (const c of cases) {
    const what = `${c.method} ${c.url} ${c.body === undefined ? '' : String(c.body).slice(0, 30)}`;
    const res = await request(d.sock, c.method, c.url, { body: c.body, headers: c.headers }).catch((e: Error) => {
      throw new Error(`${what}: ${e.message}`);
    });
    assert.equal(res.status, c.status, `${what}: ${res.text}`);
    if (c.status !== 204) {
      const e = res.json as { code: string; message: string };
      assert.equal(e.code, 'UNDEFINED', what);
      assert.match(e.message, c.message, what);
    }
    const ok = await request(d.sock, 'GET', '/api/v1/daemon');
    assert.equal(ok.status, 200, `after ${what}`);
  }
  // a 10 MiB body: refused from its Content-Length, before it is read (the connection then ends, as nothing of it
  // can be skipped safely); written raw so that the client's own write errors after the answer do not hide it
  const big = await rawExchange(d.sock, `PUT /api/v1/daemon HTTP/1.1\r\nHost: unix\r\nContent-Type: application/json\r\nContent-Length: ${10 << 20}\r\n\r\n`, Buffer.alloc(10 << 20, 0x20));
  assert.match(big, /^HTTP\/1\.1 400 [\s\S]*\{"code":"UNDEFINED","message":"BadRequest: the request body is larger than 51200 bytes"\}/);
  assert.equal((await request(d.sock, 'GET', '/api/v1/daemon')).status, 200);
  // the absolute-form target and a raw (not percent-encoded) query value are accepted (spec 3.2)
  const raw = await rawExchange(d.sock, 'GET http://localhost/api/v1/daemon/backend?mountpoint=/ HTTP/1.1\r\nHost: unix\r\n\r\n');
  assert.match(raw, /^HTTP\/1\.1 200 /);
  // a request the HTTP parser cannot read at all: a 400 with the error shape
  const garbage = await rawExchange(d.sock, 'NOT HTTP AT ALL\r\n\r\n');
  assert.match(garbage, /^HTTP\/1\.1 400 [\s\S]*\{"code":"UNDEFINED","message":"BadRequest: malformed HTTP request/);
  assert.equal((await request(d.sock, 'GET', '/api/v1/daemon')).status, 200);
  assert.equal(d.daemon.running, true);
});

test('PUT /api/v1/daemon sets the log level at once (debug lines appear, then none at error)', async () => {
  const d = await start();
  const debugLines = () => d.daemon.stderr.split('\n').filter((l) => / DEBUG /.test(l)).length;
  assert.equal((await request(d.sock, 'PUT', '/api/v1/daemon', { body: '{"log_level":"DEBUG"}' })).status, 204);
  readFileSync(path.join(d.mountpoint, 'hello'));
  await waitForLines(d, () => debugLines() > 0, 'a DEBUG backend-read line');
  assert.equal((await request(d.sock, 'PUT', '/api/v2/daemon', { body: '{"log_level":"off"}' })).status, 204);
  const n = d.daemon.stderr.length;
  assert.equal((await request(d.sock, 'PUT', '/api/v1/daemon', { body: '{"log_level":"bogus"}' })).status, 500);
  assert.equal(d.daemon.stderr.length, n, 'a line was logged at level off');
});

test('a failed backend read is recorded in GET /api/v1/daemon/events as `<IMF-fixdate> - <error>`', async () => {
  const d = await start();
  const before = (await request(d.sock, 'GET', '/api/v1/daemon/events')).json as Record<string, any>;
  assert.deepEqual(before, { max_errors: 500, total_errors: 0, max_size: 51200, total_size: 0, errors: [] });
  // the blob is cut short under the daemon (it may hold it open already): the first read of uncached data fails
  // in the backend
  const blob = spawnSync('ls', [d.cache], { encoding: 'utf8' }).stdout.split('\n').find((f) => /^[0-9a-f]{64}$/.test(f))!;
  truncateSync(path.join(d.cache, blob), 0);
  assert.throws(() => readFileSync(path.join(d.mountpoint, 'data', 'numbers.txt')), /EIO|input\/output/i);
  const ev = (await request(d.sock, 'GET', '/api/v1/daemon/events')).json as Record<string, any>;
  assert.ok(ev.total_errors >= 1, JSON.stringify(ev));
  assert.equal(ev.errors.length, ev.total_errors);
  assert.equal(ev.total_size, ev.errors.reduce((n: number, e: string) => n + Buffer.byteLength(e), 0));
  assert.match(ev.errors[0], /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT - localfs: reading blob [0-9a-f]{64} offset \d+ length \d+: /);
});

async function waitForLines(d: ApiDaemon, cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${d.daemon.stderr}`);
    await sleep(10);
  }
}

export { Daemon, waitForSocket };
