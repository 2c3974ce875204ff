// nydusd's registry backend when the registry redirects blob GETs to object storage (issue 11, Redirects; spec
// nydusd-runtime.md 7.2 steps 2 and 5): a front end before the real docker-registry (htpasswd Basic or token auth)
// answers every blob GET the registry would serve with a 307 to a second address (a storage server with the same
// bytes, whose URLs expire).
// Asserted: every file served is byte-exact; the redirect is cached per blob (one 307 however many reads), the
// credential never reaches the storage server, an expired URL (403) is resolved again through the registry, a
// storage that refuses everything is an EIO within the timeout and no hang, and blob_url_scheme /
// blob_redirected_host rewrite a Location nydusd could not otherwise reach.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { basic, FrontEnd, Registry, RegistryClient, StorageServer, TokenService } from '../helpers/registry.js';
import { cleanupDaemons, removeDir, requireEnv, tempDir } from './helpers.js';
import { assertAllEio, assertAllRight, fixtureGroups, fixtureSums, FIXTURE, pushFixture, readFiles, startRegistryDaemon } from './registry-helpers.js';

const REPO = 'nydus/redirected';
const DIGEST = `sha256:${FIXTURE.blobId}`;
const TIMEOUT_S = 3;
const FAIL_BOUND_MS = 4 * (TIMEOUT_S + 2) * 1000 + 30_000;
const USER = { user: 'frank', password: 'frank-Redirect-pw-7' };

describe('nydusd on a registry that redirects blob GETs', () => {
  let work: string;
  let reg: Registry;
  let tokenReg: Registry;
  const closers: Array<() => Promise<void>> = [];
  const files = [...fixtureSums().keys()];
  const groups = fixtureGroups();
  const auth = basic(USER.user, USER.password);

  before(async () => {
    requireEnv(['docker-registry', 'htpasswd']);
    work = tempDir('registry-redirect');
    reg = await Registry.start({ kind: 'htpasswd', users: { [USER.user]: USER.password } }, path.join(work, 'registry'));
    closers.push(() => reg.destroy());
    await pushFixture(new RegistryClient(reg.url, USER), REPO);
    const tokens = await TokenService.start(work);
    closers.push(() => tokens.close());
    tokens.users.set(USER.user, USER.password);
    tokenReg = await Registry.start({ kind: 'token', tokens }, path.join(work, 'token-registry'));
    closers.push(() => tokenReg.destroy());
    await pushFixture(new RegistryClient(tokenReg.url, USER, 'pull,push'), REPO);
  });
  after(async () => {
    await cleanupDaemons();
    for (const c of closers.reverse()) await c().catch(() => undefined);
    removeDir(work);
  });

  /** A front end redirecting to a fresh storage server holding the fixture's blob. */
  async function redirecting(target = reg): Promise<{ front: FrontEnd; storage: StorageServer }> {
    const storage = await StorageServer.start();
    closers.push(() => storage.close());
    storage.blobs.set(DIGEST, FIXTURE.blob);
    const front = await FrontEnd.start(target);
    closers.push(() => front.close());
    front.redirectTo = storage;
    return { front, storage };
  }

  for (const mode of ['htpasswd', 'token'] as const) {
    it(`${mode}: 307 to the storage: bytes right, one redirect per blob, re-resolved after the URL expires, no credential sent there`, { timeout: 180_000 }, async () => {
      const { front, storage } = await redirecting(mode === 'token' ? tokenReg : reg);
      const d = await startRegistryDaemon(path.join(work, `cached-${mode}`), { host: front.host, repo: REPO, auth, timeout: TIMEOUT_S });

      assertAllRight(await readFiles(d.mnt, groups.A, 60_000), 'group A');
      assert.equal(front.redirects(DIGEST), 1, 'one 307 for the first read');
      const afterA = storage.gets(DIGEST);
      assert.ok(afterA >= 1, 'the data came from the storage server');

      assertAllRight(await readFiles(d.mnt, groups.B, 60_000), 'group B');
      assert.ok(storage.gets(DIGEST) > afterA, 'group B was read cold, from the storage server');
      assert.equal(front.redirects(DIGEST), 1, 'the redirect is cached: still one 307 after more reads of the blob');
      assert.ok(storage.requests.every((r) => r.status === 206), `every storage GET was a ranged 206: ${JSON.stringify(storage.requests.map((r) => r.status))}`);

      // the signed URL expires: the storage answers 403 for it, and the backend asks the registry again
      storage.generation = 2;
      const beforeC = storage.requests.length;
      assertAllRight(await readFiles(d.mnt, groups.C, 60_000), 'group C after the URL expired');
      const later = storage.requests.slice(beforeC);
      assert.equal(later[0]!.status, 403, 'the cached URL was tried first and refused');
      assert.equal(later[0]!.gen, 1);
      assert.ok(later.some((r) => r.gen === 2 && r.status === 206), 'the data came from the new URL');
      assert.equal(front.redirects(DIGEST), 2, 'exactly one more 307 after the expiry');

      for (const r of storage.requests) assert.equal(r.authorization, undefined, 'Authorization reached the storage server');
      const scheme = mode === 'token' ? 'Bearer ' : 'Basic ';
      assert.ok(front.blobGets.filter((g) => g.action === 'redirect').every((g) => g.authorization?.startsWith(scheme)), `the registry got ${scheme}credentials`);
      assertAllRight(await readFiles(d.mnt, files, 60_000), 'everything again');
      await d.daemon.stop();
    });
  }

  it('a storage server refusing everything: EIO within the timeout, then right with no remount once it serves', { timeout: 180_000 }, async () => {
    const { front, storage } = await redirecting();
    storage.forbidAll = true;
    const d = await startRegistryDaemon(path.join(work, 'forbidden'), { host: front.host, repo: REPO, auth, timeout: TIMEOUT_S });
    const r = await readFiles(d.mnt, [groups.A[0]!, groups.C[0]!], 2 * FAIL_BOUND_MS);
    assertAllEio(r, 'storage answering 403');
    for (const [f, res] of r) assert.ok(res.ms < FAIL_BOUND_MS, `${f} took ${res.ms} ms to fail`);
    assert.ok(storage.requests.length > 0 && storage.requests.every((x) => x.status === 403));
    assert.ok(d.daemon.stderr.split('\n').some((l) => l.includes(FIXTURE.blobId) && l.includes('403')), 'a log line names the blob and the 403');
    storage.forbidAll = false;
    assertAllRight(await readFiles(d.mnt, files, 60_000), 'once the storage serves again');
    for (const x of storage.requests) assert.equal(x.authorization, undefined, 'Authorization reached the storage server');
    await d.daemon.stop();
  });

  it('blob_url_scheme and blob_redirected_host rewrite the Location', { timeout: 120_000 }, async () => {
    const { front, storage } = await redirecting();
    front.locationOverride = { scheme: 'https', host: 'storage.invalid:9' };
    const d = await startRegistryDaemon(path.join(work, 'rewritten'), {
      host: front.host, repo: REPO, auth, timeout: TIMEOUT_S, blobUrlScheme: 'http', blobRedirectedHost: storage.host,
    });
    assertAllRight(await readFiles(d.mnt, files, 60_000), 'rewritten redirects');
    assert.equal(front.redirects(DIGEST), 1);
    assert.ok(storage.gets(DIGEST) >= 1, 'the rewritten URL reached the storage server');
    await d.daemon.stop();
  });
});
