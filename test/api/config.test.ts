// PUT and GET /api/v1/config on a running dedicated daemon (spec nydusd-runtime.md 3.5.9), with the exact request
// of snapshotter-contract.md section 8 item 15, plus what issue 9 asks beyond the reference: an update is applied
// whole or not at all, and the credential never comes back in a response or a log line (the daemon logs at trace
// level to a file, which is searched for it).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { cleanupDaemons, removeDir, requireEnv, tempDir } from '../nydusd/helpers.js';
import { request, startApiDaemon, type ApiDaemon } from './helpers.js';

const SECRET = 'dXNlcjpwYXNz';
const ITEM15_BODY = `{"registry_auth":"${SECRET}"}`;

let d: ApiDaemon;
let logFile: string;

before(async () => {
  requireEnv();
  const dir = tempDir('api-config');
  logFile = path.join(dir, 'nydusd.log');
  d = await startApiDaemon(['--log-level', 'trace', '--log-file', logFile], { dir });
});

after(async () => {
  await cleanupDaemons();
  if (d) removeDir(d.dir);
});

/** One raw HTTP/1.1 request written byte for byte, as the snapshotter's Go client sends it; returns the status line and body. */
function rawRequest(sock: string, bytes: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(sock);
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => {
      got += c;
      const head = got.indexOf('\r\n\r\n');
      if (head < 0) return;
      const len = /\r\ncontent-length: (\d+)/i.exec(got.slice(0, head));
      const body = got.slice(head + 4);
      if (len && Buffer.byteLength(body) < Number(len[1])) return;
      s.destroy();
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(got)![1]), text: body });
    });
    s.on('error', reject);
    s.setTimeout(30_000, () => s.destroy(new Error('no answer within 30 s')));
    s.write(bytes);
  });
}

const get = async (url: string) => {
  const r = await request(d.sock, 'GET', url);
  assert.equal(r.status, 200, r.text);
  assert.ok(!r.text.includes(SECRET), `${url} shows the credential: ${r.text}`);
  return r.json;
};

test('item 15: PUT /api/v1/config?id=%2F with the registry_auth body (Content-Length 32) is 204; %2F42 too', async () => {
  assert.equal(Buffer.byteLength(ITEM15_BODY), 32);
  for (const id of ['%2F', '%2F42']) {
    const r = await rawRequest(d.sock, `PUT /api/v1/config?id=${id} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Go-http-client/1.1\r\n` +
      `Content-Length: 32\r\nContent-Type: application/json\r\nAccept-Encoding: gzip\r\n\r\n${ITEM15_BODY}`);
    assert.equal(r.status, 204, r.text);
    assert.equal(r.text, '');
  }
  // stored (and redacted when shown): the raw id works as the percent-encoded one does (spec 3.2)
  assert.deepEqual(await get('/api/v1/config?id=%2F'), { registry_auth: '<redacted>' });
  assert.deepEqual(await get('/api/v1/config?id=/42'), { registry_auth: '<redacted>' });
  assert.deepEqual(await get('/api/v1/config'), { '/:registry_auth': '<redacted>', '/42:registry_auth': '<redacted>' });
  assert.deepEqual(await get('/api/v1/config?id=%2Fnothing'), {});
});

test('an unknown key is a 500 JSON error naming it ({"bogus":"x"}); with a good key beside it, nothing is applied', async () => {
  const bogus = await request(d.sock, 'PUT', '/api/v1/config?id=%2F', { body: '{"bogus":"x"}' });
  assert.equal(bogus.status, 500, bogus.text);
  assert.deepEqual(bogus.json, {
    code: 'UNDEFINED',
    message: 'Configure: dynamic configuration of id "/": unknown key "bogus" (known: registry_auth, proxy_url, dragonfly_scheduler_endpoint); nothing was applied',
  });
  const mixed = await request(d.sock, 'PUT', '/api/v1/config?id=%2F', { body: '{"proxy_url":"http://proxy.example:65001","registry_auth":"bmV3Om5ldw==","bogus":"y"}' });
  assert.equal(mixed.status, 500, mixed.text);
  assert.match((mixed.json as { message: string }).message, /unknown key "bogus"/);
  assert.ok(!mixed.text.includes('bmV3Om5ldw=='), mixed.text);
  assert.deepEqual(await get('/api/v1/config?id=%2F'), { registry_auth: '<redacted>' });
});

test('a value that is not a string is a 400 and applies nothing; good keys all apply together', async () => {
  for (const body of ['{"registry_auth":5}', '{"proxy_url":"http://p:1","registry_auth":["x"]}', '{"proxy_url":null}', '["proxy_url"]']) {
    const r = await request(d.sock, 'PUT', '/api/v1/config?id=%2F', { body });
    assert.equal(r.status, 400, `${body}: ${r.text}`);
    assert.equal((r.json as { code: string }).code, 'UNDEFINED');
  }
  assert.deepEqual(await get('/api/v1/config?id=%2F'), { registry_auth: '<redacted>' });
  const ok = await request(d.sock, 'PUT', '/api/v1/config?id=%2F', { body: '{"proxy_url":"http://proxy.example:65001","dragonfly_scheduler_endpoint":"http://sched:8002"}' });
  assert.equal(ok.status, 204, ok.text);
  assert.deepEqual(await get('/api/v1/config?id=%2F'), {
    registry_auth: '<redacted>', proxy_url: 'http://proxy.example:65001', dragonfly_scheduler_endpoint: 'http://sched:8002',
  });
  // without id the values go under the empty id (3.5.9)
  assert.equal((await request(d.sock, 'PUT', '/api/v1/config', { body: '{"proxy_url":"http://q:2"}' })).status, 204);
  assert.equal((await get('/api/v1/config') as Record<string, string>)[':proxy_url'], 'http://q:2');
});

test('no log line holds a credential: the trace-level log file names the keys that changed, never their values', async () => {
  const r = await request(d.sock, 'PUT', '/api/v1/config?id=%2F', { body: `{"registry_auth":"${SECRET}","bogus":"${SECRET}"}` });
  assert.equal(r.status, 500, r.text);
  assert.ok(!r.text.includes(SECRET), r.text);
  const log = readFileSync(logFile, 'utf8');
  // the file is the daemon's log (the updates above are in it), at trace level
  assert.match(log, /^\[[^\]]+\] INFO dynamic configuration of id "\/" updated: registry_auth$/m);
  assert.match(log, /^\[[^\]]+\] INFO dynamic configuration of id "\/" updated: proxy_url, dragonfly_scheduler_endpoint$/m);
  assert.match(log, /^\[[^\]]+\] WARN .*unknown key "bogus"/m);
  for (const secret of [SECRET, 'bmV3Om5ldw==', 'user:pass']) {
    assert.ok(!log.includes(secret), `the log holds ${secret}`);
    assert.ok(!d.daemon.stderr.includes(secret) && !d.daemon.stdout.includes(secret), `the daemon's output holds ${secret}`);
  }
  // nor does the daemon's description (its configuration is shown with secrets removed)
  assert.ok(!(await request(d.sock, 'GET', '/api/v1/daemon')).text.includes(SECRET));
});
