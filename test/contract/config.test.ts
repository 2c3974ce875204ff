// snapshotter-contract.md section 8 item 15: the credential renewal of 2.4, replayed with the snapshotter's bytes:
// `PUT /api/v1/config?id=%2F<SID>` (shared) or `?id=%2F` (dedicated) with `{"registry_auth":"<base64>"}`, and an
// unknown key refused with an error body. The renewed secret never shows in an answer or the log (issue 9).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { afterEach, test } from 'node:test';
import { cleanupDaemons, requireEnv } from '../nydusd/helpers.js';
import {
  assertErrorBody, dedicatedArgv, exchange, goRequest, localfsConfig, mountBody, sharedArgv, SID, snapshotterRoot, spawnDaemon,
  waitUntilState, type Root,
} from './harness.js';

requireEnv();
afterEach(cleanupDaemons);

const AUTH = '{"registry_auth":"dXNlcjpwYXNz"}';

async function renewal(r: Root, id: string): Promise<void> {
  const bytes = goRequest('PUT', `/api/v1/config?id=${id}`, AUTH);
  assert.ok(bytes.includes('\r\nContent-Length: 32\r\nContent-Type: application/json\r\n'), 'the 2.4 request as documented');
  const put = await exchange(r.sock, bytes);
  assert.equal(put.status, 204, put.body);
  assert.equal(put.body, '');

  const bogus = await exchange(r.sock, goRequest('PUT', `/api/v1/config?id=${id}`, '{"bogus":"x"}'));
  assertErrorBody(bogus, 'PUT /api/v1/config with an unknown key');

  // the renewed key is stored (shown redacted), and the credential itself is nowhere
  const got = await exchange(r.sock, goRequest('GET', `/api/v1/config?id=${id}`));
  assert.equal(got.status, 200, got.body);
  assert.equal((got.json as Record<string, unknown>).registry_auth, '<redacted>', got.body);
  assert.ok(!got.body.includes('dXNlcjpwYXNz'), 'GET /api/v1/config shows the credential');
  assert.ok(!got.body.includes('bogus'), 'the refused key was stored');
  assert.ok(!readFileSync(r.logFile, 'utf8').includes('dXNlcjpwYXNz'), 'the log shows the credential');
}

test('item 15: PUT /api/v1/config?id=%2F42 on a shared daemon renews registry_auth; an unknown key is refused', async () => {
  const r = snapshotterRoot();
  await spawnDaemon(sharedArgv(r), r.sharedMnt, r.sock);
  await waitUntilState(r.sock, 'RUNNING');
  const posted = await exchange(r.sock, goRequest('POST', `/api/v1/mount?mountpoint=%2F${SID}`, mountBody(r.bootstrap, localfsConfig(r, SID))));
  assert.equal(posted.status, 204, posted.body);
  await renewal(r, `%2F${SID}`);
});

test('item 15: PUT /api/v1/config?id=%2F on a dedicated daemon renews registry_auth; an unknown key is refused', async () => {
  const r = snapshotterRoot();
  await spawnDaemon(dedicatedArgv(r), r.mnt, r.sock);
  await waitUntilState(r.sock, 'RUNNING');
  await renewal(r, '%2F');
});
