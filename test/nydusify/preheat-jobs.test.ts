// The preheat client's logic (src/convert/dragonfly-preheat.ts, preheat-jobs.ts) against an in-process fake manager
// that plays scripted job states (spec p2p-seeds.md 1: the Open API's jobs with a personal access token; 2: the
// SuperNode-style preheats, at /api/v1/preheats or, as 2.x managers keep them, at /preheats). The real cluster is
// test/nydusify/preheat.test.ts.
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { DragonflyManager, jobState, ManagerError, type JobStatus } from '../../src/convert/dragonfly-preheat.js';
import { PreheatFailed, runPreheat, type PreheatItem } from '../../src/convert/preheat-jobs.js';
import { preheatLayers } from '../../src/convert/preheat.js';
import { parseDuration } from '../../src/cli/nydusify/preheat-options.js';
import { freePort } from '../helpers/registry.js';

const TOKEN = 'pat-0123456789';

/** One scripted job: the states its GETs answer in turn (the last one repeats), and the error of a FAILURE. */
interface Script {
  states: string[];
  error?: string;
}

interface Seen {
  method: string;
  path: string;
  authorization?: string;
  body?: any;
}

class FakeManager {
  server!: http.Server;
  url = '';
  readonly requests: Seen[] = [];
  /** scripts for the jobs created next, in order */
  scripts: Script[] = [];
  /** status codes answered to the next GETs of a job, before its script goes on */
  getFaults: number[] = [];
  /** where the legacy preheats live: 'api' (/api/v1/preheats, `ID`, FAILED) or 'root' (/preheats, `id`, FAIL) */
  legacy: 'api' | 'root' = 'root';
  /** answer every request with this raw body and status instead */
  raw: { status: number; body: string } | undefined;
  private jobs = new Map<string, { script: Script; polls: number }>();
  private next = 1;

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => parts.push(d));
      req.on('end', () => this.handle(req, res, Buffer.concat(parts)));
    });
    const port = await new Promise<number>((resolve) => this.server.listen(0, '127.0.0.1', () => resolve((this.server.address() as net.AddressInfo).port)));
    this.url = `http://127.0.0.1:${port}`;
  }

  reset(): void {
    this.requests.length = 0;
    this.scripts = [];
    this.getFaults = [];
    this.raw = undefined;
    this.legacy = 'root';
    this.jobs.clear();
    this.next = 1;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
    const path = req.url ?? '/';
    this.requests.push({ method: req.method ?? '', path, authorization: req.headers.authorization, body: body.length ? JSON.parse(body.toString('utf8')) : undefined });
    const json = (status: number, o: unknown): void => void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(o));
    if (this.raw) return void res.writeHead(this.raw.status).end(this.raw.body);
    const create = (): string => {
      const id = String(this.next++);
      this.jobs.set(id, { script: this.scripts.shift() ?? { states: ['SUCCESS'] }, polls: 0 });
      return id;
    };
    const poll = (id: string): string | undefined => {
      const job = this.jobs.get(id);
      if (!job) return undefined;
      const state = job.script.states[Math.min(job.polls, job.script.states.length - 1)]!;
      job.polls++;
      return state;
    };
    let m: RegExpExecArray | null;
    if (path.startsWith('/oapi/')) {
      if (req.headers.authorization !== `Bearer ${TOKEN}`) return json(401, { message: 'invalid personal access token' });
      if (req.method === 'POST' && path === '/oapi/v1/jobs') {
        const id = create();
        return json(200, { id: Number(id), task_id: `group_${id}`, type: 'preheat', state: 'PENDING', args: {}, result: null });
      }
      if (req.method === 'GET' && (m = /^\/oapi\/v1\/jobs\/(\d+)$/.exec(path))) {
        const fault = this.getFaults.shift();
        if (fault) return json(fault, { message: `fake manager answers ${fault}` });
        const state = poll(m[1]!);
        if (!state) return json(404, { message: 'Not Found' });
        const job = this.jobs.get(m[1]!)!;
        const result = state === 'FAILURE' ? { State: 'FAILURE', JobStates: [{ State: 'FAILURE', Error: job.script.error ?? '', TaskName: 'preheat' }] } : null;
        return json(200, { id: Number(m[1]), task_id: `group_${m[1]}`, type: 'preheat', state, args: {}, result });
      }
      return json(404, { message: 'not found' });
    }
    const base = this.legacy === 'api' ? '/api/v1/preheats' : '/preheats';
    if (req.method === 'POST' && path === base) return json(200, this.legacy === 'api' ? { ID: create() } : { id: create() });
    if (req.method === 'GET' && (m = new RegExp(`^${base}/(\\d+)$`).exec(path))) {
      const state = poll(m[1]!);
      if (!state) return json(404, { code: 404, message: 'preheat not found' });
      return json(200, { id: m[1], status: this.legacy === 'api' && state === 'FAIL' ? 'FAILED' : state });
    }
    // v2.0.9 (gin) answers a POST to the SuperNode path it lacks with a redirect to a trailing slash
    if (req.method === 'POST' && path === '/api/v1/preheats') return void res.writeHead(301, { location: '/api/v1/preheats/' }).end();
    return json(404, { message: 'Not Found' });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

const blob = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
const item = (n: number, extra: Partial<PreheatItem['request']> = {}): PreheatItem => ({
  label: `blob ${blob(n)}`,
  request: { type: 'file', url: `http://registry.test/v2/repo/blobs/${blob(n)}`, ...extra },
});
/** generous: the waits below are bounded by the timeouts given to runPreheat, not by this */
const WAIT = { timeoutMs: 20_000, intervalMs: 5 };

describe('Dragonfly preheat client against a fake manager', () => {
  const fake = new FakeManager();
  const managers: DragonflyManager[] = [];
  const manager = (o: Partial<ConstructorParameters<typeof DragonflyManager>[0]> = {}) => {
    const m = new DragonflyManager({ url: fake.url, api: 'oapi', token: TOKEN, ...o });
    managers.push(m);
    return m;
  };

  before(() => fake.start());
  beforeEach(() => fake.reset());
  after(async () => {
    for (const m of managers) await m.close();
    await fake.close();
  });

  test('Open API: one job per item with the token, headers, scope and cluster ids; polled until every job is SUCCESS', async () => {
    fake.scripts = [{ states: ['PENDING', 'STARTED', 'SUCCESS'] }, { states: ['RECEIVED', 'SUCCESS'] }];
    const seen: string[] = [];
    const results = await runPreheat(manager(), [
      item(1, { headers: { Authorization: 'Basic dTpw' }, scope: 'all_peers', clusterIds: [1, 3] }),
      item(2),
    ], { ...WAIT, onState: (it, s) => seen.push(`${it.label.slice(-3)} ${s.id} ${s.raw}`) });
    assert.deepEqual(results.map((r) => [r.label, r.status.id, r.status.state]), [[`blob ${blob(1)}`, '1', 'SUCCESS'], [`blob ${blob(2)}`, '2', 'SUCCESS']]);
    const posts = fake.requests.filter((r) => r.method === 'POST');
    assert.deepEqual(posts.map((p) => p.path), ['/oapi/v1/jobs', '/oapi/v1/jobs']);
    assert.ok(fake.requests.every((r) => r.authorization === `Bearer ${TOKEN}`), 'every request carries the token');
    assert.deepEqual(posts[0]!.body, {
      type: 'preheat',
      args: { type: 'file', url: `http://registry.test/v2/repo/blobs/${blob(1)}`, headers: { Authorization: 'Basic dTpw' }, scope: 'all_peers' },
      scheduler_cluster_ids: [1, 3],
    });
    assert.deepEqual(posts[1]!.body, { type: 'preheat', args: { type: 'file', url: `http://registry.test/v2/repo/blobs/${blob(2)}` } });
    // each state is reported once, in order; finished jobs are no longer polled
    assert.deepEqual(seen, ['111 1 PENDING', '222 2 PENDING', '222 2 RECEIVED', '111 1 STARTED', '222 2 SUCCESS', '111 1 SUCCESS']);
    assert.equal(fake.requests.filter((r) => r.path === '/oapi/v1/jobs/2').length, 2);
    assert.equal(fake.requests.filter((r) => r.path === '/oapi/v1/jobs/1').length, 3);
  });

  test('a job ending in FAILURE fails the preheat with one line naming the job, its blob and the manager\'s error', async () => {
    fake.scripts = [{ states: ['SUCCESS'] }, { states: ['STARTED', 'FAILURE'], error: 'download blob: source returned 404 Not Found' }];
    const err = await runPreheat(manager(), [item(1), item(2)], WAIT).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof PreheatFailed, String(err));
    assert.equal(err.message, `preheat failed: job 2 (blob ${blob(2)}) ended in FAILURE: download blob: source returned 404 Not Found`);
    assert.deepEqual(err.results.map((r) => [r.status.id, r.status.state]), [['1', 'SUCCESS'], ['2', 'FAILURE']]);
  });

  test('a job still unfinished at the deadline fails the preheat as a timeout naming it and its last state', async () => {
    fake.scripts = [{ states: ['SUCCESS'] }, { states: ['PENDING'] }];
    const err = await runPreheat(manager(), [item(1), item(2)], { timeoutMs: 300, intervalMs: 20 }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof PreheatFailed, String(err));
    assert.equal(err.message, `preheat timed out after 0.3 s: job 2 (blob ${blob(2)}) still PENDING`);
    assert.ok(fake.requests.filter((r) => r.path === '/oapi/v1/jobs/2').length >= 1, 'it was polled until then');
  });

  test('a refused token is a ManagerError of kind auth naming the route and the manager\'s message, never the token', async () => {
    const err = await runPreheat(manager({ token: 'wrong-token' }), [item(1)], WAIT).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ManagerError, String(err));
    assert.equal(err.kind, 'auth');
    assert.equal(err.message, `Dragonfly manager ${fake.url} refused the personal access token: POST /oapi/v1/jobs answered 401: invalid personal access token`);
    assert.doesNotMatch(err.message, /wrong-token/);
    const none = await runPreheat(manager({ token: undefined }), [item(1)], WAIT).then(() => undefined, (e: unknown) => e);
    assert.match((none as Error).message, /wants a personal access token \(--dragonfly-token\): POST \/oapi\/v1\/jobs answered 401/);
  });

  test('an unreachable manager is a ManagerError of kind unreachable naming it', async () => {
    const port = await freePort();
    const err = await runPreheat(manager({ url: `http://127.0.0.1:${port}` }), [item(1)], WAIT).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ManagerError, String(err));
    assert.equal(err.kind, 'unreachable');
    assert.match(err.message, new RegExp(`^Dragonfly manager http://127\\.0\\.0\\.1:${port} cannot be reached \\(POST /oapi/v1/jobs\\): cannot connect .*ECONNREFUSED`));
  });

  test('polling survives a manager error or two in a row, and stops at the third', async () => {
    fake.scripts = [{ states: ['PENDING', 'SUCCESS'] }];
    fake.getFaults = [502, 500];
    const ok = await runPreheat(manager(), [item(1)], WAIT);
    assert.equal(ok[0]!.status.state, 'SUCCESS');
    fake.scripts = [{ states: ['PENDING', 'SUCCESS'] }];
    fake.getFaults = [500, 500, 503];
    const err = await runPreheat(manager(), [item(1)], WAIT).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ManagerError, String(err));
    assert.match(err.message, /: GET \/oapi\/v1\/jobs\/\d+ answered 503: fake manager answers 503$/);
  });

  test('answers that are not JSON or not a job are clear errors', async () => {
    fake.raw = { status: 200, body: '<html>proxy login</html>' };
    const err = await runPreheat(manager(), [item(1)], WAIT).then(() => undefined, (e: unknown) => e);
    assert.match((err as Error).message, /POST \/oapi\/v1\/jobs answered 200 with a body that is not JSON: <html>proxy login<\/html>$/);
    fake.raw = { status: 200, body: '{"hello":1}' };
    const err2 = await runPreheat(manager(), [item(1)], WAIT).then(() => undefined, (e: unknown) => e);
    assert.match((err2 as Error).message, /POST \/oapi\/v1\/jobs answered something that is not a job: \{"hello":1\}$/);
  });

  test('legacy API on a 2.x manager: /api/v1/preheats is 301 (a trailing-slash redirect, as gin answers), /preheats takes the job; WAITING -> RUNNING -> SUCCESS, and FAIL', async () => {
    fake.scripts = [{ states: ['WAITING', 'RUNNING', 'SUCCESS'] }, { states: ['RUNNING', 'FAIL'] }];
    const m = manager({ api: 'legacy', token: undefined });
    const err = await runPreheat(m, [item(1, { headers: { Authorization: 'Bearer x' } }), item(2)], WAIT).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof PreheatFailed, String(err));
    assert.equal(err.message, `preheat failed: job 2 (blob ${blob(2)}) ended in FAIL: the manager reports FAIL`);
    assert.deepEqual(err.results.map((r) => [r.status.id, r.status.raw]), [['1', 'SUCCESS'], ['2', 'FAIL']]);
    const posts = fake.requests.filter((r) => r.method === 'POST');
    // the SuperNode route is tried once; the manager's own route is remembered for the second job
    assert.deepEqual(posts.map((p) => p.path), ['/api/v1/preheats', '/preheats', '/preheats']);
    assert.deepEqual(posts[1]!.body, { type: 'file', url: `http://registry.test/v2/repo/blobs/${blob(1)}`, headers: { Authorization: 'Bearer x' } });
    assert.ok(fake.requests.every((r) => r.authorization === undefined), 'no token without --dragonfly-token');
  });

  test('legacy API on a SuperNode: /api/v1/preheats answers {"ID"}; FAILED is a failure', async () => {
    fake.legacy = 'api';
    fake.scripts = [{ states: ['WAITING', 'FAIL'] }];
    const err = await runPreheat(manager({ api: 'legacy' }), [item(7)], WAIT).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof PreheatFailed, String(err));
    assert.match(err.message, /job 1 \(blob sha256:7{64}\) ended in FAILED/);
    assert.deepEqual(fake.requests.map((r) => `${r.method} ${r.path}`).slice(0, 3), ['POST /api/v1/preheats', 'GET /api/v1/preheats/1', 'GET /api/v1/preheats/1']);
  });

  test('states of both APIs map onto PENDING, RUNNING, SUCCESS, FAILURE', () => {
    const map: Record<string, JobStatus['state']> = {
      PENDING: 'PENDING', RECEIVED: 'PENDING', RETRY: 'PENDING', WAITING: 'PENDING', STARTED: 'RUNNING', RUNNING: 'RUNNING',
      SUCCESS: 'SUCCESS', FAILURE: 'FAILURE', FAILED: 'FAILURE', FAIL: 'FAILURE',
    };
    for (const [raw, state] of Object.entries(map)) assert.equal(jobState(raw), state, raw);
  });

  test('the layers preheated are the Nydus blobs and the bootstrap, each digest once', () => {
    const d = (n: number) => `sha256:${String(n).repeat(64)}`;
    const layers = [
      { mediaType: 'application/vnd.oci.image.layer.nydus.blob.v1', digest: d(1), size: 1 },
      { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d(2), size: 1 },
      { mediaType: 'application/vnd.oci.image.layer.nydus.blob.v1', digest: d(1), size: 1 },
      { mediaType: 'application/vnd.oci.image.layer.nydus.blob.v1', digest: d(3), size: 1 },
      { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d(4), size: 1, annotations: { 'containerd.io/snapshot/nydus-bootstrap': 'true' } },
    ];
    assert.deepEqual(preheatLayers(layers).map((l) => l.digest), [d(1), d(3), d(4)]);
  });

  test('durations: a bare number is seconds; zero, negatives and words are refused', () => {
    assert.equal(parseDuration('90', 't'), 90_000);
    assert.equal(parseDuration('500ms', 't'), 500);
    assert.equal(parseDuration('1.5s', 't'), 1500);
    assert.equal(parseDuration('10m', 't'), 600_000);
    assert.equal(parseDuration('1h', 't'), 3_600_000);
    for (const bad of ['0', '-1', 'soon', '10d', '']) assert.throws(() => parseDuration(bad, 'preheat: preheat timeout'), /preheat timeout '.*' is invalid/);
  });
});
