// A shared daemon (nydusd-runtime.md 3.5.6, 9.1; snapshotter-contract.md 8 item 14): started with only --mountpoint and
// --apisock, images attached, replaced and detached over the API while others are read, on the real kernel.
import assert from 'node:assert/strict';
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import { projectRoot, texture } from '../helpers/paths.js';
import { cleanupDaemons, Daemon, daemonMetrics, md5, requireEnv, tempDir } from '../nydusd/helpers.js';
import { fileDigests, splitResult } from '../nydusd/tree-listing.js';
import { request, waitForSocket } from './helpers.js';

requireEnv();
after(cleanupDaemons);

const SAMPLES = path.join(projectRoot, 'bootstrap-samples');
const TREE = path.join(SAMPLES, 'tree');

interface Shared {
  daemon: Daemon;
  dir: string;
  sock: string;
  mnt: string;
}

async function startShared(): Promise<Shared> {
  const dir = tempDir('shared');
  const mnt = path.join(dir, 'mnt');
  mkdirSync(mnt);
  const sock = path.join(dir, 'api.sock');
  const logFile = path.join(dir, 'nydusd.log');
  // the argv nydus-snapshotter gives a shared daemon (snapshotter-contract.md 1.3)
  const daemon = new Daemon(
    ['fuse', '--thread-num', '4', '--id', 'shared-test', '--mountpoint', mnt, '--apisock', sock, '--log-level', 'info', '--log-rotation-size', '100',
      '--supervisor', path.join(dir, 'supervisor.sock'), '--log-file', logFile, '--failover-policy', 'resend'],
    mnt,
  );
  await waitForSocket(daemon, sock);
  return { daemon, dir, sock, mnt };
}

/** A v1 configuration string as the snapshotter sends it, with a localfs backend over a copy of `blobs`. */
function configFor(s: Shared, name: string, blobs: string, workDir = path.join(s.dir, `cache-${name}`)): string {
  const dir = path.join(s.dir, `blobs-${name}`);
  if (!existsSync(dir)) cpSync(blobs, dir, { recursive: true });
  mkdirSync(workDir, { recursive: true });
  return JSON.stringify({
    device: { backend: { type: 'localfs', config: { dir } }, cache: { type: 'blobcache', config: { work_dir: workDir } } },
    mode: 'direct',
  });
}

function mountCmd(source: string, config: string): string {
  return JSON.stringify({ fs_type: 'rafs', source, config });
}

async function mount(s: Shared, at: string, source: string, config: string, method = 'POST'): Promise<void> {
  const r = await request(s.sock, method, `/api/v1/mount?mountpoint=${encodeURIComponent(at)}`, { body: mountCmd(source, config) });
  assert.equal(r.status, 204, `${method} ${at}: ${r.text}`);
}

async function umount(s: Shared, at: string): Promise<void> {
  const r = await request(s.sock, 'DELETE', `/api/v1/mount?mountpoint=${encodeURIComponent(at)}`);
  assert.equal(r.status, 204, `DELETE ${at}: ${r.text}`);
}

/** Every regular file under `root` read at once (the libuv pool reads them concurrently), by relative path. */
async function readAll(root: string): Promise<Map<string, string>> {
  const files = [...fileDigests(root).keys()];
  const sums = await Promise.all(files.map(async (f) => [f, md5(await readFile(path.join(root, f)))] as const));
  return new Map(sums);
}

/** The files of the sample tree that the build took as they are (the build adds a few of its own). */
function expectSampleFiles(got: Map<string, string>, where: string): void {
  const want = fileDigests(TREE);
  assert.ok(want.size > 5, `the sample tree has only ${want.size} files`);
  for (const [f, sum] of want) assert.equal(got.get(f), sum, `${where}/${f}`);
}

function dropCaches(): void {
  writeFileSync('/proc/sys/vm/drop_caches', '3');
}

test('a shared daemon attaches, replaces and detaches images while others are read', async () => {
  const s = await startShared();
  const info0 = await request(s.sock, 'GET', '/api/v1/daemon');
  assert.equal((info0.json as { state: string }).state, 'RUNNING');
  assert.deepEqual((info0.json as { backend_collection: object }).backend_collection, {});
  assert.deepEqual(readdirSync(s.mnt), [], 'a shared daemon starts with an empty pseudo root');

  // three images, one of them two levels down
  await mount(s, '/a', path.join(SAMPLES, 'v6-zstd', 'bootstrap'), configFor(s, 'a', path.join(SAMPLES, 'v6-zstd', 'blobs')));
  await mount(s, '/b', path.join(SAMPLES, 'v5-zstd', 'bootstrap'), configFor(s, 'b', path.join(SAMPLES, 'v5-zstd', 'blobs')));
  await mount(s, '/c/d', path.join(SAMPLES, 'v6-lz4_block', 'bootstrap'), configFor(s, 'd', path.join(SAMPLES, 'v6-lz4_block', 'blobs')));
  assert.deepEqual(readdirSync(s.mnt).sort(), ['a', 'b', 'c']);
  assert.deepEqual(readdirSync(path.join(s.mnt, 'c')), ['d']);
  const info = (await request(s.sock, 'GET', '/api/v1/daemon')).json as { backend_collection: Record<string, { mountpoint: string }> };
  assert.deepEqual(Object.keys(info.backend_collection).sort(), ['/a', '/b', '/c/d']);

  // all three read at once
  const [a, b, d] = await Promise.all(['a', 'b', 'c/d'].map((p) => readAll(path.join(s.mnt, p))));
  expectSampleFiles(a!, '/a');
  expectSampleFiles(b!, '/b');
  expectSampleFiles(d!, '/c/d');
  assert.deepEqual(a, b);
  assert.deepEqual(a, d);

  // the same place twice: the reference's 500 "already exists"; inside an instance: refused
  const again = await request(s.sock, 'POST', '/api/v1/mount?mountpoint=%2Fa', { body: mountCmd(path.join(SAMPLES, 'v6-zstd', 'bootstrap'), configFor(s, 'a', '')) });
  assert.equal(again.status, 500);
  assert.match((again.json as { message: string }).message, /already exists/);
  const inside = await request(s.sock, 'POST', '/api/v1/mount?mountpoint=%2Fa%2Fbin', { body: mountCmd(path.join(SAMPLES, 'v6-zstd', 'bootstrap'), configFor(s, 'a', '')) });
  assert.equal(inside.status, 500);
  assert.match((inside.json as { message: string }).message, /inside the instance at \/a/);

  // remount /b to another image while a file of the old one is open: the open file keeps reading the old bytes
  const held = 'hello';
  const oldBytes = readFileSync(path.join(TREE, held));
  const fd = openSync(path.join(s.mnt, 'b', held), 'r');
  const repeatable = texture('repeatable', 'sha256-nocompress-repeatable');
  await mount(s, '/b', repeatable, configFor(s, 'b2', texture('repeatable', 'blobs')), 'PUT');
  dropCaches(); // the old file's pages go: its next read reaches the daemon, for a node of the replaced instance
  const back = Buffer.alloc(oldBytes.length + 1);
  const n = readSync(fd, back, 0, back.length, 0);
  closeSync(fd);
  assert.equal(md5(back.subarray(0, n)), md5(oldBytes), 'a file opened before the remount reads the image it was opened in');
  // new lookups see the new image: its md5 listing is the fixture's
  const want = new Map(
    splitResult(readFileSync(`${repeatable}.result`, 'utf8'))
      .sums.trim()
      .split('\n')
      .map((l) => [l.slice(l.indexOf('  ') + 3), l.slice(0, l.indexOf('  '))] as const),
  );
  assert.deepEqual(await readAll(path.join(s.mnt, 'b')), want);

  // detach /a while /c/d is being read: the reader never fails, /a disappears
  let stop = false;
  let rounds = 0;
  const reader = (async () => {
    while (!stop || rounds < 3) {
      dropCaches();
      expectSampleFiles(await readAll(path.join(s.mnt, 'c', 'd')), `/c/d round ${rounds}`);
      rounds++;
    }
  })();
  await umount(s, '/a');
  stop = true;
  await reader;
  assert.equal(existsSync(path.join(s.mnt, 'a')), false, 'a detached instance leaves no entry behind');
  assert.deepEqual(readdirSync(s.mnt).sort(), ['b', 'c']);
  const twice = await request(s.sock, 'DELETE', '/api/v1/mount?mountpoint=%2Fa');
  assert.equal(twice.status, 500);
  assert.match((twice.json as { message: string }).message, /doesn't exist/);

  // a bootstrap that is not one: a clear error, nothing attached, the others still served
  const junk = path.join(s.dir, 'junk.boot');
  writeFileSync(junk, Buffer.alloc(8192, 0x5a));
  const bad = await request(s.sock, 'POST', '/api/v1/mount?mountpoint=%2Fjunk', { body: mountCmd(junk, configFor(s, 'a', '')) });
  assert.equal(bad.status, 500);
  assert.match((bad.json as { message: string }).message, /junk\.boot/);
  const missing = await request(s.sock, 'POST', '/api/v1/mount?mountpoint=%2F42', { body: mountCmd(path.join(s.dir, 'nope'), configFor(s, 'a', '')) });
  assert.ok(missing.status >= 400, missing.text);
  assert.equal(existsSync(path.join(s.mnt, 'junk')), false);
  assert.equal(existsSync(path.join(s.mnt, '42')), false);
  expectSampleFiles(await readAll(path.join(s.mnt, 'c', 'd')), '/c/d after the failed mounts');
  assert.equal(((await request(s.sock, 'GET', '/api/v1/daemon')).json as { state: string }).state, 'RUNNING');

  const stopped = await s.daemon.stop();
  assert.equal(stopped.code, 0, stopped.stderr);
});

test('detached instances give their slot back once the kernel forgets them: 300 attach/read/detach cycles', async () => {
  const s = await startShared();
  const config = configFor(s, 'x', path.join(SAMPLES, 'v6-zstd', 'blobs'));
  const want = md5(readFileSync(path.join(TREE, 'hello')));
  // 255 slots: without the kernel's FORGETs balancing the lookups, cycle 256 would find none free
  for (let i = 0; i < 300; i++) {
    await mount(s, '/x', path.join(SAMPLES, 'v6-zstd', 'bootstrap'), config);
    assert.equal(md5(readFileSync(path.join(s.mnt, 'x', 'hello'))), want, `cycle ${i}`);
    assert.ok(statSync(path.join(s.mnt, 'x', 'bin')).isDirectory());
    await umount(s, '/x');
  }
  const stopped = await s.daemon.stop();
  assert.equal(stopped.code, 0, stopped.stderr);
});

test('a layer two images share is fetched from the backend once', async () => {
  const s = await startShared();
  const blobs = path.join(SAMPLES, 'v6-zstd', 'blobs');
  const workDir = path.join(s.dir, 'cache-shared');
  // two images over one work_dir, each with its own backend (own copy of the blob)
  await mount(s, '/x', path.join(SAMPLES, 'v6-zstd', 'bootstrap'), configFor(s, 'x', blobs, workDir));
  await mount(s, '/y', path.join(SAMPLES, 'v6-zstd', 'bootstrap'), configFor(s, 'y', blobs, workDir));
  const [x, y] = await Promise.all([readAll(path.join(s.mnt, 'x')), readAll(path.join(s.mnt, 'y'))]);
  expectSampleFiles(x!, '/x');
  assert.deepEqual(x, y);
  const m = (await daemonMetrics(s.daemon, path.join(s.dir, 'nydusd.log'))) as unknown as {
    instances: Array<{ mountpoint: string; backend: { bytes: number } }>;
  };
  const fetched = m.instances.reduce((sum, i) => sum + i.backend.bytes, 0);
  const blobSize = readdirSync(blobs).reduce((sum, f) => sum + statSync(path.join(blobs, f)).size, 0);
  assert.ok(fetched > 0, 'the reads went to a backend');
  assert.ok(fetched <= blobSize, `the two images fetched ${fetched} bytes of a ${blobSize}-byte blob: some of it twice`);
  const stopped = await s.daemon.stop();
  assert.equal(stopped.code, 0, stopped.stderr);
});

test('PUT /api/v1/mount?mountpoint=/ swaps the image of a dedicated daemon; files opened before keep their image', async () => {
  const s = await startShared();
  await mount(s, '/', path.join(SAMPLES, 'v6-zstd', 'bootstrap'), configFor(s, 'root', path.join(SAMPLES, 'v6-zstd', 'blobs')));
  expectSampleFiles(await readAll(s.mnt), '/');
  const oldBytes = readFileSync(path.join(TREE, 'hello'));
  const fd = openSync(path.join(s.mnt, 'hello'), 'r');
  const repeatable = texture('repeatable', 'sha256-nocompress-repeatable');
  await mount(s, '/', repeatable, configFor(s, 'root2', texture('repeatable', 'blobs')), 'PUT');
  dropCaches();
  const back = Buffer.alloc(oldBytes.length + 1);
  const n = readSync(fd, back, 0, back.length, 0);
  closeSync(fd);
  assert.equal(md5(back.subarray(0, n)), md5(oldBytes));
  // the root's cached children were dropped: the listing and the files are the new image's
  const want = new Map(
    splitResult(readFileSync(`${repeatable}.result`, 'utf8'))
      .sums.trim()
      .split('\n')
      .map((l) => [l.slice(l.indexOf('  ') + 3), l.slice(0, l.indexOf('  '))] as const),
  );
  assert.deepEqual(await readAll(s.mnt), want);
  assert.equal(existsSync(path.join(s.mnt, 'hello')), false, 'a name of the old image only is gone');
  const stopped = await s.daemon.stop();
  assert.equal(stopped.code, 0, stopped.stderr);
});
