// The registry harness on its own (no nydusd): the real docker-registry in each auth mode stores what is pushed and
// serves exact ranges of it; the token service's JWTs are accepted by the registry and really expire; the front
// end's faults and redirects do what they say. The registry-backend tests rely on all of it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { basic, FrontEnd, httpRequest, parseChallenge, Registry, RegistryClient, sha256, StorageServer, TokenService } from './registry.js';

const REPO = 'test/harness';

/** A blob of `size` pseudo-random bytes. */
function blobOf(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  let x = seed || 1;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

async function waitUntil(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Pushes a blob and an image referencing it, then checks ranged reads of it, through `base`. */
async function pushAndPull(client: RegistryClient, reader: RegistryClient, blob: Buffer): Promise<string> {
  const digest = await client.pushBlob(REPO, blob);
  assert.equal(digest, `sha256:${sha256(blob)}`);
  await client.pushImage(REPO, 'v1', [{ data: blob, mediaType: 'application/vnd.oci.image.layer.nydus.blob.v1' }]);
  for (const [start, end] of [[0, 0], [1, 4096], [blob.length - 100, blob.length - 1], [12345, 12345 + 65535]] as const) {
    const res = await reader.getBlobRange(REPO, digest, start, end);
    assert.equal(res.status, 206, `range ${start}-${end}: ${res.body.toString('utf8').slice(0, 200)}`);
    assert.equal(res.headers['content-range'], `bytes ${start}-${end}/${blob.length}`);
    assert.ok(res.body.equals(blob.subarray(start, end + 1)), `range ${start}-${end} differs`);
  }
  const man = await reader.request(`/v2/${REPO}/manifests/v1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(man.status, 200);
  assert.equal((JSON.parse(man.body.toString('utf8')) as { layers: Array<{ digest: string }> }).layers[0]!.digest, digest);
  return digest;
}

describe('registry harness', () => {
  let work: string;
  const cleanups: Array<() => Promise<void>> = [];

  before(() => {
    work = mkdtempSync(path.join(os.tmpdir(), 'registry-harness-'));
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });

  it('anonymous: push, ranged pulls, stop and start on the same port and storage', { timeout: 60_000 }, async () => {
    const reg = await Registry.start({ kind: 'anonymous' });
    cleanups.push(() => reg.destroy());
    const client = new RegistryClient(reg.url);
    const blob = blobOf(300_000, 1);
    const digest = await pushAndPull(client, client, blob);
    await reg.stop();
    await assert.rejects(httpRequest(`${reg.url}/v2/`, { timeoutMs: 5_000 }), /ECONNREFUSED/);
    await reg.start();
    const res = await client.getBlobRange(REPO, digest, 100, 199);
    assert.equal(res.status, 206);
    assert.ok(res.body.equals(blob.subarray(100, 200)), 'the restarted registry serves the same bytes');
  });

  it('htpasswd Basic: refuses anonymous and wrong passwords, serves the right user', { timeout: 60_000 }, async () => {
    const reg = await Registry.start({ kind: 'htpasswd', users: { alice: 's3cret-pass' } });
    cleanups.push(() => reg.destroy());
    const anon = await httpRequest(`${reg.url}/v2/`);
    assert.equal(anon.status, 401);
    assert.equal(parseChallenge(anon.headers['www-authenticate'] as string)?.scheme, 'basic');
    const wrong = await httpRequest(`${reg.url}/v2/`, { headers: { authorization: `Basic ${basic('alice', 'nope')}` } });
    assert.equal(wrong.status, 401);
    const client = new RegistryClient(reg.url, { user: 'alice', password: 's3cret-pass' });
    await pushAndPull(client, client, blobOf(200_000, 2));
  });

  it('token auth: JWTs from the test service are accepted for their scope, refused without it, and expire', { timeout: 90_000 }, async () => {
    const tokens = await TokenService.start(work);
    cleanups.push(() => tokens.close());
    tokens.users.set('bob', 'pw-of-bob');
    const reg = await Registry.start({ kind: 'token', tokens });
    cleanups.push(() => reg.destroy());
    const anon = await httpRequest(`${reg.url}/v2/${REPO}/blobs/sha256:${'0'.repeat(64)}`);
    assert.equal(anon.status, 401);
    const ch = parseChallenge(anon.headers['www-authenticate'] as string)!;
    assert.equal(ch.scheme, 'bearer');
    assert.equal(ch.params.realm, tokens.realm);
    assert.equal(ch.params.service, tokens.service);
    assert.equal(ch.params.scope, `repository:${REPO}:pull`);

    const pusher = new RegistryClient(reg.url, { user: 'bob', password: 'pw-of-bob' }, 'pull,push');
    const puller = new RegistryClient(reg.url, { user: 'bob', password: 'pw-of-bob' });
    const blob = blobOf(250_000, 3);
    const digest = await pushAndPull(pusher, puller, blob);
    assert.ok(tokens.granted('bob').some((r) => r.scopes.includes(`repository:${REPO}:pull,push`)), 'a push token was granted');

    // the service checks the Basic credential of the token request, by GET and by the form POST the backend uses
    const q = `service=${tokens.service}&scope=repository:${REPO}:pull&client_id=x`;
    assert.equal((await httpRequest(`${tokens.realm}?${q}`, { headers: { authorization: `Basic ${basic('bob', 'wrong')}` } })).status, 401);
    assert.equal((await httpRequest(`${tokens.realm}?${q}`)).status, 401);
    const post = await httpRequest(tokens.realm, { method: 'POST', headers: { authorization: `Basic ${basic('bob', 'pw-of-bob')}`, 'content-type': 'application/x-www-form-urlencoded' }, body: q });
    assert.equal(post.status, 200);
    const answer = JSON.parse(post.body.toString('utf8')) as { token: string; access_token: string; expires_in: number };
    assert.equal(answer.token, answer.access_token);
    assert.equal(answer.expires_in, tokens.expiresIn);
    const withToken = (t: string, d = digest) => httpRequest(`${reg.url}/v2/${REPO}/blobs/${d}`, { headers: { authorization: `Bearer ${t}`, range: 'bytes=0-9' } });
    const ok = await withToken(answer.token);
    assert.equal(ok.status, 206);
    assert.ok(ok.body.equals(blob.subarray(0, 10)));

    // a token for another repository, or with a signature that does not verify, is refused
    assert.equal((await withToken(tokens.mint('bob', [{ type: 'repository', name: 'other/repo', actions: ['pull'] }]))).status, 401);
    const forged = answer.token.slice(0, -6) + (answer.token.endsWith('AAAAAA') ? 'BBBBBB' : 'AAAAAA');
    assert.equal((await withToken(forged)).status, 401);

    // a short-lived token works at first and is refused once its lifetime has passed
    const short = tokens.mint('bob', [{ type: 'repository', name: REPO, actions: ['pull'] }], 2);
    assert.equal((await withToken(short)).status, 206, 'a fresh 2 s token is accepted');
    await waitUntil(async () => (await withToken(short)).status === 401, 20_000, 'the 2 s token to be refused');
  });

  it('front end: forwards, injects each fault on blob GETs only, and counts', { timeout: 60_000 }, async () => {
    const reg = await Registry.start({ kind: 'htpasswd', users: { carol: 'pw-carol' } });
    cleanups.push(() => reg.destroy());
    const direct = new RegistryClient(reg.url, { user: 'carol', password: 'pw-carol' });
    const blob = blobOf(100_000, 4);
    const digest = await direct.pushBlob(REPO, blob);
    const front = await FrontEnd.start(reg);
    cleanups.push(() => front.close());
    const client = new RegistryClient(`http://${front.host}`, { user: 'carol', password: 'pw-carol' });
    const get = (start: number, end: number) => client.getBlobRange(REPO, digest, start, end);

    const plain = await get(1000, 1999);
    assert.equal(plain.status, 206);
    assert.ok(plain.body.equals(blob.subarray(1000, 2000)));

    front.inject({ kind: 'status', status: 500, times: 1 });
    assert.equal((await get(0, 99)).status, 500);
    assert.equal((await get(0, 99)).status, 206, 'a fault with times: 1 applies once');

    front.inject({ kind: 'status', status: 429, times: 1 });
    const limited = await get(0, 99);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers['retry-after'], '1');

    front.inject({ kind: 'reset', times: 1 });
    await assert.rejects(get(0, 99), /ECONNRESET|socket hang up/);

    front.inject({ kind: 'short', times: 1 });
    const short = await get(0, 999);
    assert.equal(short.status, 206);
    assert.equal(short.body.length, 500);
    assert.equal(short.headers['content-range'], `bytes 0-499/${blob.length}`);
    assert.ok(short.body.equals(blob.subarray(0, 500)));

    front.inject({ kind: 'truncate', times: 1 });
    await assert.rejects(get(0, 999), /aborted|ECONNRESET|socket hang up/);

    front.inject({ kind: 'corrupt', times: 1 });
    const bad = await get(0, 999);
    assert.equal(bad.status, 206);
    assert.equal(bad.body.length, 1000);
    assert.ok(!bad.body.equals(blob.subarray(0, 1000)), 'corrupt bytes differ');

    front.inject({ kind: 'whole', times: 1 });
    const whole = await get(0, 999);
    assert.equal(whole.status, 200);
    assert.ok(whole.body.equals(blob));

    front.inject({ kind: 'stall', times: 1 });
    const stalled = httpRequest(`http://${front.host}/v2/${REPO}/blobs/${digest}`, { headers: { authorization: `Basic ${basic('carol', 'pw-carol')}`, range: 'bytes=0-999' }, timeoutMs: 30_000 });
    await waitUntil(async () => front.stalledCount === 1, 10_000, 'the answer to stall');
    front.releaseStalls();
    await assert.rejects(stalled, /aborted|ECONNRESET|socket hang up/);

    // faults never touch other requests
    front.inject({ kind: 'status', status: 500 });
    assert.equal((await client.request('/v2/')).status, 200);
    front.clear();
    // the first GET went without credentials (the 401 that told the client to send them)
    assert.deepEqual(
      front.blobGets.map((g) => g.action),
      ['forward', 'forward', 'status', 'forward', 'status', 'reset', 'short', 'truncate', 'corrupt', 'whole', 'stall'],
    );
    assert.equal(front.blobGets[0]!.status, 401);
    assert.ok(front.blobGets.slice(1).every((g) => g.authorization === `Basic ${basic('carol', 'pw-carol')}`));

    // a registry that is down: the front end resets the connection
    await reg.stop();
    await assert.rejects(get(0, 99), /ECONNRESET|socket hang up/);
    assert.equal(front.blobGets.at(-1)!.action, 'unreachable');
    await reg.start();
    assert.equal((await get(0, 99)).status, 206);
  });

  it('front end redirects to the storage server, whose URLs expire by generation and can be forbidden', { timeout: 60_000 }, async () => {
    const tokens = await TokenService.start(work);
    cleanups.push(() => tokens.close());
    tokens.users.set('dave', 'pw-dave');
    const reg = await Registry.start({ kind: 'token', tokens });
    cleanups.push(() => reg.destroy());
    const blob = blobOf(150_000, 5);
    const digest = await new RegistryClient(reg.url, { user: 'dave', password: 'pw-dave' }, 'pull,push').pushBlob(REPO, blob);
    const storage = await StorageServer.start();
    cleanups.push(() => storage.close());
    storage.blobs.set(digest, blob);
    const front = await FrontEnd.start(reg);
    cleanups.push(() => front.close());
    front.redirectTo = storage;
    const client = new RegistryClient(`http://${front.host}`, { user: 'dave', password: 'pw-dave' });

    const res = await client.getBlobRange(REPO, digest, 5000, 5999);
    assert.equal(res.status, 206);
    assert.ok(res.body.equals(blob.subarray(5000, 6000)));
    assert.match(res.redirectedTo!, new RegExp(`^http://${storage.host}/blobs/${digest}\\?gen=1&`));
    assert.equal(front.redirects(digest), 1);
    assert.equal(storage.gets(digest), 1);
    assert.equal(storage.requests[0]!.authorization, undefined, 'the harness client sends no Authorization to the storage');

    // a registry refusal is passed through (no redirect for a request without a token)
    const anon = await httpRequest(`http://${front.host}/v2/${REPO}/blobs/${digest}`);
    assert.equal(anon.status, 401);
    assert.equal(front.redirects(digest), 1);

    storage.generation = 2;
    const expired = await httpRequest(res.redirectedTo!, { headers: { range: 'bytes=0-9' } });
    assert.equal(expired.status, 403, 'a URL of an older generation has expired');
    const again = await client.getBlobRange(REPO, digest, 0, 9);
    assert.equal(again.status, 206);
    assert.match(again.redirectedTo!, /\?gen=2&/);

    // Locations with another scheme and host (what blob_url_scheme / blob_redirected_host repair)
    front.locationOverride = { scheme: 'https', host: 'storage.invalid:9' };
    const odd = await client.request(`/v2/${REPO}/blobs/${digest}`, { headers: { range: 'bytes=0-9' } });
    assert.equal(odd.status, 307);
    assert.match(String(odd.headers.location), new RegExp(`^https://storage\\.invalid:9/blobs/${digest}\\?gen=2&`));
    front.locationOverride = undefined;

    storage.forbidAll = true;
    assert.equal((await client.getBlobRange(REPO, digest, 0, 9)).status, 403);
  });
});
