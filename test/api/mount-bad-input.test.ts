// Mountpoints that would escape the pseudo-root of a shared daemon (issue 9 acceptance "Bad input"; nydusd-runtime.md
// 3.5.6): `/../x`, `//x`, percent-encoded dots, empty, relative and NUL-bearing paths, given to POST, PUT and DELETE
// /api/v1/mount with an otherwise valid MountCmd. Each must be refused with a {code, message} error that is not 501
// (the feature exists; the input is what is wrong), and the instance mounted at /ok keeps serving, untouched.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { cleanupDaemons, Daemon, removeDir, requireEnv, tempDir } from '../nydusd/helpers.js';
import { assertErrorBody, assertServing, request, SAMPLE, waitForSocket } from './helpers.js';

let dir: string;
let d: { daemon: Daemon; sock: string; mountpoint: string };
let mountBody: string;

before(async () => {
  requireEnv();
  dir = tempDir('api-mount-bad');
  const mountpoint = path.join(dir, 'mnt');
  const cache = path.join(dir, 'cache');
  mkdirSync(mountpoint);
  cpSync(path.join(SAMPLE, 'blobs'), cache, { recursive: true });
  const sock = path.join(dir, 'api.sock');
  // a shared daemon: only --mountpoint and --apisock, images come through the API (issue 9, shared daemon mode)
  const daemon = new Daemon(['--mountpoint', mountpoint, '--apisock', sock], mountpoint);
  await waitForSocket(daemon, sock);
  d = { daemon, sock, mountpoint };
  // the configuration as nydus-snapshotter sends it: v1 JSON, as a string
  const config = { device: { backend: { type: 'localfs', config: { dir: cache } }, cache: { type: 'blobcache', config: { work_dir: cache } } }, mode: 'direct' };
  mountBody = JSON.stringify({ fs_type: 'rafs', source: path.join(SAMPLE, 'bootstrap'), config: JSON.stringify(config) });
  const res = await request(sock, 'POST', '/api/v1/mount?mountpoint=%2Fok', { body: mountBody });
  assert.equal(res.status, 204, `mounting the sample at /ok: ${res.text}`);
  await assertServing(d, 'after mounting /ok', 'ok');
});

after(async () => {
  await cleanupDaemons();
  if (dir) removeDir(dir);
});

/** Query values as sent on the wire (the server percent-decodes them once, spec 3.2), with what each decodes to. */
const ESCAPES: [string, string][] = [
  ['/../x', 'a parent segment'],
  ['%2F..%2Fx', 'a parent segment, percent-encoded slashes'],
  ['/%2e%2e/x', 'percent-encoded dots'],
  ['/%2E%2E/ok', 'percent-encoded dots onto the mounted instance'],
  ['/ok/../x', 'a parent segment inside the path'],
  ['/..', 'the parent of the pseudo-root'],
  ['//x', 'an empty segment'],
  ['/x//y', 'an empty segment inside the path'],
  ['/./x', 'a dot segment'],
  ['', 'empty'],
  ['x', 'relative'],
  ['..%2Fx', 'relative, upwards'],
  ['/x%00y', 'a NUL'],
  ['%00', 'only a NUL'],
];

async function collection(): Promise<string[]> {
  const res = await request(d.sock, 'GET', '/api/v1/daemon');
  assert.equal(res.status, 200, res.text);
  return Object.keys((res.json as { backend_collection: Record<string, unknown> }).backend_collection).sort();
}

async function expectRefused(method: string, value: string, why: string, body?: string): Promise<void> {
  const what = `${method} /api/v1/mount?mountpoint=${value} (${why})`;
  const res = await request(d.sock, method, `/api/v1/mount?mountpoint=${value}`, body !== undefined ? { body } : {});
  assert.ok(res.status >= 400, `${what} was accepted: ${res.status} ${res.text}`);
  assert.notEqual(res.status, 501, `${what}: 501 (the mount routes are not implemented yet): ${res.text}`);
  const e = assertErrorBody(res, what);
  assert.match(e.message, /^Mount: /, `${what}: the route's wrapper`);
  assert.deepEqual(await collection(), ['/ok'], `${what}: the instances changed`);
  assert.deepEqual(readdirSync(d.mountpoint), ['ok'], `${what}: the pseudo-root changed`);
}

test('POST /api/v1/mount refuses mountpoints outside the pseudo-root, and /ok keeps serving', async () => {
  for (const [value, why] of ESCAPES) await expectRefused('POST', value, why, mountBody);
  assert.deepEqual(readdirSync(dir).sort(), ['api.sock', 'cache', 'mnt'], 'something was created beside the mountpoint');
  await assertServing(d, 'after refused POSTs', 'ok');
});

test('PUT /api/v1/mount (remount) refuses them too: nothing is swapped, /ok reads its own image', async () => {
  for (const [value, why] of ESCAPES) await expectRefused('PUT', value, why, mountBody);
  await assertServing(d, 'after refused PUTs', 'ok');
});

test('DELETE /api/v1/mount refuses them, even those that would name /ok once resolved', async () => {
  for (const [value, why] of ESCAPES) await expectRefused('DELETE', value, why);
  await assertServing(d, 'after refused DELETEs', 'ok');
});
