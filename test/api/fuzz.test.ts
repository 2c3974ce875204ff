// A seeded fuzz test of the management API on a live daemon (issue 9 acceptance "Bad input"): a few thousand random
// and mutated requests, over node's HTTP client and over raw sockets (random methods, paths near the documented
// ones, mutated valid bodies, random bytes, truncated requests, bogus headers). It asserts:
// - no crash: the daemon process lives, and between batches GET /api/v1/daemon answers RUNNING;
// - no hang: every request is answered, or its connection closed, within REQUEST_BOUND_MS (raw requests half-close
//   the connection after their bytes, since the server waits on an incomplete request forever by design, spec 3.1);
// - no 2xx for garbage, where garbage is only what can never be valid: a path that no document has, a body that is
//   not JSON on a route that needs one, a body on a route that takes none, a log level that is none of the six,
//   bytes without an HTTP request line;
// - every error answer is exactly {"code":"UNDEFINED","message":<one line>} (spec 3.3);
// - at the end the daemon answers RUNNING and the mount reads the sample tree byte for byte.
// Excluded, because they would legitimately stop or change the daemon: PUT /daemon/exit, /mount, sendfd and
// takeover (any request whose bytes name them). Reproduce a run with NYDUS_FUZZ_SEED=<seed> (printed at the start);
// NYDUS_FUZZ_COUNT sets the number of requests (default 3000).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { loadApiRoutes, type ApiRoute } from '../../src/api/documents.js';
import { prng } from '../helpers/prng.js';
import { cleanupDaemons, removeDir, requireEnv } from '../nydusd/helpers.js';
import { assertErrorBody, assertServing, request, startApiDaemon, type ApiDaemon, type ApiResponse } from './helpers.js';

const SEED = process.env.NYDUS_FUZZ_SEED !== undefined ? Number(process.env.NYDUS_FUZZ_SEED) : Math.floor(Math.random() * 2 ** 32);
const COUNT = Number(process.env.NYDUS_FUZZ_COUNT ?? 3000);
/** A generous bound against hangs (the daemon answers in a few milliseconds). */
const REQUEST_BOUND_MS = 10_000;
const IN_FLIGHT = 8;
const BATCH = 250;

/** Request bytes that name one of these are never sent (see the header comment). */
const FORBIDDEN = /exit|\/mount(?!point)|sendfd|takeover/i;
const LEVELS = ['off', 'error', 'warn', 'info', 'debug', 'trace'];
/** A valid body for each operation that takes one (the mount operations are excluded). */
const VALID_BODIES: Record<string, unknown> = {
  configureDaemon: { log_level: 'info' },
  configureDaemonV2: { log_level: 'warn' },
  updateDynamicConfig: { registry_auth: 'dXNlcjpwYXNz' },
  createBlobObject: { type: 'bootstrap', id: 'b', domain_id: 'd', config_v2: {} },
};
const QUERY_KEYS = ['mountpoint', 'id', 'latest', 'domain_id', 'blob_id', 'x', '__proto__', ''];
const QUERY_VALUES = ['/', '%2F', '/nothing', 'true', 'false', '', '%', '%zz', '%00', '..', '/../x', 'a'.repeat(3000), '\u00e9', '%F0%9F%92%A9', '+', '&', '='];
const TOKENS = ['%', '%00', '%2e', '..', '//', '\\', '"', "'", '{', '}', '[', ']', ',', ':', 'null', '-1', '1e999', '\u0000', '\r\n', ' ', '\t', '#', '?', '&', '\u00ff', '\ud83d\ude00'];
const CONTENT_TYPES = ['application/json', 'text/plain', 'application/json; charset=utf-8', 'text/html', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', '', '*/*', 'application/json, text/plain', ';;;', 'a'.repeat(500)];
const BOGUS_HEADERS: [string, string][] = [
  ['Expect', '100-continue'], ['Expect', 'something'], ['Connection', 'close'], ['Connection', 'upgrade'], ['Upgrade', 'websocket'],
  ['Transfer-Encoding', 'gzip'], ['Content-Encoding', 'br'], ['Accept', 'nothing/*'], ['X-Long', 'x'.repeat(8000)], ['Host', ''],
  ['Authorization', 'Basic Zm9vOmJhcg=='], ['Cookie', 'a=b; c'], ['Range', 'bytes=0-1'], ['If-None-Match', '*'], ['Content-Language', '\u00e9'],
];

interface Sent {
  /** what was sent, for the failure message */
  describe: string;
  /** the answer must not be 2xx, and why */
  garbage?: string;
}

type Rng = () => number;

let routes: ApiRoute[];
let documented: Set<string>;
let d: ApiDaemon;

before(async () => {
  requireEnv();
  routes = loadApiRoutes();
  documented = new Set(routes.map((r) => r.path));
  d = await startApiDaemon();
});

after(async () => {
  await cleanupDaemons();
  if (d) removeDir(d.dir);
});

const int = (rng: Rng, n: number): number => Math.floor(rng() * n);
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[int(rng, xs.length)]!;

function randomBytes(rng: Rng, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = int(rng, 256);
  return b;
}

function randomText(rng: Rng, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += rng() < 0.8 ? String.fromCharCode(32 + int(rng, 95)) : pick(rng, TOKENS);
  return s;
}

/** One random edit of a string: flip, delete, insert, duplicate, or splice in a token. */
function mutate(rng: Rng, s: string): string {
  const at = int(rng, s.length + 1);
  switch (int(rng, 6)) {
    case 0:
      return s.slice(0, at) + String.fromCharCode(int(rng, 128)) + s.slice(at + 1);
    case 1:
      return s.slice(0, at) + s.slice(at + 1 + int(rng, 8));
    case 2:
      return s.slice(0, at) + randomText(rng, 1 + int(rng, 6)) + s.slice(at);
    case 3:
      return s.slice(0, at) + s.slice(at, at + int(rng, 16)) + s.slice(at);
    case 4:
      return s.slice(0, at) + pick(rng, TOKENS) + s.slice(at);
    default:
      return s.toUpperCase() === s ? s.toLowerCase() : s.slice(0, at) + s.slice(at).toUpperCase();
  }
}

function randomJson(rng: Rng, depth = 0): unknown {
  switch (int(rng, depth > 3 ? 5 : 8)) {
    case 0:
      return null;
    case 1:
      return rng() < 0.5;
    case 2:
      return pick(rng, [0, -1, 1.5, 2 ** 53, -(2 ** 63), 1e308]);
    case 3:
      return pick(rng, LEVELS.map((l) => (rng() < 0.5 ? l.toUpperCase() : l)));
    case 4:
      return randomText(rng, int(rng, 40));
    case 5:
      return Array.from({ length: int(rng, 4) }, () => randomJson(rng, depth + 1));
    default:
      return Object.fromEntries(Array.from({ length: int(rng, 4) }, () => [pick(rng, ['log_level', 'registry_auth', 'type', 'id', '__proto__', 'constructor', randomText(rng, 5)]), randomJson(rng, depth + 1)]));
  }
}

/** A JSON-level mutation of a valid body: a value replaced, a key added or removed, or the whole body replaced. */
function mutateJson(rng: Rng, valid: unknown): unknown {
  const o = { ...(valid as Record<string, unknown>) };
  const keys = Object.keys(o);
  switch (int(rng, 4)) {
    case 0:
      o[pick(rng, keys)] = randomJson(rng);
      return o;
    case 1:
      delete o[pick(rng, keys)];
      return o;
    case 2:
      o[pick(rng, ['__proto__', 'constructor', 'log_level', randomText(rng, 4)])] = randomJson(rng);
      return o;
    default:
      return randomJson(rng);
  }
}

function isJson(s: string | Buffer): boolean {
  try {
    JSON.parse(s.toString());
    return true;
  } catch {
    return false;
  }
}

/** The documented path the server would route a target to (absolute form, query and fragment dropped, decoded once). */
function routedPath(target: string): string {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(target);
  let p = (m ? target.slice(m[0].length) : target).split(/[?#]/)[0]!;
  try {
    p = decodeURIComponent(p);
  } catch {
    // left as is: an undecodable path is matched as it is, or not at all
  }
  return p;
}

/** Whether any reading of these bytes names a route excluded from fuzzing. */
function forbidden(...parts: (string | Buffer | undefined)[]): boolean {
  return parts.some((p) => {
    if (p === undefined) return false;
    const s = Buffer.isBuffer(p) ? p.toString('latin1') : p;
    let decoded = s;
    try {
      decoded = decodeURIComponent(s);
    } catch {
      decoded = s.replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    }
    return FORBIDDEN.test(s) || FORBIDDEN.test(decoded) || FORBIDDEN.test(Buffer.from(s, 'latin1').toString('utf8'));
  });
}

function randomPath(rng: Rng): string {
  const base = pick(rng, routes).path;
  switch (int(rng, 5)) {
    case 0:
      return base;
    case 1:
    case 2:
      return mutate(rng, base);
    case 3:
      return base + pick(rng, ['/', '//', '/x', '/..', '/.', '%2F', ';x', '%00', `/${randomText(rng, 5)}`]);
    default:
      return `/${randomText(rng, int(rng, 30)).replace(/[\s]/g, '')}`;
  }
}

function randomQuery(rng: Rng): string {
  if (rng() < 0.3) return '';
  const n = 1 + int(rng, rng() < 0.05 ? 500 : 4);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(`${pick(rng, QUERY_KEYS)}=${rng() < 0.7 ? pick(rng, QUERY_VALUES) : encodeURIComponent(randomText(rng, 8))}`);
  return `?${parts.join('&')}`;
}

interface HttpCase extends Sent {
  method: string;
  url: string;
  body?: string | Buffer;
  headers: Record<string, string>;
}

/** A request for node's HTTP client (well-formed HTTP, anything inside it). */
function httpCase(rng: Rng): HttpCase {
  const method = rng() < 0.8 ? pick(rng, ['GET', 'PUT', 'POST', 'DELETE']) : pick(rng, ['PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'PROPFIND', 'M-SEARCH']);
  const url = randomPath(rng) + randomQuery(rng);
  const path = routedPath(url);
  const route = routes.find((r) => r.path === path && r.method === method);
  let body: string | Buffer | undefined;
  const valid = route ? VALID_BODIES[route.operationId] : pick(rng, Object.values(VALID_BODIES));
  switch (int(rng, 6)) {
    case 0:
      body = undefined;
      break;
    case 1:
      body = JSON.stringify(valid ?? randomJson(rng));
      break;
    case 2:
      body = JSON.stringify(mutateJson(rng, valid ?? {}));
      break;
    case 3:
      body = mutate(rng, JSON.stringify(valid ?? {}));
      break;
    case 4:
      body = randomBytes(rng, int(rng, 200));
      break;
    default:
      body = JSON.stringify(randomJson(rng));
  }
  if (method === 'HEAD' || (method === 'GET' && rng() < 0.7)) body = undefined;
  const headers: Record<string, string> = {};
  if (body !== undefined) {
    headers['Content-Type'] = rng() < 0.6 ? 'application/json' : pick(rng, CONTENT_TYPES);
    headers['Content-Length'] = String(Buffer.byteLength(body));
  }
  if (rng() < 0.2) {
    const [k, v] = pick(rng, BOGUS_HEADERS);
    headers[k] = v;
  }
  const sent: HttpCase = { method, url, body, headers, describe: `${method} ${url.slice(0, 200)} headers ${JSON.stringify(headers).slice(0, 200)} body ${JSON.stringify(body?.toString().slice(0, 200))}` };
  const announced = body !== undefined && Buffer.byteLength(body) > 0;
  if (!documented.has(path)) sent.garbage = `no document has the path ${JSON.stringify(path)}`;
  else if (route && route.body === undefined && announced) sent.garbage = 'a body on a route that takes none';
  else if (route?.bodyRequired && announced && !isJson(body!)) sent.garbage = 'a body that is not JSON on a route that needs one';
  else if (route && /^configureDaemon/.test(route.operationId) && announced && isJson(body!)) {
    const level = (JSON.parse(body!.toString()) as { log_level?: unknown } | null)?.log_level;
    if (typeof level !== 'string' || !LEVELS.includes(level.toLowerCase())) sent.garbage = 'no log level of the six';
  }
  return sent;
}

interface RawCase extends Sent {
  bytes: Buffer;
}

/** Bytes for a raw socket: broken request lines and headers, truncated requests, random bytes, pipelines. */
function rawCase(rng: Rng): RawCase {
  const h = httpCase(rng);
  const headerLines = Object.entries(h.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  const wellFormed = Buffer.concat([Buffer.from(`${h.method === 'HEAD' ? 'GET' : h.method} ${h.url} HTTP/1.1\r\nHost: x\r\n${headerLines}\r\n`, 'utf8'), Buffer.from(h.body ?? '')]);
  let bytes: Buffer;
  let garbage: string | undefined;
  switch (int(rng, 8)) {
    case 0:
      bytes = randomBytes(rng, 1 + int(rng, 300));
      break;
    case 1:
      // truncated anywhere (the connection is then half-closed)
      bytes = wellFormed.subarray(0, int(rng, wellFormed.length));
      break;
    case 2:
      bytes = Buffer.from(mutate(rng, mutate(rng, wellFormed.toString('latin1'))), 'latin1');
      break;
    case 3:
      // a broken request line: the method, target or version mangled
      bytes = Buffer.from(
        pick(rng, [
          `${h.method.toLowerCase()} ${h.url} HTTP/1.1\r\n\r\n`,
          `${h.method} ${h.url} HTTP/9.9\r\n\r\n`,
          `${h.method} ${h.url}\r\n\r\n`,
          `${h.method}  ${h.url}  HTTP/1.1\r\n\r\n`,
          `${h.method} ${h.url} HTTP/1.1\n\n`,
          `${h.method}\t${h.url} HTTP/1.1\r\n\r\n`,
          `\r\n\r\n${h.method} ${h.url} HTTP/1.1\r\n\r\n`,
          `${h.method} ${h.url.replace(/^\//, '')} HTTP/1.1\r\n\r\n`,
          `${h.method} /${'a'.repeat(20_000)} HTTP/1.1\r\n\r\n`,
        ]),
        'latin1',
      );
      break;
    case 4:
      // bogus framing headers
      bytes = Buffer.from(
        `${h.method} ${h.url} HTTP/1.1\r\nHost: x\r\n${pick(rng, [
          'Content-Length: -1\r\n',
          'Content-Length: 1e3\r\n',
          'Content-Length: 5\r\nContent-Length: 6\r\n',
          'Content-Length: 99999999999999999999\r\n',
          'Transfer-Encoding: chunked\r\nContent-Length: 3\r\n',
          'Transfer-Encoding: chunked, identity\r\n',
          'Transfer-Encoding: chunked\r\n\r\nzz\r\n',
          'Bad Header: x\r\n',
          ': empty-name\r\n',
          'X: a\rb\r\n',
          ' folded: x\r\n',
          `X-Many: ${'y,'.repeat(9000)}\r\n`,
        ])}\r\n${h.body?.toString() ?? ''}`,
        'latin1',
      );
      break;
    case 5:
      // a pipeline of well-formed requests, the last one possibly cut
      bytes = Buffer.concat([wellFormed, ...Array.from({ length: 1 + int(rng, 4) }, () => (rng() < 0.5 ? Buffer.from('GET /api/v1/daemon/events HTTP/1.1\r\nHost: x\r\n\r\n') : wellFormed))]);
      if (rng() < 0.3) bytes = bytes.subarray(0, bytes.length - int(rng, 20));
      break;
    default:
      bytes = wellFormed;
      garbage = h.method === 'HEAD' ? undefined : h.garbage;
  }
  // (the HTTP parser is lenient: extra spaces, leading blank lines, even a line without a version are served, so only
  // bytes that do not start with a method and a target cannot be a request)
  if (!/^[\r\n]*[A-Z][A-Z-]*[ \t]+[^ \t\r\n]/.test(bytes.toString('latin1'))) garbage = 'no request line';
  return { bytes, garbage, describe: `raw ${JSON.stringify(bytes.toString('latin1').slice(0, 300))}` };
}

interface Answer {
  status: number;
  /** the answer to a HEAD: no body */
  head: boolean;
  headers: Record<string, string>;
  body: string;
}

/**
 * Splits what a raw connection received into its answers (Content-Length framing; 1xx and 204 have no body, nor
 * has the answer to a HEAD, when the bytes sent hold one: that answer is known by what follows it).
 */
function parseAnswers(data: Buffer, mayHoldHead: boolean): Answer[] {
  const out: Answer[] = [];
  let rest = data.toString('latin1');
  while (rest.length) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) throw new Error(`an incomplete answer head: ${JSON.stringify(rest.slice(0, 300))}`);
    const lines = rest.slice(0, end).split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3})/.exec(lines[0]!);
    if (!m) throw new Error(`not an HTTP answer: ${JSON.stringify(rest.slice(0, 300))}`);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const status = Number(m[1]);
    const after = rest.slice(end + 4);
    const headAnswer = mayHoldHead && (after.length === 0 || after.startsWith('HTTP/1.1 '));
    const len = status < 200 || status === 204 || headAnswer ? 0 : Number(headers['content-length'] ?? NaN);
    if (!Number.isInteger(len)) throw new Error(`an answer without Content-Length: ${JSON.stringify(rest.slice(0, 300))}`);
    if (rest.length < end + 4 + len) throw new Error(`a truncated answer body: ${JSON.stringify(rest.slice(0, 300))}`);
    const body = Buffer.from(rest.slice(end + 4, end + 4 + len), 'latin1').toString('utf8');
    rest = rest.slice(end + 4 + len);
    if (status >= 200) out.push({ status, head: headAnswer, headers, body });
  }
  return out;
}

/** Writes the bytes, half-closes, and collects everything until the server closes; a hang is a failure. */
function sendRaw(bytes: Buffer): Promise<Answer[]> {
  const mayHoldHead = /(^|\n)HEAD /i.test(bytes.toString('latin1'));
  return new Promise((resolve, reject) => {
    const s = net.connect(d.sock);
    const parts: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`neither answered nor closed within ${REQUEST_BOUND_MS} ms`));
    }, REQUEST_BOUND_MS);
    s.on('data', (b: Buffer) => parts.push(b));
    // a reset after the server answered and closed (bytes of ours it never read) is not a failure: what it sent
    // counts
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(parseAnswers(Buffer.concat(parts), mayHoldHead));
      } catch (err) {
        reject(err);
      }
    });
    s.end(bytes);
  });
}

function checkAnswer(a: ApiResponse | Answer, c: Sent, head = false): void {
  const what = `${c.describe} -> ${a.status}`;
  if (c.garbage) assert.ok(a.status < 200 || a.status >= 300, `${what}: a 2xx for garbage (${c.garbage})`);
  if (a.status >= 400 && !head) {
    const res: ApiResponse = 'text' in a ? a : { status: a.status, headers: a.headers, text: a.body, json: undefined };
    if (!('text' in a)) {
      try {
        res.json = JSON.parse(a.body);
      } catch {
        // assertErrorBody reports it
      }
    }
    assertErrorBody(res, what);
  }
  assert.ok(a.status !== 501 || /not implemented|unsupported/i.test('text' in a ? a.text : a.body), `${what}: an unexplained 501`);
  assert.ok(a.status < 500 || a.status === 500 || a.status === 501 || a.status === 503, `${what}: status ${a.status}`);
}

test(`seeded fuzz: ${COUNT} random and mutated requests, no crash, no hang, no 2xx for garbage, every error {code, message}`, async (t) => {
  t.diagnostic(`NYDUS_FUZZ_SEED=${SEED} NYDUS_FUZZ_COUNT=${COUNT}`);
  console.log(`fuzz: NYDUS_FUZZ_SEED=${SEED} NYDUS_FUZZ_COUNT=${COUNT}`);
  const rng = prng(SEED);
  const stats = { http: 0, raw: 0, skipped: 0, refusedByClient: 0, closed: 0, answers: new Map<number, number>() };
  const count = (s: number) => stats.answers.set(s, (stats.answers.get(s) ?? 0) + 1);
  for (let start = 0; start < COUNT; start += BATCH) {
    // the cases of a batch are drawn in order from the seed, whatever the timing of their answers
    const cases: (() => Promise<void>)[] = [];
    for (let i = start; i < Math.min(COUNT, start + BATCH); i++) {
      let raw: boolean;
      let c: RawCase | HttpCase;
      // a case naming an excluded route is drawn again
      for (;;) {
        raw = rng() < 0.5;
        c = raw ? rawCase(rng) : httpCase(rng);
        if (!(raw ? forbidden((c as RawCase).bytes) : forbidden((c as HttpCase).url, (c as HttpCase).body))) break;
        stats.skipped++;
      }
      const tag = `#${i} (seed ${SEED})`;
      cases.push(async () => {
        if (raw) {
          stats.raw++;
          const answers = await sendRaw((c as RawCase).bytes).catch((e: Error) => {
            throw new Error(`${tag} ${c.describe}: ${e.message}`);
          });
          for (const a of answers) {
            count(a.status);
            checkAnswer(a, { ...c, describe: `${tag} ${c.describe}` }, a.head);
          }
        } else {
          stats.http++;
          const h = c as HttpCase;
          const res = await request(d.sock, h.method, h.url, { body: h.body, headers: h.headers, timeoutMs: REQUEST_BOUND_MS }).catch((e: Error) => {
            const code = (e as NodeJS.ErrnoException).code ?? '';
            // node's client refuses some of what it is given (a character in the path, a header value): not sent
            if (code.startsWith('ERR_')) {
              stats.refusedByClient++;
              return undefined;
            }
            // closed without an answer: allowed (only a hang is not), counted; and the answer to a HEAD the server
            // could not parse (it cannot know it was a HEAD) has a body, which node's client then refuses to parse
            if (code === 'ECONNRESET' || (h.method === 'HEAD' && code.startsWith('HPE_'))) {
              stats.closed++;
              return undefined;
            }
            throw new Error(`${tag} ${c.describe}: ${e.message}`);
          });
          if (!res) return;
          count(res.status);
          checkAnswer(res, { ...c, describe: `${tag} ${c.describe}` }, h.method === 'HEAD');
        }
      });
    }
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < cases.length) await cases[next++]!();
      }),
    );
    assert.ok(d.daemon.running, `nydusd died during requests ${start}..${start + BATCH} (seed ${SEED}): ${d.daemon.stderr.slice(-3000)}`);
    const alive = await request(d.sock, 'GET', '/api/v1/daemon', { timeoutMs: REQUEST_BOUND_MS });
    assert.equal((alive.json as { state: string }).state, 'RUNNING', `after request ${start + BATCH} (seed ${SEED})`);
  }
  t.diagnostic(`sent ${stats.http} over http, ${stats.raw} raw, ${stats.skipped} drawn again (excluded routes), ${stats.refusedByClient} refused by node's client, ${stats.closed} closed unanswered; answers by status: ${JSON.stringify(Object.fromEntries([...stats.answers].sort((a, b) => a[0] - b[0])))}`);
  // the fuzz reached the daemon's handlers, not only its HTTP parser
  assert.ok((stats.answers.get(200) ?? 0) > 0 && (stats.answers.get(404) ?? 0) > 0 && (stats.answers.get(400) ?? 0) > 0, JSON.stringify([...stats.answers]));
  // no log level is left that would flood the rest of the run
  assert.equal((await request(d.sock, 'PUT', '/api/v1/daemon', { body: '{"log_level":"info"}' })).status, 204);
  await assertServing(d, `after the fuzz (seed ${SEED})`);
});
