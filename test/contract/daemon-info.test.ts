// snapshotter-contract.md section 8 item 11 (DaemonInfo, 3.4): what the snapshotter decodes from GET /api/v1/daemon,
// on a dedicated and on a shared daemon started with its exact argv. A string `version` or a non-string `state` is a
// decode error that breaks every readiness wait.
import assert from 'node:assert/strict';
import { after, afterEach, test } from 'node:test';
import { cleanupDaemons, removeDir, requireEnv } from '../nydusd/helpers.js';
import { dedicatedArgv, exchange, GET_DAEMON, ID, sharedArgv, snapshotterRoot, spawnDaemon, type Root } from './harness.js';

requireEnv();
const roots: Root[] = [];
afterEach(cleanupDaemons);
after(() => {
  for (const r of roots) removeDir(r.R);
});

function assertDaemonInfo(json: unknown, id: string | undefined): void {
  const info = json as Record<string, unknown>;
  assert.equal(typeof info.version, 'object');
  assert.notEqual(info.version, null);
  const version = info.version as Record<string, unknown>;
  for (const k of ['package_ver', 'git_commit', 'build_time', 'profile', 'rustc']) assert.equal(typeof version[k], 'string', `version.${k}`);
  assert.ok(['INIT', 'READY', 'RUNNING'].includes(info.state as string), `state ${JSON.stringify(info.state)}`);
  assert.equal(info.state, 'RUNNING');
  assert.ok(info.id === undefined || info.id === null || typeof info.id === 'string', `id ${JSON.stringify(info.id)}`);
  // --id is given with a supervisor only (1.2); the daemon reports it as given
  assert.equal(info.id ?? undefined, id);
}

test('item 11: DaemonInfo has a five-string version object, a known state and a string-or-null id', async () => {
  const d = snapshotterRoot();
  roots.push(d);
  await spawnDaemon(dedicatedArgv(d), d.mnt, d.sock);
  const dedicated = await exchange(d.sock, GET_DAEMON);
  assert.equal(dedicated.status, 200);
  assertDaemonInfo(dedicated.json, undefined);

  const s = snapshotterRoot();
  roots.push(s);
  await spawnDaemon(sharedArgv(s), s.sharedMnt, s.sock);
  const shared = await exchange(s.sock, GET_DAEMON);
  assert.equal(shared.status, 200);
  assertDaemonInfo(shared.json, ID);
});
