// `nydusify preheat` and `convert --preheat` against the REAL Dragonfly v2.0.9 cluster (test/helpers/dragonfly.ts:
// manager, scheduler, seed peer, a dfdaemon peer; the Open API's token check is the harness's thin front, the jobs run
// for real) and Debian's docker-registry with htpasswd Basic auth behind a front that records every blob GET (spec
// p2p-seeds.md 1-2, issue 11 scope 5; the harness's FrontEnd rewrites Host, so the registry's upload Locations would
// point past it and an authenticated push through it would lose its credentials). A preheated blob is in the P2P network: a peer's proxy then
// serves it byte-exact with no new GET at the registry. Also: a blob the registry no longer has ends its job in
// FAILURE, a wrong token is refused, an unreachable manager is named, and a preheat whose blobs never arrive times out.
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DragonflyCluster } from '../helpers/dragonfly.js';
import { httpRequest } from '../helpers/p2p-engines.js';
import { basic, freePort, Registry, RegistryClient } from '../helpers/registry.js';
import { removeDir, requireEnv, run, tempDir } from '../nydusd/helpers.js';
import { buildSourceImage, nydusify, requireTools, sha256, type SourceImage } from './helpers.js';

const USER = { user: 'alice', password: 'preheat-secret' };
const NYDUS_BLOB = 'application/vnd.oci.image.layer.nydus.blob.v1';
const BOOTSTRAP = 'containerd.io/snapshot/nydus-bootstrap';

/** the `Error:` line nydusify ends with (warnings may come before it) */
const errorLine = (stderr: string) => stderr.trim().split('\n').at(-1) ?? '';

interface Layer {
  mediaType: string;
  digest: string;
  annotations?: Record<string, string>;
}

/**
 * The registry as the peers and nydusify see it: every request is forwarded with its own Host (so the registry writes
 * upload Locations on this front, and pushes through it keep their credentials); blob GETs are recorded (digest,
 * Authorization, status), and GETs of the `stalled` blobs get their headers and then nothing until `close` (a registry
 * that hangs mid-body for those blobs only: the preheat's own manifest and config reads pass).
 */
class Front {
  readonly stalled = new Set<string>();
  readonly blobGets: Array<{ digest: string; authorization?: string; status: number }> = [];
  private server!: http.Server;
  port = 0;

  static async start(target: string): Promise<Front> {
    const s = new Front();
    s.server = http.createServer((req, res) => {
      const digest = req.method === 'GET' ? /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? '')?.[1] : undefined;
      const rec = digest ? { digest, authorization: req.headers.authorization, status: 0 } : undefined;
      if (rec) s.blobGets.push(rec);
      if (digest && s.stalled.has(digest)) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '1000000' });
        res.write(Buffer.alloc(10));
        return;
      }
      const up = http.request(`http://${target}${req.url}`, { method: req.method, headers: req.headers, agent: false }, (ur) => {
        if (rec) rec.status = ur.statusCode ?? 0;
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    s.port = await new Promise<number>((resolve) => s.server.listen(0, '127.0.0.1', () => resolve((s.server.address() as net.AddressInfo).port)));
    return s;
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  gets(digest: string): Array<{ digest: string; authorization?: string; status: number }> {
    return this.blobGets.filter((g) => g.digest === digest);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

describe('nydusify preheat through a real Dragonfly cluster', { timeout: 900_000 }, () => {
  let dir: string;
  let src: SourceImage;
  let registry: Registry;
  let front: Front;
  let cluster: DragonflyCluster;
  let api: Awaited<ReturnType<DragonflyCluster['openApi']>>;
  let env: NodeJS.ProcessEnv;
  const client = () => new RegistryClient(registry.url, USER);

  async function manifestLayers(repo: string, tag: string): Promise<Layer[]> {
    const r = await client().request(`/v2/${repo}/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(r.status, 200, `manifest ${repo}:${tag}`);
    return (JSON.parse(r.body.toString('utf8')) as { layers: Layer[] }).layers;
  }

  /** nydusify convert of the source into `repo:v1` at `host` (other chunk sizes give other blobs) */
  async function convert(host: string, repo: string, extra: string[] = []) {
    return nydusify(['convert', '--source', `${registry.host}/src:v1`, '--target', `${host}/${repo}:v1`, '--source-insecure', '--target-insecure', ...extra], env);
  }

  before(async () => {
    requireTools();
    requireEnv(['docker-registry', 'htpasswd']);
    dir = tempDir('nydusify-preheat');
    src = buildSourceImage(dir);
    registry = await Registry.start({ kind: 'htpasswd', users: { [USER.user]: USER.password } }, path.join(dir, 'registry'));
    front = await Front.start(registry.host);
    const auth = basic(USER.user, USER.password);
    mkdirSync(path.join(dir, 'docker'));
    writeFileSync(path.join(dir, 'docker', 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth }, [front.host]: { auth } } }));
    env = { ...process.env, DOCKER_CONFIG: path.join(dir, 'docker') };
    run('skopeo', ['copy', '-q', '--dest-tls-verify=false', '--dest-creds', `${USER.user}:${USER.password}`, `oci:${src.layout}:v1`, `docker://${registry.host}/src:v1`]);
    cluster = await DragonflyCluster.start({ peers: 1, seedPeer: true });
    api = await cluster.openApi();
  });

  after(async () => {
    await cluster?.stop();
    await front?.close();
    await registry?.destroy();
    if (dir) removeDir(dir);
  });

  test('convert --preheat: every Nydus blob and the bootstrap reach SUCCESS, then a peer serves them without the registry', async () => {
    const r = await convert(front.host, 'nydus', [
      '--preheat', '--dragonfly-manager', api.url, '--dragonfly-token', api.token, '--dragonfly-cluster-id', '1', '--dragonfly-scope', 'single_seed_peer',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const layers = await manifestLayers('nydus', 'v1');
    const warmed = layers.filter((l) => l.mediaType === NYDUS_BLOB || l.annotations?.[BOOTSTRAP] === 'true');
    assert.equal(warmed.length, 3, 'two blob layers and the bootstrap');
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /^sha256:[0-9a-f]{64}$/, 'the manifest digest first');
    assert.deepEqual(
      lines.slice(1).map((l) => l.replace(/job \d+/, 'job N')),
      warmed.map((l) => `${l.annotations?.[BOOTSTRAP] === 'true' ? 'bootstrap' : 'blob'} ${l.digest}: job N SUCCESS`),
    );
    // one Open API job per layer, with the token; the seed peer fetched each blob with the registry credentials
    const posts = api.requests.filter((q) => q.method === 'POST');
    assert.equal(posts.length, 3);
    assert.ok(posts.every((q) => q.authorization === `Bearer ${api.token}` && q.status === 200));
    for (const l of warmed) {
      const gets = front.gets(l.digest);
      assert.ok(gets.length >= 1, `the seed peer fetched ${l.digest}`);
      assert.ok(gets.every((g) => g.authorization === `Basic ${basic(USER.user, USER.password)}` && g.status === 200), JSON.stringify(gets));
    }
    // the P2P network has them: a GET through the peer's proxy is served byte-exact with no new registry GET
    for (const l of warmed) {
      const before = front.gets(l.digest).length;
      const res = await httpRequest(`http://${front.host}/v2/nydus/blobs/${l.digest}`, {
        proxy: cluster.peers[0]!.proxyUrl,
        headers: { authorization: `Basic ${basic(USER.user, USER.password)}`, 'X-Dragonfly-Use-P2P': 'true' },
      });
      assert.equal(res.status, 200, res.body.toString('utf8').slice(0, 200));
      assert.equal(sha256(res.body), l.digest);
      assert.ok(res.headers['x-dragonfly-task'], 'served from a P2P task');
      assert.equal(front.gets(l.digest).length, before, `no new registry GET for ${l.digest}`);
    }
  });

  test('preheat --api legacy (the manager\'s SuperNode-style /preheats) reaches SUCCESS for each blob', async () => {
    const r = await nydusify(['preheat', '--target', `${front.host}/nydus:v1`, '--target-insecure', '--dragonfly-manager', cluster.managerUrl, '--api', 'legacy'], env);
    assert.equal(r.status, 0, r.stderr);
    const layers = (await manifestLayers('nydus', 'v1')).filter((l) => l.mediaType === NYDUS_BLOB || l.annotations?.[BOOTSTRAP] === 'true');
    assert.deepEqual(r.stdout.trim().split('\n').map((l) => l.replace(/job \d+/, 'job N').replace(/^\w+ /, '')), layers.map((l) => `${l.digest}: job N SUCCESS`));
  });

  test('a blob the registry no longer has ends its job in FAILURE: exit 1 naming the job, the blob and the 404', async () => {
    const c = await convert(front.host, 'broken', ['--chunk-size', '0x40000']);
    assert.equal(c.status, 0, c.stderr);
    const layers = await manifestLayers('broken', 'v1');
    const gone = layers.find((l) => l.mediaType === NYDUS_BLOB)!;
    const del = await client().request(`/v2/broken/blobs/${gone.digest}`, { method: 'DELETE' });
    assert.equal(del.status, 202, del.body.toString('utf8'));
    const r = await nydusify(['preheat', '--target', `${front.host}/broken:v1`, '--target-insecure', '--dragonfly-manager', api.url, '--dragonfly-token', api.token, '--timeout', '5m'], env);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^Error: preheat failed: job \\d+ \\(blob ${gone.digest}\\) ended in FAILURE: .*404`, 'm'));
    // the other layers were preheated, and every job's end is printed
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 3);
    assert.ok(lines.some((l) => l.startsWith(`blob ${gone.digest}: job `) && l.endsWith(' FAILURE')), r.stdout);
    assert.equal(lines.filter((l) => l.endsWith(' SUCCESS')).length, 2, r.stdout);
  });

  test('a wrong token is refused with a clear error, and no job is created', async () => {
    const before = api.requests.length;
    const r = await nydusify(['preheat', '--target', `${front.host}/nydus:v1`, '--target-insecure', '--dragonfly-manager', api.url, '--dragonfly-token', 'not-the-token'], env);
    assert.equal(r.status, 1);
    assert.equal(errorLine(r.stderr), `Error: Dragonfly manager ${api.url} refused the personal access token: POST /oapi/v1/jobs answered 401: invalid personal access token`);
    assert.deepEqual(api.requests.slice(before).map((q) => `${q.method} ${q.path} ${q.status}`), ['POST /oapi/v1/jobs 401']);
  });

  test('an unreachable manager and a bad manager URL are clear errors', async () => {
    const port = await freePort();
    const r = await nydusify(['preheat', '--target', `${front.host}/nydus:v1`, '--target-insecure', '--dragonfly-manager', `http://127.0.0.1:${port}`], env);
    assert.equal(r.status, 1);
    assert.match(errorLine(r.stderr), new RegExp(`^Error: Dragonfly manager http://127\\.0\\.0\\.1:${port} cannot be reached \\(POST /oapi/v1/jobs\\): cannot connect .*ECONNREFUSED`));
    const bad = await nydusify(['preheat', '--target', `${front.host}/nydus:v1`, '--dragonfly-manager', 'manager:8080'], env);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /^error: preheat: invalid Dragonfly manager URL 'manager:8080'/);
  });

  test('a preheat whose blobs never arrive times out: exit 1 naming the unfinished jobs', async () => {
    const c = await convert(front.host, 'stalled', ['--chunk-size', '0x20000']);
    assert.equal(c.status, 0, c.stderr);
    for (const l of await manifestLayers('stalled', 'v1')) front.stalled.add(l.digest);
    const r = await nydusify(['preheat', '--target', `${front.host}/stalled:v1`, '--target-insecure', '--dragonfly-manager', api.url, '--dragonfly-token', api.token, '--timeout', '4s'], env);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /^Error: preheat timed out after 4 s: job \d+ \(blob sha256:[0-9a-f]{64}\) still [A-Z]+/m);
    // every job was created before the deadline and is named with its last state
    assert.equal((r.stderr.match(/job \d+ \((blob|bootstrap) sha256:[0-9a-f]{64}\) still [A-Z]+/g) ?? []).length, 3, r.stderr);
  });
});
