// The Dragonfly harness on its own (no nydusd): a real Dragonfly v2.0.9 cluster on loopback (manager on MariaDB and
// Redis, scheduler, seed peer, two dfdaemon peers) in front of Debian's docker-registry. A registry blob GET sent to a
// peer's proxy as nydusd sends it (absolute-form URL, the X-Dragonfly-* headers of nydusd-runtime.md 7.5) comes back
// byte-exact through the P2P network; a second peer is served by the network, not the registry; a killed proxy
// refuses connections and serves again once restarted; preheat jobs (spec p2p-seeds.md 1) reach SUCCESS, or FAILURE
// for a blob the registry does not have (and v2.0.9 refuses OCI-manifest images outright). The proxy-mode and preheat tests of nydusd and nydusify rely on all of it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DragonflyCluster } from '../helpers/dragonfly.js';
import { httpRequest, pushDockerImage, waitFor } from '../helpers/p2p-engines.js';
import { prng } from '../helpers/prng.js';
import { FrontEnd, Registry, RegistryClient, sha256 } from '../helpers/registry.js';

const REPO = 'p2p/dragonfly';
/** The headers nydusd adds to an on-demand read sent through the proxy (spec 7.5). */
const NYDUSD_HEADERS = { 'X-Dragonfly-Priority': '6', 'X-Dragonfly-Use-P2P': 'true' };

function blobOf(size: number, seed: number): Buffer {
  const next = prng(seed);
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = Math.floor(next() * 256);
  return b;
}

describe('Dragonfly harness: a real cluster on loopback', { timeout: 600_000 }, () => {
  let registry: Registry;
  /** between the peers and the registry: counts the blob GETs that reach the registry */
  let front: FrontEnd;
  let cluster: DragonflyCluster;
  const blob = blobOf(3 * 1024 * 1024 + 123, 11);
  let digest: string;
  const blobUrl = () => `http://${front.host}/v2/${REPO}/blobs/${digest}`;
  const registryGets = () => front.blobGets.filter((g) => g.digest === digest).length;

  before(async () => {
    registry = await Registry.start({ kind: 'anonymous' });
    front = await FrontEnd.start(registry);
    digest = await new RegistryClient(registry.url).pushBlob(REPO, blob);
    cluster = await DragonflyCluster.start({ peers: 2, seedPeer: true });
  });

  after(async () => {
    await cluster?.stop();
    await front?.close();
    await registry?.destroy();
  });

  it('serves a ranged registry blob GET through a peer proxy byte-exact, through the P2P network', async () => {
    const [peer] = cluster.peers;
    const before = await peer!.metrics();
    const res = await httpRequest(blobUrl(), { proxy: peer!.proxyUrl, headers: { ...NYDUSD_HEADERS, Range: 'bytes=100000-165535' } });
    assert.equal(res.status, 206, res.body.toString('utf8').slice(0, 300));
    assert.equal(res.body.length, 65536);
    assert.ok(res.body.equals(blob.subarray(100000, 165536)), 'the proxied range has the registry blob bytes');
    // the peer answered from a P2P task (not a plain pass-through), and counted it as such
    assert.match(String(res.headers['x-dragonfly-task']), /^[0-9a-f]{64}$/);
    assert.ok(res.headers['x-dragonfly-peer'], 'the answer names the peer that served it');
    const afterIt = await peer!.metrics();
    const via = 'dragonfly_dfdaemon_proxy_request_via_dragonfly_total';
    assert.equal((afterIt.get(via) ?? 0) - (before.get(via) ?? 0), 1);
    // the network fetched exactly the range asked from the registry, once
    assert.deepEqual(front.blobGets.filter((g) => g.digest === digest).map((g) => g.range), ['bytes=100000-165535']);
    // v2.0.9 states the total as the range's end + 1, not the blob's size
    assert.equal(res.headers['content-range'], 'bytes 100000-165535/165536');
  });

  it('serves a second peer the same range from the P2P network, without another registry GET', async () => {
    const [first, second] = cluster.peers;
    const range = { ...NYDUSD_HEADERS, Range: 'bytes=2000000-2262143' };
    const a = await httpRequest(blobUrl(), { proxy: first!.proxyUrl, headers: range });
    assert.equal(a.status, 206);
    const gets = registryGets();
    const b = await httpRequest(blobUrl(), { proxy: second!.proxyUrl, headers: range });
    assert.equal(b.status, 206);
    assert.ok(b.body.equals(blob.subarray(2000000, 2262144)), 'the second peer serves the same bytes');
    assert.equal(a.headers['x-dragonfly-task'], b.headers['x-dragonfly-task'], 'one task in the network');
    assert.notEqual(a.headers['x-dragonfly-peer'], b.headers['x-dragonfly-peer'], 'each peer answered as itself');
    assert.equal(registryGets(), gets, 'the second peer got the pieces from a peer, not from the registry');
  });

  it('refuses connections on a killed proxy, and serves again once it is restarted', async () => {
    const peer = cluster.peers[1]!;
    await peer.stop();
    await assert.rejects(httpRequest(blobUrl(), { proxy: peer.proxyUrl, headers: { Range: 'bytes=0-99' } }), /ECONNREFUSED/);
    await assert.rejects(httpRequest(peer.pingUrl), /ECONNREFUSED/);
    await peer.start();
    const ping = await httpRequest(peer.pingUrl);
    assert.equal(ping.status, 200);
    const res = await httpRequest(blobUrl(), { proxy: peer.proxyUrl, headers: { ...NYDUSD_HEADERS, Range: 'bytes=0-99' } });
    assert.equal(res.status, 206);
    assert.ok(res.body.equals(blob.subarray(0, 100)));
  });

  it('preheats an image through the manager job API: the job reaches SUCCESS and the seed peer fetched its layer', async () => {
    // v2.0.9's manager asks for the manifest as Docker schema 2 only (Accept and parsing)
    const layer = blobOf(1024 * 1024 + 7, 12);
    const client = new RegistryClient(registry.url);
    await pushDockerImage(client, REPO, 'preheat', layer);
    const layerDigest = `sha256:${sha256(layer)}`;
    const layerGets = () => front.blobGets.filter((g) => g.digest === layerDigest).length;
    assert.equal(layerGets(), 0);
    const job = await cluster.createJob({ type: 'preheat', args: { type: 'image', url: `http://${front.host}/v2/${REPO}/manifests/preheat`, platform: 'linux/amd64' } });
    assert.equal(job.type, 'preheat');
    assert.equal(job.state, 'PENDING');
    const done = await cluster.finishedJob(job.id, 120_000);
    assert.equal(done.state, 'SUCCESS', JSON.stringify(done.result));
    assert.ok(layerGets() >= 1, 'the seed peer downloaded the layer from the registry');
    // the preheated layer is now in the network: a whole-blob GET through a peer needs no registry GET
    const gets = layerGets();
    const res = await httpRequest(`http://${front.host}/v2/${REPO}/blobs/${layerDigest}`, { proxy: cluster.peers[0]!.proxyUrl, headers: NYDUSD_HEADERS });
    assert.equal(res.status, 200);
    assert.ok(res.body.equals(layer));
    assert.equal(layerGets(), gets, 'served from the seed peer');
  });

  it('refuses at once to preheat an image whose manifest is OCI (v2.0.9 reads Docker schema 2 only)', async () => {
    const client = new RegistryClient(registry.url);
    await client.pushImage(REPO, 'oci', [{ data: blobOf(4096, 13), mediaType: 'application/vnd.oci.image.layer.v1.tar' }]);
    const res = await httpRequest(`${cluster.managerUrl}/api/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'preheat', args: { type: 'image', url: `http://${front.host}/v2/${REPO}/manifests/oci` } }),
    });
    assert.equal(res.status, 500);
    assert.match(res.body.toString('utf8'), /request registry 404/);
  });

  it('ends a preheat of a blob the registry does not have in FAILURE, naming the 404', async () => {
    const missing = `sha256:${'0'.repeat(64)}`;
    const job = await cluster.createJob({ type: 'preheat', args: { type: 'file', url: `http://${front.host}/v2/${REPO}/blobs/${missing}` } });
    const done = await cluster.finishedJob(job.id, 120_000);
    assert.equal(done.state, 'FAILURE');
    assert.match(JSON.stringify(done.result), /404/);
  });

  it("runs the 0.x-compatible preheat API of the manager (POST /preheats, GET /preheats/<id>, GET /_ping) to SUCCESS", async () => {
    // v2.0.9 serves the SuperNode-style routes (p2p-seeds.md 2) at the root, not under /api/v1, and names the id `id`
    const ping = await httpRequest(`${cluster.managerUrl}/_ping`);
    assert.equal(ping.status, 200);
    const layer = blobOf(300_000, 14);
    const layerDigest = await new RegistryClient(registry.url).pushBlob(REPO, layer);
    const created = await httpRequest(`${cluster.managerUrl}/preheats`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'file', url: `http://${front.host}/v2/${REPO}/blobs/${layerDigest}` }),
    });
    assert.equal(created.status, 200, created.body.toString('utf8'));
    const { id } = JSON.parse(created.body.toString('utf8')) as { id: string };
    assert.ok(id);
    const status = await waitFor(`preheat ${id} to finish`, async () => {
      const r = await httpRequest(`${cluster.managerUrl}/preheats/${id}`);
      const s = (JSON.parse(r.body.toString('utf8')) as { status: string }).status;
      return s === 'SUCCESS' || s === 'FAILED' || s === 'FAILURE' ? s : undefined;
    }, 120_000, cluster.daemons);
    assert.equal(status, 'SUCCESS');
    assert.ok(front.blobGets.some((g) => g.digest === layerDigest), 'the seed peer fetched the blob');
  });

  it('takes preheat jobs through the Open API front only with the personal access token', async () => {
    const api = await cluster.openApi();
    const body = JSON.stringify({ type: 'preheat', args: { type: 'file', url: blobUrl() } });
    const denied = await httpRequest(`${api.url}/oapi/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer wrong' }, body });
    assert.equal(denied.status, 401);
    const created = await httpRequest(`${api.url}/oapi/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${api.token}` }, body });
    assert.equal(created.status, 200, created.body.toString('utf8'));
    const job = JSON.parse(created.body.toString('utf8')) as { id: number; state: string; task_id: string };
    assert.match(job.task_id, /^group_/);
    const done = await cluster.finishedJob(job.id, 120_000);
    assert.equal(done.state, 'SUCCESS', JSON.stringify(done.result));
    const polled = await httpRequest(`${api.url}/oapi/v1/jobs/${job.id}`, { headers: { authorization: `Bearer ${api.token}` } });
    assert.equal(polled.status, 200);
    assert.equal((JSON.parse(polled.body.toString('utf8')) as { state: string }).state, 'SUCCESS');
  });
});
