// Registry authentication (nydusd-runtime.md 7.2 step 4, 7.3, 2.6) against the fake registry: Basic, Bearer with a
// POST-form token endpoint or a GET-only one (Harbor), `token` or `access_token`, registry_token, expired tokens
// answered with a Basic challenge, refresh before expiry, the first-request gate, live rotation, credential checks at
// creation, IMAGE_PULL_AUTH; every read byte-exact, and the flow counted (token requests, 401s).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import type { Log } from '../../../src/log.js';
import { createBackend } from '../../../src/storage/backend/factory.js';
import { RegistryBackend } from '../../../src/storage/backend/registry/registry.js';
import { parseChallenge } from '../../../src/storage/backend/registry/challenge.js';
import { FakeRegistry, registryConfigFor, type FakeAuth } from './fake-registry.js';
import { waitFor } from '../../nydusd/helpers.js';

const BLOB = crypto.randomBytes(100_000);
const b64 = (s: string) => Buffer.from(s).toString('base64');

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});

async function registryWith(auth: FakeAuth): Promise<{ registry: FakeRegistry; id: string }> {
  const registry = await FakeRegistry.start({ auth });
  open.push(registry);
  return { registry, id: registry.addBlob(BLOB) };
}

function backend(registry: FakeRegistry, over: Parameters<typeof registryConfigFor>[1] = {}, log?: Log): RegistryBackend {
  const b = new RegistryBackend(registryConfigFor(registry, over), { log });
  open.push(b);
  return b;
}

async function readsRight(b: RegistryBackend, id: string, n = 3): Promise<void> {
  for (let i = 0; i < n; i++) {
    const off = i * 7919;
    assert.ok((await b.read(id, off, 4096)).equals(BLOB.subarray(off, off + 4096)), `read ${i}`);
  }
}

/** Blob requests the registry answered with 401 (those without a valid Authorization). */
function unauthorizedBlobRequests(r: FakeRegistry, valid: (auth: string | undefined) => boolean): number {
  return r.requests.filter((q) => q.url.includes('/blobs/') && !valid(q.headers.authorization)).length;
}

describe('WWW-Authenticate parsing', () => {
  it('reads Bearer and Basic challenges, quoted values with commas and escapes', () => {
    assert.deepEqual(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"'), {
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' },
    });
    assert.deepEqual(parseChallenge('Basic realm="x \\"y\\""'), { scheme: 'basic', params: { realm: 'x "y"' } });
    assert.deepEqual(parseChallenge('bearer Realm=http://a/t, Service=s'), { scheme: 'bearer', params: { realm: 'http://a/t', service: 's' } });
    assert.equal(parseChallenge(''), undefined);
    assert.equal(parseChallenge('  '), undefined);
  });
});

describe('registry auth', () => {
  it('Basic: one 401, then the credential on every request', async () => {
    const { registry, id } = await registryWith({ kind: 'basic', user: 'alice', password: 'pw1' });
    const b = backend(registry, { auth: ` ${b64('alice:pw1')}\n` });
    await readsRight(b, id, 4);
    assert.equal(unauthorizedBlobRequests(registry, (a) => a === `Basic ${b64('alice:pw1')}`), 1, 'only the very first request went without');
    assert.equal(registry.tokenRequests(), 0);
    assert.equal(b.client.authFlows, 1);
  });

  it('Basic without a credential, and with a wrong one, fail clearly', async () => {
    const { registry, id } = await registryWith({ kind: 'basic', user: 'alice', password: 'pw1' });
    await assert.rejects(backend(registry).read(id, 0, 10), (e: Error & { code?: string }) =>
      e.code === 'ND_ERR_AUTH' && /wants Basic authentication, but no credential is configured/.test(e.message));
    await assert.rejects(backend(registry, { auth: b64('alice:wrong') }).read(id, 0, 10), (e: Error & { code?: string }) =>
      e.code === 'ND_ERR_AUTH' && /the registry answered 401/.test(e.message));
  });

  for (const methods of [['POST'], ['GET', 'POST'], ['GET']] as ('GET' | 'POST')[][]) {
    it(`Bearer with a token endpoint accepting ${methods.join(' and ')}: one token, reused`, async () => {
      const { registry, id } = await registryWith({ kind: 'bearer', user: 'bob', password: 'secret', tokenMethods: methods });
      const b = backend(registry, { auth: b64('bob:secret') });
      await readsRight(b, id, 4);
      // the POST form comes first; a GET-only service (Harbor) is asked again with GET
      assert.equal(registry.tokenRequests('POST'), 1);
      assert.equal(registry.tokenRequests('GET'), methods.includes('POST') ? 0 : 1);
      const post = registry.requests.find((r) => r.url === '/token' && r.method === 'POST')!;
      assert.equal(post.headers['content-type'], 'application/x-www-form-urlencoded');
      assert.equal(post.headers.authorization, `Basic ${b64('bob:secret')}`);
      assert.equal(post.headers['user-agent'], 'nydusd/1.0.0');
      assert.equal(unauthorizedBlobRequests(registry, (a) => !!a && registry.validTokens.includes(a.slice(7))), 1);
      // a new token is needed (the old one expired): a GET-only service is asked with GET straight away
      registry.expireTokens();
      await readsRight(b, id, 1);
      assert.equal(registry.tokenRequests('POST'), 1 + (methods.includes('POST') ? 1 : 0));
      assert.equal(registry.tokenRequests('GET'), methods.includes('POST') ? 0 : 2);
      const get = registry.requests.find((r) => r.url.startsWith('/token?'));
      if (get) assert.match(get.url, /client_id=nydus-registry-client/);
    });
  }

  it('Bearer: access_token, no expires_in, anonymous token service', async () => {
    const { registry, id } = await registryWith({ kind: 'bearer', tokenField: 'access_token', omitExpiresIn: true });
    const b = backend(registry);
    await readsRight(b, id);
    assert.equal(registry.tokenRequests(), 1);
    assert.equal(registry.requests.find((r) => r.url === '/token')!.headers.authorization, undefined, 'no credential, no Basic to the token service');
  });

  it('Bearer refused by the token service: a clear error naming the realm and status', async () => {
    const { registry, id } = await registryWith({ kind: 'bearer', user: 'bob', password: 'secret' });
    await assert.rejects(backend(registry, { auth: b64('bob:nope') }).read(id, 0, 10), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ND_ERR_AUTH');
      assert.match(e.message, /token service http:\/\/127\.0\.0\.1:\d+\/token answered 401: \{"details":"invalid username or password"\}/);
      return true;
    });
  });

  it('registry_token is sent from the first request', async () => {
    const { registry, id } = await registryWith({ kind: 'bearer' });
    const token = registry.issueToken();
    const b = backend(registry, { registry_token: token });
    await readsRight(b, id);
    assert.ok(registry.requests.every((r) => r.headers.authorization === `Bearer ${token}`));
    assert.equal(registry.tokenRequests(), 0);
  });

  it('an expired token answered with a Basic challenge (Harbor) is dropped for a fresh Bearer challenge', async () => {
    const { registry, id } = await registryWith({ kind: 'bearer', user: 'bob', password: 'secret', expiredChallenge: 'basic' });
    const b = backend(registry, { auth: b64('bob:secret') });
    await readsRight(b, id, 1);
    registry.expireTokens();
    const n = registry.requests.length;
    await readsRight(b, id, 1);
    const flow = registry.requests.slice(n).map((r) => `${r.method} ${r.url.startsWith('/token') ? 'token' : 'blob'} ${r.headers.authorization?.split(' ')[0] ?? 'none'}`);
    assert.deepEqual(flow, ['GET blob Bearer', 'GET blob none', 'POST token Basic', 'GET blob Bearer']);
  });

  it('refreshes a token before it expires, without a read asking', async () => {
    // expires_in 25 s: refresh at issue + 25 - 20 - jitter (<= 2.5 s), i.e. within 5 s
    const { registry, id } = await registryWith({ kind: 'bearer', expiresIn: 25 });
    const lines: string[] = [];
    const b = backend(registry, {}, (_l, m) => lines.push(m));
    await readsRight(b, id, 1);
    assert.equal(registry.tokenRequests(), 1);
    // the log line comes once the refreshed token is in use
    await waitFor(() => lines.some((l) => /registry token refreshed from 127\.0\.0\.1:\d+ \(valid 25 s\)/.test(l)), 20_000, 'the token refresh');
    assert.equal(registry.tokenRequests(), 2);
    const newest = registry.validTokens.at(-1)!;
    // the refreshed token replaced the cached value: the next read carries it, with no 401 flow
    const n = registry.requests.length;
    await readsRight(b, id, 1);
    assert.deepEqual(registry.requests.slice(n).map((r) => r.headers.authorization), [`Bearer ${newest}`]);
    assert.equal(b.client.authFlows, 1);
  });

  it('the first request runs alone: a cold burst sends one unauthenticated request and fetches one token', async () => {
    const { registry, id } = await registryWith({ kind: 'bearer' });
    const b = backend(registry);
    const reads = Array.from({ length: 8 }, (_, i) => b.read(id, i * 1000, 1000));
    (await Promise.all(reads)).forEach((g, i) => assert.ok(g.equals(BLOB.subarray(i * 1000, (i + 1) * 1000))));
    assert.equal(registry.requests.filter((r) => r.url.includes('/blobs/') && !r.headers.authorization).length, 1);
    assert.equal(registry.tokenRequests(), 1);
  });

  it('rotation: a new Basic credential is used from the next request; an invalid one is refused and the old kept', async () => {
    const { registry, id } = await registryWith({ kind: 'basic', user: 'alice', password: 'pw1' });
    const lines: string[] = [];
    const b = backend(registry, { auth: b64('alice:pw1') }, (_l, m) => lines.push(m));
    await readsRight(b, id, 1);
    b.setCredential('not base64 at all!');
    assert.ok(lines.some((l) => /registry_auth is not base64.*the credential in use is kept/.test(l)));
    await readsRight(b, id, 1);
    registry.auth = { kind: 'basic', user: 'alice', password: 'pw2' };
    b.setCredential(b64('alice:pw2'));
    const n = registry.requests.length;
    await readsRight(b, id, 2);
    assert.ok(registry.requests.slice(n).every((r) => r.headers.authorization === `Basic ${b64('alice:pw2')}`));
    // '' drops it: anonymous, and a Basic challenge then has nothing to answer with
    b.setCredential('');
    await assert.rejects(b.read(id, 0, 10), /no credential is configured/);
  });

  it('rotation with a known Bearer challenge fetches a fresh token with the new credential at once', async () => {
    const { registry, id } = await registryWith({ kind: 'bearer', user: 'bob', password: 'old' });
    const b = backend(registry, { auth: b64('bob:old') });
    await readsRight(b, id, 1);
    registry.auth = { kind: 'bearer', user: 'bob', password: 'new' };
    b.setCredential(b64('bob:new'));
    await waitFor(() => registry.tokenRequests() === 2, 20_000, 'the token fetched with the new credential');
    assert.equal(registry.requests.filter((r) => r.url === '/token').at(-1)!.headers.authorization, `Basic ${b64('bob:new')}`);
    registry.expireTokens();
    await readsRight(b, id, 1);
  });

  it('checks the credential at creation, and takes IMAGE_PULL_AUTH when auth is absent', async () => {
    const { registry, id } = await registryWith({ kind: 'basic', user: 'carol', password: 'pw' });
    const cfg = (auth: string | null) => ({ type: 'registry' as const, registry: registryConfigFor(registry, { auth }) });
    await assert.rejects(createBackend(cfg('%%%')), /^Error: registry backend 127\.0\.0\.1:\d+\/library\/test: registry\.auth is not base64/);
    await assert.rejects(createBackend(cfg(b64('no-colon'))), /registry\.auth decodes to text without ':'/);
    await assert.rejects(createBackend(cfg(Buffer.from([0xff, 0xfe, 0x3a]).toString('base64'))), /registry\.auth does not decode to UTF-8/);
    await assert.rejects(createBackend(cfg(null), { env: { IMAGE_PULL_AUTH: b64('nocolon') } }), /IMAGE_PULL_AUTH decodes to text without ':'/);
    const fromEnv = await createBackend(cfg('  '), { env: { IMAGE_PULL_AUTH: b64('carol:pw') } });
    open.push(fromEnv);
    assert.ok((await fromEnv.read(id, 5, 50)).equals(BLOB.subarray(5, 55)));
    // auth wins over the environment
    const both = await createBackend(cfg(b64('carol:wrong')), { env: { IMAGE_PULL_AUTH: b64('carol:pw') } });
    open.push(both);
    await assert.rejects(both.read(id, 0, 1), /answered 401/);
  });
});
