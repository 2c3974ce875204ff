// snapshotter-contract.md section 8, B (items 6, 8, 9, 10): the HTTP transport as the Go client uses it (3.1).
// Items 7 and 8 (a silent connection survives 120 s; a keep-alive connection serves GETs far apart) are
// idle-120s.test.ts in this folder: its keep-alive connection answers a GET, idles 120 s, and answers again.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, test } from 'node:test';
import { mountAt } from '../../src/fuse/mountinfo.js';
import { cleanupDaemons, Daemon, requireEnv, run, sleep } from '../nydusd/helpers.js';
import {
  assertErrorBody, dedicatedArgv, exchange, GET_DAEMON, goRequest, isSocketFile, localfsConfig, mountBody, RawConnection, sharedArgv,
  SID, snapshotterRoot, spawnDaemon, waitUntilState, type RawResponse,
} from './harness.js';

requireEnv();
afterEach(cleanupDaemons);

function assertSuccess(r: RawResponse, what: string): void {
  assert.ok(r.status === 200 || r.status === 204, `${what}: the Go client takes only 200 and 204 as success, got ${r.status} ${r.body}`);
  if (r.status === 204) assert.equal(r.body, '', `${what}: a 204 with a body`);
  else assert.ok(r.json !== undefined, `${what}: a 200 body that is not JSON: ${r.body}`);
}

test('item 6: the socket appears with the final answer: the first GET says RUNNING and the mount is in mountinfo', async () => {
  const r = snapshotterRoot();
  const d = new Daemon(dedicatedArgv(r), r.mnt);
  // the snapshotter stats the socket path every 100 ms (3.3); the budget is its 100 attempts
  let first: RawResponse | undefined;
  let mountedAtFirst = false;
  for (let attempt = 0; attempt < 100 && !first; attempt++) {
    if (isSocketFile(r.sock)) {
      // only what is seen together with the socket counts (the mount may appear an instant later otherwise)
      mountedAtFirst = mountAt(r.mnt) !== undefined;
      first = await exchange(r.sock, GET_DAEMON);
    } else {
      assert.ok(d.running, `nydusd exited before creating its socket: ${d.stderr}`);
      await sleep(100);
    }
  }
  assert.ok(first, 'no API socket within the snapshotter 100 polls');
  assert.equal(first.status, 200, first.body);
  assert.equal((first.json as { state: string }).state, 'RUNNING', 'the very first answer must already be RUNNING');
  assert.ok(mountedAtFirst, 'the socket existed before the FUSE mount was in /proc/self/mountinfo');
});

test('item 9: the 3.1 requests replayed byte for byte, split across writes and pipelined; item 10: error bodies', async () => {
  const r = snapshotterRoot();
  const d = await spawnDaemon(sharedArgv(r), r.sharedMnt, r.sock);
  await waitUntilState(r.sock, 'RUNNING');
  const post = (sid: string) => goRequest('POST', `/api/v1/mount?mountpoint=%2F${sid}`, mountBody(r.bootstrap, localfsConfig(r, sid)));
  const del = (sid: string) => goRequest('DELETE', `/api/v1/mount?mountpoint=%2F${sid}`);

  // byte-exact, one write each
  const get = await exchange(r.sock, GET_DAEMON);
  assertSuccess(get, 'GET /api/v1/daemon');
  assert.equal(get.status, 200);
  assert.equal(Buffer.byteLength(get.body), Number(get.headers['content-length']));
  assertSuccess(await exchange(r.sock, post(SID)), 'POST /api/v1/mount');
  assert.ok(readdirSync(path.join(r.sharedMnt, SID)).length > 0);
  assertSuccess(await exchange(r.sock, del(SID)), 'DELETE /api/v1/mount without Content-Length');
  assert.equal(existsSync(path.join(r.sharedMnt, SID)), false);

  // headers and body in separate writes, 50 ms apart (the gap is the scenario, not a synchronisation)
  const bytes = post(SID);
  const split = bytes.indexOf('\r\n\r\n') + 4;
  assertSuccess(await exchange(r.sock, [bytes.slice(0, split), bytes.slice(split)], 50), 'POST with the body in a second write');
  assert.ok(readdirSync(path.join(r.sharedMnt, SID)).length > 0);
  const half = GET_DAEMON.length >> 1;
  assertSuccess(await exchange(r.sock, [GET_DAEMON.slice(0, half), GET_DAEMON.slice(half)], 50), 'GET split inside its headers');

  // pipelined on one connection: every request answered, in order. (The daemon may run pipelined requests
  // concurrently, as Node's HTTP server does: HTTP/1.1 orders the answers, not the work, and the Go client never
  // pipelines; so the effects are checked once every answer is in.)
  const c = await RawConnection.open(r.sock);
  await c.write(GET_DAEMON + del(SID) + post('43'));
  const answers = [await c.readResponse(), await c.readResponse(), await c.readResponse()];
  answers.forEach((a, i) => assertSuccess(a, `pipelined request ${i + 1}`));
  assert.deepEqual(answers.map((a) => a.status), [200, 204, 204]);
  assert.equal(c.closed, false, 'the keep-alive connection stays open after pipelined requests');
  await c.write(GET_DAEMON);
  const info = await c.readResponse();
  assert.deepEqual(Object.keys((info.json as { backend_collection: object }).backend_collection), ['/43'], 'the pipelined DELETE and POST took effect');
  c.close();

  // PUT without a body (Content-Length: 0), the 3.1 example: sendfd belongs to the failover issue, and until then
  // the daemon answers a clear 501 error rather than connect to no supervisor (DECISIONS.md 7)
  const sendfd = goRequest('PUT', '/api/v1/daemon/fuse/sendfd');
  assert.ok(sendfd.includes('\r\nContent-Length: 0\r\n'));
  const sent = await exchange(r.sock, sendfd);
  assert.equal(sent.status, 501, sent.body);
  assert.match(assertErrorBody(sent, 'sendfd').message, /not implemented yet: failover/);

  // item 10: error answers the Go client can decode
  const nope = await exchange(r.sock, goRequest('GET', '/api/v1/nope'));
  assert.equal(nope.status, 404);
  assertErrorBody(nope, 'GET /api/v1/nope');
  assertErrorBody(await exchange(r.sock, goRequest('GET', '/api/v1/daemon/start')), 'GET /api/v1/daemon/start');
  const brace = await exchange(r.sock, goRequest('POST', '/api/v1/mount', '{'));
  assert.equal(brace.status, 400);
  assertErrorBody(brace, 'POST /api/v1/mount without mountpoint and with the body "{"');
  assert.equal((await exchange(r.sock, GET_DAEMON)).status, 200, 'the daemon serves on after the bad requests');

  // a PUT without a body that succeeds: exit (204, then the process goes, 3.6)
  assertSuccess(await exchange(r.sock, goRequest('PUT', '/api/v1/daemon/exit')), 'PUT /api/v1/daemon/exit');
  const exit = await d.waitExit(10_000);
  assert.equal(exit.code, 0, exit.stderr);
  // exit leaves the FUSE mount for a successor that holds its fd (3.6); nobody does here, so it is detached
  assert.ok(mountAt(r.sharedMnt), 'PUT /api/v1/daemon/exit must not unmount');
  run('umount', ['-l', r.sharedMnt]);
});
