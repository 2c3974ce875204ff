// Blob redirects (nydusd-runtime.md 7.2 steps 2 and 5): a registry answering blob GETs with 307 to a second server
// (an object store). We follow it ourselves, byte-exact, never with the registry's Authorization; the target is cached
// per blob (the registry is asked once per blob, counted) and re-resolved when the target answers 403 (an expired
// signed URL); blob_url_scheme and blob_redirected_host rewrite the Location.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import { RegistryBackend } from '../../../src/storage/backend/registry/registry.js';
import { FakeObjectStore, FakeRegistry, registryConfigFor, type FakeAuth } from './fake-registry.js';

const BLOB_A = crypto.randomBytes(200_000);
const BLOB_B = crypto.randomBytes(50_000);
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('registry redirects', () => {
  const open: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    while (open.length) await open.pop()!.close();
  });

  async function setUp(auth: FakeAuth = { kind: 'none' }) {
    const registry = await FakeRegistry.start({ auth });
    const store = await FakeObjectStore.start(registry.blobs);
    registry.redirectTo = store;
    open.push(registry, store);
    return { registry, store, a: registry.addBlob(BLOB_A), b: registry.addBlob(BLOB_B) };
  }

  for (const auth of [{ kind: 'basic', user: 'u', password: 'p' }, { kind: 'bearer', user: 'u', password: 'p' }] as FakeAuth[]) {
    it(`follows a 307 to the object store, caches it per blob, never sends Authorization there (${auth.kind})`, async () => {
      const { registry, store, a, b } = await setUp(auth);
      const backend = new RegistryBackend(registryConfigFor(registry, { auth: b64('u:p') }));
      open.push(backend);
      for (let i = 0; i < 5; i++) assert.ok((await backend.read(a, i * 30_000, 30_000)).equals(BLOB_A.subarray(i * 30_000, (i + 1) * 30_000)));
      assert.ok((await backend.read(b, 10, 1000)).equals(BLOB_B.subarray(10, 1010)));
      assert.ok((await backend.read(b, 2000, 1000)).equals(BLOB_B.subarray(2000, 3000)));
      assert.equal(backend.redirects.resolved, 2, 'one redirect resolution per blob');
      assert.equal(registry.count(`/v2/${registry.repo}/blobs/sha256:${a}`, 'GET') - 1, 1, 'blob A: one 401, then one authorized GET');
      assert.equal(store.requests.length, 7);
      assert.ok(store.requests.every((r) => r.headers.authorization === undefined), 'no Authorization at the redirect target');
      assert.ok(store.requests.every((r) => /^bytes=\d+-\d+$/.test(r.headers.range ?? '')), 'ranged at the target too');
    });
  }

  it('re-resolves a cached redirect that answers 403, and fails clearly when the fresh one does too', async () => {
    const { registry, store, a } = await setUp();
    const backend = new RegistryBackend(registryConfigFor(registry));
    open.push(backend);
    assert.ok((await backend.read(a, 0, 100)).equals(BLOB_A.subarray(0, 100)));
    const first = backend.redirects.get(a)!.href;
    store.denyNext = 1;
    assert.ok((await backend.read(a, 100, 100)).equals(BLOB_A.subarray(100, 200)));
    assert.equal(backend.redirects.resolved, 2);
    assert.notEqual(backend.redirects.get(a)!.href, first, 'a new signed URL');
    store.denyNext = 2;
    await assert.rejects(backend.read(a, 0, 10), (e: Error & { code?: string }) =>
      e.code === 'ND_ERR_REDIRECT' && /redirect target http:\/\/127\.0\.0\.1:\d+ answered 403: <Error><Code>AccessDenied/.test(e.message));
    assert.equal(backend.redirects.get(a), undefined, 'a failed redirect is not cached');
    assert.ok((await backend.read(a, 0, 10)).equals(BLOB_A.subarray(0, 10)));
  });

  it('rewrites the Location with blob_url_scheme and blob_redirected_host', async () => {
    const { registry, store, a } = await setUp();
    // the registry names an https host that does not exist; the rewrite points it at the store over http
    registry.locationOrigin = 'https://objects.invalid:9';
    const backend = new RegistryBackend(registryConfigFor(registry, { blob_url_scheme: 'http', blob_redirected_host: store.host }));
    open.push(backend);
    assert.ok((await backend.read(a, 500, 5000)).equals(BLOB_A.subarray(500, 5500)));
    assert.equal(backend.redirects.get(a)!.origin, store.url);
    assert.equal(store.requests.length, 1);
  });

  it('refuses a whole-blob answer from the redirect target too', async () => {
    const { registry, store, a } = await setUp();
    const backend = new RegistryBackend(registryConfigFor(registry));
    open.push(backend);
    store.faults.push('whole');
    await assert.rejects(backend.read(a, 0, 10), /answered 200 instead of 206/);
  });
});
