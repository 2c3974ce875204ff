// The Kraken harness on its own (no nydusd): a real Kraken v0.1.4 cluster on loopback (origin, tracker, build-index,
// agent) reading from Debian's docker-registry. A blob comes back byte-exact from the agent server's
// `GET /namespace/<ns>/blobs/<digest>` (whole) and from the agent's registry port (whole and ranged, the Distribution
// API as the registry backend speaks it); tags resolve through build-index (Docker schema 2 manifests only); the origin fetched it from the registry once and the agent serves it again
// from its own store; `/health` answers; a killed agent refuses connections and serves again once restarted; a blob
// the registry lacks is a 404, not a hang. Spec p2p-seeds.md 3. The kraken backend tests of nydusd rely on all of it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KrakenCluster } from '../helpers/kraken.js';
import { httpRequest, pushDockerImage } from '../helpers/p2p-engines.js';
import { prng } from '../helpers/prng.js';
import { FrontEnd, Registry, RegistryClient, sha256 } from '../helpers/registry.js';

const REPO = 'p2p/kraken';

function blobOf(size: number, seed: number): Buffer {
  const next = prng(seed);
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = Math.floor(next() * 256);
  return b;
}

describe('Kraken harness: a real cluster on loopback', { timeout: 600_000 }, () => {
  let registry: Registry;
  /** between the origin and the registry: counts the blob GETs that reach the registry */
  let front: FrontEnd;
  let kraken: KrakenCluster;
  const blob = blobOf(5 * 1024 * 1024 + 321, 21);
  let digest: string;
  const registryGets = (d = digest) => front.blobGets.filter((g) => g.digest === d).length;

  before(async () => {
    registry = await Registry.start({ kind: 'anonymous' });
    front = await FrontEnd.start(registry);
    digest = await new RegistryClient(registry.url).pushBlob(REPO, blob);
    kraken = await KrakenCluster.start(front.host);
  });

  after(async () => {
    await kraken?.stop();
    await front?.close();
    await registry?.destroy();
  });

  it('answers GET /health on the agent server with 200 OK', async () => {
    const h = await kraken.health();
    assert.equal(h.status, 200);
    assert.equal(h.body.trim(), 'OK');
  });

  it('serves the whole blob from GET /namespace/<ns>/blobs/<digest>, fetched from the registry by the origin', async () => {
    assert.equal(registryGets(), 0);
    const res = await httpRequest(kraken.blobUrl(REPO, digest), { timeoutMs: 60_000 });
    assert.equal(res.status, 200, res.body.toString('utf8').slice(0, 300));
    assert.equal(res.body.length, blob.length);
    assert.equal(sha256(res.body), sha256(blob));
    assert.ok(res.body.equals(blob));
    assert.ok(registryGets() >= 1, 'the origin read the blob from the registry');
  });

  it("serves the blob whole and in ranges from the agent's registry port, from its own store", async () => {
    const gets = registryGets();
    const whole = await httpRequest(`${kraken.registryUrl}/v2/${REPO}/blobs/${digest}`);
    assert.equal(whole.status, 200);
    assert.ok(whole.body.equals(blob));
    for (const [start, end] of [[0, 0], [1, 4096], [1048576, 1048576 + 262143], [blob.length - 100, blob.length - 1]] as const) {
      const res = await httpRequest(`${kraken.registryUrl}/v2/${REPO}/blobs/${digest}`, { headers: { Range: `bytes=${start}-${end}` } });
      assert.equal(res.status, 206, `range ${start}-${end}`);
      assert.equal(res.headers['content-range'], `bytes ${start}-${end}/${blob.length}`);
      assert.ok(res.body.equals(blob.subarray(start, end + 1)), `range ${start}-${end} bytes`);
    }
    assert.equal(registryGets(), gets, 'the agent served its own copy');
  });

  it('resolves a tag to its manifest through build-index: GET /tags/<tag> on the agent server and the registry port', async () => {
    const client = new RegistryClient(registry.url);
    const layer = blobOf(65536, 22);
    const manifestDigest = await pushDockerImage(client, REPO, 'v1', layer);
    const tag = await httpRequest(`${kraken.serverUrl}/tags/${encodeURIComponent(`${REPO}:v1`)}`, { timeoutMs: 60_000 });
    assert.equal(tag.status, 200, tag.body.toString('utf8'));
    assert.equal(tag.body.toString('utf8').trim(), manifestDigest);
    const m = await httpRequest(`${kraken.registryUrl}/v2/${REPO}/manifests/v1`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' }, timeoutMs: 60_000 });
    assert.equal(m.status, 200);
    assert.equal(m.headers['docker-content-digest'], manifestDigest);
    assert.equal(`sha256:${sha256(m.body)}`, manifestDigest, 'the manifest bytes as pushed');
    const l = await httpRequest(`${kraken.registryUrl}/v2/${REPO}/blobs/sha256:${sha256(layer)}`, { timeoutMs: 60_000 });
    assert.ok(l.body.equals(layer));
  });

  it('does not resolve a tag whose manifest is OCI (v0.1.4 reads Docker schema 2 only): 404 MANIFEST_UNKNOWN', async () => {
    await new RegistryClient(registry.url).pushImage(REPO, 'oci', [{ data: blobOf(4096, 23), mediaType: 'application/vnd.oci.image.layer.v1.tar' }]);
    const m = await httpRequest(`${kraken.registryUrl}/v2/${REPO}/manifests/oci`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' }, timeoutMs: 60_000 });
    assert.equal(m.status, 404);
    assert.match(m.body.toString('utf8'), /MANIFEST_UNKNOWN/);
  });

  it('answers a blob the registry does not have with 404, not a hang', async () => {
    const missing = `sha256:${'1'.repeat(64)}`;
    const res = await httpRequest(kraken.blobUrl(REPO, missing), { timeoutMs: 60_000 });
    assert.equal(res.status, 404, res.body.toString('utf8').slice(0, 300));
  });

  it('refuses connections on a killed agent, and serves from its store again once restarted', async () => {
    await kraken.stopAgent();
    // refused, or reset by a listener still closing as the agent exits (a fresh-clone CI run saw ECONNRESET once)
    await assert.rejects(httpRequest(`${kraken.serverUrl}/health`), /ECONNREFUSED|ECONNRESET/);
    await assert.rejects(httpRequest(`${kraken.registryUrl}/v2/`), /ECONNREFUSED|ECONNRESET/);
    await kraken.startAgent();
    const gets = registryGets();
    const res = await httpRequest(kraken.blobUrl(REPO, digest), { timeoutMs: 60_000 });
    assert.equal(res.status, 200);
    assert.ok(res.body.equals(blob));
    assert.equal(registryGets(), gets);
  });
});
