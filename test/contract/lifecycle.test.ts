// snapshotter-contract.md section 8, C (items 12-14): the dedicated mount as the snapshotter checks it (6.3, 6.4),
// its SIGTERM teardown (3.5), and a shared daemon's attach and detach replayed with the exact 3.1 request bytes.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterEach, test } from 'node:test';
import { mountAt } from '../../src/fuse/mountinfo.js';
import { cleanupDaemons, requireEnv } from '../nydusd/helpers.js';
import {
  assertErrorBody, dedicatedArgv, exchange, GET_DAEMON, goRequest, ID, isMountpoint, localfsConfig, mountBody, SAMPLES, sharedArgv, SID,
  snapshotterRoot, spawnDaemon, waitUnmounted, waitUntilState, writeAtomically,
} from './harness.js';

requireEnv();
afterEach(cleanupDaemons);

/** The image's root listing, from bootstrap-samples/tree.list (`<mode> <size> <path>[ -> <target>][ [xattrs]]`). */
function expectedRootListing(): string[] {
  const names = new Set<string>();
  for (const line of readFileSync(path.join(SAMPLES, 'tree.list'), 'utf8').split('\n')) {
    const m = /^\S+ \S+ (.*)$/.exec(line);
    if (m) names.add(m[1]!.replace(/ \[.*\]$/, '').replace(/ -> .*$/, '').split('/')[0]!);
  }
  return [...names].sort();
}

test('item 12: the dedicated mount: its own st_dev, fstype fuse, read-only, the root answers getattr', async () => {
  const r = snapshotterRoot();
  await spawnDaemon(dedicatedArgv(r), r.mnt, r.sock);
  await waitUntilState(r.sock, 'RUNNING');
  assert.notEqual(statSync(r.mnt).dev, statSync(path.dirname(r.mnt)).dev, 'R/snapshots/42/mnt has the st_dev of its parent');
  const m = mountAt(r.mnt);
  assert.ok(m, 'the mount is not in /proc/self/mountinfo');
  assert.match(m.fsType, /^fuse(\..+)?$/);
  assert.ok(m.options.split(',').includes('ro'), `mount options ${m.options}`);
  assert.ok(statSync(r.mnt).isDirectory(), 'getattr of the root');
  assert.deepEqual(readdirSync(r.mnt).sort(), expectedRootListing());
});

test('item 13: SIGTERM: the process exits and the mountpoint stops being one within the 20 checks', async () => {
  const r = snapshotterRoot();
  const d = await spawnDaemon(dedicatedArgv(r), r.mnt, r.sock);
  await waitUntilState(r.sock, 'RUNNING');
  // DestroyDaemon (3.5): SIGTERM, wait() (bounded here only against a hang), then the unmount poll
  d.signal('SIGTERM');
  const exit = await d.waitExit(20_000);
  assert.equal(exit.code, 0, exit.stderr);
  assert.ok(await waitUnmounted(r.mnt), 'R/snapshots/42/mnt is still a mountpoint after the 20 checks');
  // then its rm -rf of the daemon's directories and the mountpoint succeeds
  rmdirSync(r.mnt);
  rmSync(path.join(r.R, 'config', ID), { recursive: true });
  rmSync(path.dirname(r.logFile), { recursive: true });
  rmSync(path.dirname(r.sock), { recursive: true });
});

test('item 14: shared attach and detach with the 3.1 POST and DELETE bytes; repeated, unknown and broken requests pinned', async () => {
  const r = snapshotterRoot();
  await spawnDaemon(sharedArgv(r), r.sharedMnt, r.sock);
  await waitUntilState(r.sock, 'RUNNING');
  assert.deepEqual(readdirSync(r.sharedMnt), [], 'a shared daemon starts with an empty R/mnt');

  // the shared instance's config lives in R/config/ID/SID/config.json and is re-read at mount time (2.1 step 3)
  const cfgFile = path.join(r.R, 'config', ID, SID, 'config.json');
  mkdirSync(path.dirname(cfgFile));
  writeAtomically(cfgFile, localfsConfig(r, SID));
  const POST = goRequest('POST', `/api/v1/mount?mountpoint=%2F${SID}`, mountBody(r.bootstrap, readFileSync(cfgFile, 'utf8')));
  const DELETE = goRequest('DELETE', `/api/v1/mount?mountpoint=%2F${SID}`);
  const inst = path.join(r.sharedMnt, SID);

  const posted = await exchange(r.sock, POST);
  assert.ok(posted.status === 204 || posted.status === 200, `POST: ${posted.status} ${posted.body}`);
  assert.deepEqual(readdirSync(inst).sort(), expectedRootListing(), 'R/mnt/42 resolves at once with the image root');
  assert.deepEqual(readdirSync(r.sharedMnt), [SID]);

  // the same POST again: the reference's 500 AlreadyExists (decided: kept, DECISIONS.md 9)
  const again = await exchange(r.sock, POST);
  assert.equal(again.status, 500, again.body);
  assert.match(assertErrorBody(again, 'repeated POST').message, /already exists/);
  assert.deepEqual(readdirSync(inst).sort(), expectedRootListing(), 'the refused POST left the instance alone');

  const deleted = await exchange(r.sock, DELETE);
  assert.equal(deleted.status, 204, deleted.body);
  assert.throws(() => statSync(inst), { code: 'ENOENT' });
  // the snapshotter's rm -rf of R/mnt/42 then finds nothing to remove (no EROFS)
  rmSync(inst, { recursive: true, force: true });

  // the same DELETE again: the reference's 500 NotFound
  const twice = await exchange(r.sock, DELETE);
  assert.equal(twice.status, 500, twice.body);
  assertErrorBody(twice, 'repeated DELETE');

  // a source that does not exist: an error naming it, and the daemon stays RUNNING with nothing attached
  const missing = path.join(r.R, 'snapshots', '44', 'fs', 'image', 'image.boot');
  const bad = await exchange(r.sock, goRequest('POST', '/api/v1/mount?mountpoint=%2F44', mountBody(missing, localfsConfig(r, '44'))));
  assert.ok(assertErrorBody(bad, 'POST with a nonexistent source').message.includes(missing), bad.body);
  const info = await exchange(r.sock, GET_DAEMON);
  assert.equal((info.json as { state: string }).state, 'RUNNING');
  assert.deepEqual((info.json as { backend_collection: object }).backend_collection, {});
  assert.deepEqual(readdirSync(r.sharedMnt), []);
  assert.ok(isMountpoint(r.sharedMnt));
});
