// Bad input to the management API on a real daemon (issue 9 acceptance "Bad input"; nydusd-runtime.md 3.1-3.3):
// malformed JSON, wrong types, unknown routes and methods, bodies of 10 MiB, empty bodies where one is required,
// wrong content types and absurd query strings. Each gets the reference's status with a one-line
// `{"code":"UNDEFINED","message":...}` body, and after each group the daemon still answers RUNNING and its mount
// still reads the sample tree byte for byte. The mountpoint cases of /api/v1/mount are in mount-bad-input.test.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { MAX_BODY_BYTES } from '../../src/api/server.js';
import { MAX_MESSAGE_CHARS } from '../../src/api/errors.js';
import { cleanupDaemons, removeDir, requireEnv } from '../nydusd/helpers.js';
import { assertErrorBody, assertServing, parseRaw, rawExchange, request, startApiDaemon, type ApiDaemon, type ApiResponse } from './helpers.js';

let d: ApiDaemon;

before(async () => {
  requireEnv();
  d = await startApiDaemon();
});

after(async () => {
  await cleanupDaemons();
  if (d) removeDir(d.dir);
});

interface Case {
  method: string;
  url: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
  status: number;
  message: RegExp;
}

async function expectError(c: Case): Promise<ApiResponse> {
  const what = `${c.method} ${c.url.slice(0, 80)} ${c.body === undefined ? '' : JSON.stringify(String(c.body).slice(0, 40))}`;
  const res = await request(d.sock, c.method, c.url, { body: c.body, headers: c.headers }).catch((e: Error) => {
    throw new Error(`${what}: ${e.message}`);
  });
  assert.equal(res.status, c.status, `${what}: ${res.text.slice(0, 300)}`);
  const e = assertErrorBody(res, what);
  assert.match(e.message, c.message, what);
  return res;
}

// Routes that take a body. The mount routes are included only with bodies that never reach their handler (not
// JSON, or the wrong JSON type), so that nothing is mounted here.
const BODY_ROUTES: { method: string; url: string }[] = [
  { method: 'PUT', url: '/api/v1/daemon' },
  { method: 'PUT', url: '/api/v2/daemon' },
  { method: 'PUT', url: '/api/v1/config?id=%2F' },
  { method: 'PUT', url: '/api/v2/blobs' },
  { method: 'POST', url: '/api/v1/mount?mountpoint=%2Fsub' },
  { method: 'PUT', url: '/api/v1/mount?mountpoint=%2Fsub' },
];

test('malformed JSON bodies: 400 "ParseBody: the body is not valid JSON" on every route that takes a body', async () => {
  const nested = '['.repeat(40_000);
  const bodies: (string | Buffer)[] = [
    '{',
    '{"log_level":}',
    '{"log_level":"info"',
    "{'log_level':'info'}",
    '{log_level:"info"}',
    '{"log_level":"info",}',
    '{"log_level":"info"} {"log_level":"debug"}',
    '{"log_level":"info"}x',
    'NaN',
    'undefined',
    '"unterminated',
    '   ',
    '\ufeff{"log_level":"info"}',
    Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x00, 0x7d]),
    Buffer.from([0]),
    nested,
  ];
  for (const r of BODY_ROUTES) {
    for (const body of bodies) {
      await expectError({ ...r, body, status: 400, message: /^ParseBody: the body is not valid JSON/ });
    }
  }
  await assertServing(d, 'after malformed JSON');
});

test('wrong types (schema violations): 400 "ParseBody: body ..." naming the field', async () => {
  const cases: Case[] = [];
  for (const url of ['/api/v1/daemon', '/api/v2/daemon']) {
    for (const v of ['5', 'null', 'true', '["info"]', '{"level":"info"}', '1e309']) {
      cases.push({ method: 'PUT', url, body: `{"log_level":${v}}`, status: 400, message: /^ParseBody: body \/log_level must be string/ });
    }
    for (const body of ['[]', '[{"log_level":"info"}]', '"info"', '5', 'null', 'true']) {
      cases.push({ method: 'PUT', url, body, status: 400, message: /^ParseBody: body must be object/ });
    }
    cases.push({ method: 'PUT', url, body: '{}', status: 400, message: /^ParseBody: body must have required property 'log_level'/ });
    cases.push({ method: 'PUT', url, body: '{"__proto__":{"log_level":"info"}}', status: 400, message: /^ParseBody: body must have required property 'log_level'/ });
  }
  cases.push(
    { method: 'PUT', url: '/api/v1/config?id=%2F', body: '{"registry_auth":5}', status: 400, message: /^ParseBody: body \/registry_auth must be string/ },
    { method: 'PUT', url: '/api/v1/config?id=%2F', body: '{"registry_auth":null}', status: 400, message: /^ParseBody: body \/registry_auth must be string/ },
    { method: 'PUT', url: '/api/v1/config', body: '["registry_auth"]', status: 400, message: /^ParseBody: body must be object/ },
    { method: 'PUT', url: '/api/v2/blobs', body: '{"type":"bootstrap"}', status: 400, message: /^ParseBody: body must have required property 'id'/ },
    { method: 'PUT', url: '/api/v2/blobs', body: '{"type":"tarball","id":"b"}', status: 400, message: /^ParseBody: body \/type must be equal to one of the allowed values/ },
    { method: 'PUT', url: '/api/v2/blobs', body: '{"type":"bootstrap","id":7}', status: 400, message: /^ParseBody: body \/id must be string/ },
    // a MountCmd whose config is an object (the reference wants the configuration as a string) is refused before
    // anything is built
    { method: 'POST', url: '/api/v1/mount?mountpoint=%2Fsub', body: '{"fs_type":"rafs","source":"/x","config":{}}', status: 400, message: /^ParseBody: body \/config must be string/ },
    { method: 'POST', url: '/api/v1/mount?mountpoint=%2Fsub', body: '{"fs_type":"rafs","source":5,"config":"{}"}', status: 400, message: /^ParseBody: body \/source must be string/ },
    { method: 'POST', url: '/api/v1/mount?mountpoint=%2Fsub', body: '{"fs_type":"rafs","source":"/x","config":"{}","prefetch_files":"/a"}', status: 400, message: /^ParseBody: body \/prefetch_files must be array/ },
    { method: 'PUT', url: '/api/v1/mount?mountpoint=%2Fsub', body: '{"fs_type":"rafs","source":"/x","config":"{}","prefetch_files":[1]}', status: 400, message: /^ParseBody: body \/prefetch_files\/0 must be string/ },
    { method: 'PUT', url: '/api/v1/mount?mountpoint=%2Fsub', body: '{"fs_type":"rafs","config":"{}"}', status: 400, message: /^ParseBody: body must have required property 'source'/ },
  );
  for (const c of cases) await expectError(c);
  await assertServing(d, 'after wrong types');
});

test('unknown routes are 404 NoRoute; documented paths with a method they do not serve are 400 BadRequest', async () => {
  const noRoute = [
    '/', '/api', '/api/v1', '/api/v1/', '/api/v3/daemon', '/API/v1/daemon', '/api/v1/daemon/', '/api/v1/daemon//events',
    '/api/v1/daemon;x', '/api/v1/daemon%00', '/api/v1/./daemon', '/api/v1/../v1/daemon', '/api/v1/daemon/events/x',
    '/api/v1/metrics/nope', '/api/v1/mount/x', `/api/v1/${'a/'.repeat(2000)}`, '/favicon.ico', '/api/v2/blobs/x',
  ];
  for (const url of noRoute) {
    for (const method of ['GET', 'PUT', 'POST', 'DELETE', 'PATCH']) {
      // a body is irrelevant for an unknown route: the path decides first
      await expectError({ method, url, ...(method === 'GET' ? {} : { body: '{}' }), status: 404, message: /^NoRoute$/ });
    }
  }
  const wrongMethod: [string, string][] = [
    ['POST', '/api/v1/daemon'], ['DELETE', '/api/v1/daemon'], ['PATCH', '/api/v1/daemon'], ['OPTIONS', '/api/v1/daemon'],
    ['GET', '/api/v1/daemon/exit'], ['POST', '/api/v1/daemon/exit'], ['DELETE', '/api/v1/daemon/exit'],
    ['GET', '/api/v1/daemon/start'], ['PUT', '/api/v1/daemon/events'], ['GET', '/api/v1/daemon/fuse/sendfd'],
    ['PUT', '/api/v1/metrics'], ['DELETE', '/api/v1/metrics/inflight'], ['GET', '/api/v1/mount?mountpoint=%2F'],
    ['PATCH', '/api/v1/mount?mountpoint=%2F'], ['POST', '/api/v1/config'], ['POST', '/api/v2/blobs'], ['DELETE', '/api/v2/daemon'],
    ['TRACE', '/api/v1/daemon'], ['PROPFIND', '/api/v1/daemon'], ['MKCOL', '/api/v1/daemon/exit'],
  ];
  for (const [method, url] of wrongMethod) {
    await expectError({ method, url, status: 400, message: new RegExp(`^BadRequest: ${method} is not served on `) });
  }
  // HEAD: the same 400, without a body (HTTP forbids one)
  const head = await request(d.sock, 'HEAD', '/api/v1/daemon');
  assert.equal(head.status, 400);
  assert.equal(head.text, '');
  // methods the HTTP parser does not know, or in lower case (methods are case-sensitive): 400 from the HTTP layer,
  // with the error shape too, and the connection ends
  for (const method of ['get', 'Get', 'FOO', 'G3T', 'GETT', 'PU T']) {
    const raw = parseRaw(await rawExchange(d.sock, `${method} /api/v1/daemon HTTP/1.1\r\nHost: x\r\n\r\n`));
    assert.equal(raw.status, 400, `${method}: ${raw.text}`);
    assert.match(assertErrorBody(raw, method).message, /^BadRequest: malformed HTTP request \(HPE_/);
  }
  await assertServing(d, 'after unknown routes and methods');
});

test('10 MiB bodies: 400 "larger than 51200 bytes" whether framed by Content-Length or chunked; the limit is exact', async () => {
  const tenMiB = 10 << 20;
  const tooLarge = new RegExp(`^BadRequest: the request body is larger than ${MAX_BODY_BYTES} bytes$`);
  for (const r of BODY_ROUTES) {
    // Content-Length: refused from the header; the body is read and dropped, and the connection serves the next
    // request (written right after the body, as a pipelining client would)
    const framed = await twoAnswers(`${r.method} ${r.url} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${tenMiB}\r\n\r\n`, Buffer.alloc(tenMiB, 0x20));
    assert.equal(framed[0].status, 400, `${r.method} ${r.url}: ${framed[0].text}`);
    assert.match(assertErrorBody(framed[0], r.url).message, tooLarge);
    // chunked: counted while it is read, refused once past the limit, the rest dropped to its last chunk
    const chunk = Buffer.alloc(1 << 20, 0x20);
    const chunks = Buffer.concat(Array.from({ length: 10 }, () => Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')])));
    const chunked = await twoAnswers(`${r.method} ${r.url} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`, Buffer.concat([chunks, Buffer.from('0\r\n\r\n')]));
    assert.equal(chunked[0].status, 400, `${r.method} ${r.url} chunked: ${chunked[0].text}`);
    assert.match(assertErrorBody(chunked[0], `${r.url} chunked`).message, tooLarge);
  }
  // a route that takes no body: refused as such, whatever its size
  const noBody = parseRaw(await rawExchange(d.sock, `GET /api/v1/daemon HTTP/1.1\r\nHost: x\r\nContent-Length: ${tenMiB}\r\n\r\n`, Buffer.alloc(tenMiB, 0x20)));
  assert.equal(noBody.status, 400);
  assert.match(assertErrorBody(noBody, 'GET with 10 MiB').message, /^BadRequest: GET \/api\/v1\/daemon takes no body$/);
  // the boundary: a valid body padded to exactly the limit is served, one byte more is refused
  const json = '{"log_level":"info"}';
  const exact = json + ' '.repeat(MAX_BODY_BYTES - json.length);
  assert.equal((await request(d.sock, 'PUT', '/api/v1/daemon', { body: exact })).status, 204);
  await expectError({ method: 'PUT', url: '/api/v1/daemon', body: `${exact} `, status: 400, message: tooLarge });
  // a Content-Length that lies (shorter than what follows, or not a number): the HTTP layer's 400
  const lies = parseRaw(await rawExchange(d.sock, 'PUT /api/v1/daemon HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n{}'));
  assert.equal(lies.status, 400);
  assertErrorBody(lies, 'Content-Length: ten');
  const both = parseRaw(await rawExchange(d.sock, 'PUT /api/v1/daemon HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n'));
  assert.equal(both.status, 400, both.text);
  assertErrorBody(both, 'Content-Length with Transfer-Encoding');
  await assertServing(d, 'after 10 MiB bodies');
});

/**
 * Writes `head` and `body` on one connection, then `GET /api/v1/daemon/events`, and returns both answers: the
 * second shows the connection survived the first.
 */
function twoAnswers(head: string, body: Buffer): Promise<[ApiResponse, ApiResponse]> {
  return new Promise((resolve, reject) => {
    const s = net.connect(d.sock);
    const answers: ApiResponse[] = [];
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no two answers within 30 s to ${JSON.stringify(head)}: ${got.slice(0, 500)}`));
    }, 30_000);
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => {
      got += chunk;
      for (;;) {
        const end = got.indexOf('\r\n\r\n');
        const len = /content-length: (\d+)/i.exec(got.slice(0, end));
        if (end < 0 || !len || got.length < end + 4 + Number(len[1])) return;
        answers.push(parseRaw(got.slice(0, end + 4 + Number(len[1]))));
        got = got.slice(end + 4 + Number(len[1]));
        if (answers.length === 2) {
          clearTimeout(timer);
          s.destroy();
          resolve([answers[0]!, answers[1]!]);
          return;
        }
      }
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${JSON.stringify(head)}: ${e.message} after ${answers.length} answers (${got.slice(0, 300)})`));
    });
    s.write(head);
    s.write(body);
    s.write('GET /api/v1/daemon/events HTTP/1.1\r\nHost: x\r\n\r\n', () => undefined);
  }).then((a) => {
    const [, next] = a as [ApiResponse, ApiResponse];
    assert.equal(next.status, 200, `the request after the refused body: ${next.text}`);
    assert.equal((next.json as { max_errors: number }).max_errors, 500);
    return a as [ApiResponse, ApiResponse];
  });
}

test('no body where one is required: 400 "needs a JSON body" (no Content-Length, Content-Length: 0, chunked and empty)', async () => {
  for (const r of BODY_ROUTES) {
    const needs = new RegExp(`^BadRequest: ${r.method} ${r.url.split('?')[0]!.replace(/\//g, '\\/')} needs a JSON body$`);
    await expectError({ ...r, status: 400, message: needs });
    await expectError({ ...r, headers: { 'Content-Length': '0' }, status: 400, message: needs });
    await expectError({ ...r, body: '', status: 400, message: needs });
    const chunked = parseRaw(await rawExchange(d.sock, `${r.method} ${r.url} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`));
    assert.equal(chunked.status, 400, chunked.text);
    assert.match(assertErrorBody(chunked, `${r.url} empty chunked`).message, needs);
  }
  await assertServing(d, 'after empty bodies');
});

test('content types: a JSON body is JSON whatever its label (the reference is stricter; lenient is safe), anything else is 400', async () => {
  // valid JSON under another label is served (spec 3.1: being more lenient than the reference is safe)
  for (const type of ['text/plain', 'application/json; charset=utf-8', 'text/html', 'application/octet-stream']) {
    const res = await request(d.sock, 'PUT', '/api/v1/daemon', { body: '{"log_level":"info"}', headers: { 'Content-Type': type } });
    assert.equal(res.status, 204, `Content-Type ${JSON.stringify(type)}: ${res.text}`);
  }
  // what a form or multipart client sends is not JSON
  const cases: [string, string][] = [
    ['application/x-www-form-urlencoded', 'log_level=debug'],
    ['multipart/form-data; boundary=XX', '--XX\r\nContent-Disposition: form-data; name="log_level"\r\n\r\ndebug\r\n--XX--\r\n'],
    ['application/xml', '<log_level>debug</log_level>'],
    ['application/yaml', 'log_level: debug'],
  ];
  for (const [type, body] of cases) {
    await expectError({ method: 'PUT', url: '/api/v1/daemon', body, headers: { 'Content-Type': type }, status: 400, message: /^ParseBody: the body is not valid JSON/ });
  }
  // a Content-Type that is no media type at all
  for (const type of ['', 'x', ';', 'application/']) {
    await expectError({ method: 'PUT', url: '/api/v1/daemon', body: '{"log_level":"info"}', headers: { 'Content-Type': type }, status: 400, message: /^BadRequest: Unsupported Media Type$/ });
  }
  // a Content-Encoding nothing decodes: the bytes are not JSON either
  await expectError({ method: 'PUT', url: '/api/v1/daemon', body: Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]), headers: { 'Content-Encoding': 'gzip' }, status: 400, message: /^ParseBody|^BadRequest/ });
  await assertServing(d, 'after wrong content types');
});

test('absurd query strings: clear errors, bounded messages, the first value of a key wins', async () => {
  const backend = '/api/v1/daemon/backend';
  const missing = /^QueryString: query string must have required property 'mountpoint'$/;
  const notMounted = /^FsBackendInfo: object or filesystem doesn't exist: nothing is mounted at /;
  await expectError({ method: 'GET', url: `${backend}?`, status: 400, message: missing });
  await expectError({ method: 'GET', url: `${backend}?mountpoint`, status: 500, message: notMounted });
  await expectError({ method: 'GET', url: `${backend}?Mountpoint=%2F`, status: 400, message: missing });
  await expectError({ method: 'GET', url: `${backend}?${Array.from({ length: 1500 }, (_, i) => `k${i}=v`).join('&')}`, status: 400, message: missing });
  await expectError({ method: 'GET', url: `${backend}?${'&'.repeat(8000)}`, status: 400, message: missing });
  for (const v of ['%zz', '%', '%2', '%00', '%E0%A4%A', '%C0%AF', '%FF%FE', '/%2e%2e/', '..', '%0Aline', '\u00e9'.repeat(10), '%F0%9F%92%A9']) {
    await expectError({ method: 'GET', url: `${backend}?mountpoint=${encodeURI(v).replace(/%25/g, '%')}`, status: 500, message: notMounted });
  }
  // a value near the HTTP parser's header limit: the message quotes only the start of it
  const long = await expectError({ method: 'GET', url: `${backend}?mountpoint=${'a'.repeat(15_000)}`, status: 500, message: notMounted });
  assert.ok((long.json as { message: string }).message.length < MAX_MESSAGE_CHARS + 100, `the message echoes all the input: ${long.text.length} bytes`);
  // beyond that limit, the HTTP layer's 400
  const huge = parseRaw(await rawExchange(d.sock, `GET ${backend}?mountpoint=${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`));
  assert.equal(huge.status, 400);
  assert.match(assertErrorBody(huge, '100 kB query').message, /^BadRequest: malformed HTTP request \(HPE_HEADER_OVERFLOW\)$/);
  // duplicates: the first occurrence wins (spec 3.2), so these answer as the first says
  assert.equal((await request(d.sock, 'GET', `${backend}?mountpoint=%2F&mountpoint=%2Fnothing`)).status, 200);
  await expectError({ method: 'GET', url: `${backend}?mountpoint=%2Fnothing&mountpoint=%2F`, status: 500, message: notMounted });
  // unknown keys are ignored on routes without parameters
  assert.equal((await request(d.sock, 'GET', `/api/v1/daemon?x=1&y&__proto__=2&constructor=3&${'z'.repeat(1000)}=4`)).status, 200);
  assert.equal((await request(d.sock, 'GET', '/api/v1/daemon/backend?__proto__=x&mountpoint=/')).status, 200);
  await assertServing(d, 'after absurd queries');
});

test('HTTP oddities the fuzz test found: each gets one answer in the error shape, or is served', async () => {
  // no Host header (a Unix socket has no host): served, not node's bare 400
  const noHost = parseRaw(await rawExchange(d.sock, 'GET /api/v1/daemon/events HTTP/1.1\r\n\r\n'));
  assert.equal(noHost.status, 200, noHost.text);
  // an Expect other than 100-continue: ignored, not node's bare 417
  const expect = await request(d.sock, 'GET', '/api/v1/daemon/events', { headers: { Expect: 'something' } });
  assert.equal(expect.status, 200, expect.text);
  // a path that does not percent-decode: "bad URI", 400 in the error shape, not fastify's own body
  for (const url of ['/api/v1/daemon%zz', '/%', '/api/v1/%E0%A4%A']) {
    await expectError({ method: 'GET', url, status: 400, message: /^BadRequest: .*not a valid url component/ });
  }
  // a transfer coding other than chunked: refused from the headers, once (not a second answer when the parser
  // then fails on the body), and the connection closed
  for (const head of ['GET /api/v1/daemon HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n', 'PUT /api/v1/daemon HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n{"log_level":"info"}']) {
    const all = await new Promise<string>((resolve, reject) => {
      const s = net.connect(d.sock);
      let got = '';
      const timer = setTimeout(() => reject(new Error(`no close within 10 s: ${got}`)), 10_000);
      s.setEncoding('utf8');
      s.on('data', (c: string) => (got += c));
      s.on('close', () => {
        clearTimeout(timer);
        resolve(got);
      });
      s.end(head);
    });
    assert.equal(all.match(/HTTP\/1\.1 /g)?.length, 1, all);
    const res = parseRaw(all);
    assert.equal(res.status, 400);
    assert.match(assertErrorBody(res, head).message, /^BadRequest: (Transfer-Encoding ".*": bodies are framed by Content-Length or chunked only|malformed HTTP request \(HPE_INVALID_TRANSFER_ENCODING\))$/);
  }
  await assertServing(d, 'after HTTP oddities');
});
