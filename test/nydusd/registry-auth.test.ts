// nydusd's registry backend against the real docker-registry with authentication (issue 11, Auth; spec
// nydusd-runtime.md 2.4, 2.6, 7.2, 7.3): htpasswd Basic; token auth with a test token service (JWTs signed by a key
// made by the test); tokens that expire while the mount is read (more than one token issued, reads stay right);
// credentials rotated through PUT /api/v1/config while reading (the token service refuses the old password from then
// on); wrong credentials are an EIO with a log line naming the blob and saying unauthorized, within the timeout,
// never a hang. Every file served is compared with the fixture's md5 listing, and no password, base64 credential
// or token ever appears in the daemon's debug log.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { request } from '../api/helpers.js';
import { basic, FrontEnd, Registry, RegistryClient, TokenService } from '../helpers/registry.js';
import { cleanupDaemons, removeDir, requireEnv, tempDir, waitFor } from './helpers.js';
import {
  assertAllEio, assertAllRight, assertNoSecrets, backendCounters, fixtureGroups, fixtureSums, FIXTURE, pushFixture, readFiles, startRegistryDaemon,
} from './registry-helpers.js';

const REPO = 'nydus/fixture';
const TIMEOUT_S = 3;
/** a generous bound for one read that must fail: every attempt (4, spec 7.4) timing out, and slack */
const FAIL_BOUND_MS = 4 * (TIMEOUT_S + 2) * 1000 + 30_000;

const ALICE = { user: 'alice', password: 'alice-Pa55word-htpasswd' };
const BOB = { user: 'bob', password: 'bob-Pa55word-token' };

describe('nydusd on a registry with authentication', () => {
  let work: string;
  let basicReg: Registry;
  let tokens: TokenService;
  let tokenReg: Registry;
  const closers: Array<() => Promise<void>> = [];
  const files = [...fixtureSums().keys()];
  const groups = fixtureGroups();

  before(async () => {
    requireEnv(['docker-registry', 'htpasswd', 'openssl']);
    work = tempDir('registry-auth');
    basicReg = await Registry.start({ kind: 'htpasswd', users: { [ALICE.user]: ALICE.password } }, path.join(work, 'basic-registry'));
    closers.push(() => basicReg.destroy());
    await pushFixture(new RegistryClient(basicReg.url, ALICE), REPO);
    tokens = await TokenService.start(work);
    closers.push(() => tokens.close());
    tokens.users.set(BOB.user, BOB.password);
    tokenReg = await Registry.start({ kind: 'token', tokens }, path.join(work, 'token-registry'));
    closers.push(() => tokenReg.destroy());
    await pushFixture(new RegistryClient(tokenReg.url, BOB, 'pull,push'), REPO);
  });
  after(async () => {
    await cleanupDaemons();
    for (const c of closers.reverse()) await c().catch(() => undefined);
    removeDir(work);
  });

  /** Token requests nydusd made (the reference's client id, spec 7.3), as opposed to the harness's own. */
  const daemonTokenRequests = () => tokens.requests.filter((r) => r.clientId === 'nydus-registry-client');
  /** every token granted so far, and the signature of each alone (what makes a token usable) */
  const allTokens = () =>
    Object.fromEntries(tokens.requests.filter((r) => r.token).flatMap((r, i) => [[`token #${i}`, r.token!], [`signature of token #${i}`, r.token!.split('.')[2]!]]));

  it('htpasswd Basic: every file byte-exact, credentials sent, none logged', { timeout: 120_000 }, async () => {
    const front = await FrontEnd.start(basicReg);
    closers.push(() => front.close());
    const auth = basic(ALICE.user, ALICE.password);
    const d = await startRegistryDaemon(path.join(work, 'reg-basic'), { host: front.host, repo: REPO, auth, timeout: TIMEOUT_S });
    assertAllRight(await readFiles(d.mnt, files, 60_000), 'Basic');
    const counters = await backendCounters(d.daemon);
    assert.ok(counters.reads > 0 && counters.errors === 0, `backend counters: ${JSON.stringify(counters)}`);
    const served = front.blobGets.filter((g) => g.status >= 200 && g.status < 300);
    assert.ok(served.length > 0, 'blob GETs were answered');
    assert.ok(served.every((g) => g.authorization === `Basic ${auth}`), 'every served blob GET carried the configured credential');
    assert.ok(served.every((g) => g.digest === `sha256:${FIXTURE.blobId}`));
    await d.daemon.stop();
    assertNoSecrets(d.daemon.stderr, { password: ALICE.password, 'base64 credential': auth });
  });

  it('token auth: a token from the realm for the repository pull scope, every file byte-exact, nothing secret logged', { timeout: 120_000 }, async () => {
    const before = daemonTokenRequests().length;
    const auth = basic(BOB.user, BOB.password);
    const d = await startRegistryDaemon(path.join(work, 'reg-token'), { host: tokenReg.host, repo: REPO, auth, timeout: TIMEOUT_S });
    assertAllRight(await readFiles(d.mnt, files, 60_000), 'token auth');
    const mine = daemonTokenRequests().slice(before);
    const granted = mine.filter((r) => r.token);
    assert.ok(granted.length >= 1, `nydusd obtained a token: ${JSON.stringify(mine.map((r) => ({ m: r.method, s: r.status })))}`);
    for (const r of granted) {
      assert.equal(r.user, BOB.user);
      assert.equal(r.service, tokens.service);
      assert.deepEqual(r.scopes, [`repository:${REPO}:pull`]);
    }
    await d.daemon.stop();
    assertNoSecrets(d.daemon.stderr, { password: BOB.password, 'base64 credential': auth, ...allTokens() });
  });

  it('tokens expire while the mount is read: new ones are fetched and every read stays right', { timeout: 180_000 }, async () => {
    tokens.expiresIn = 3;
    try {
      const before = daemonTokenRequests().length;
      const d = await startRegistryDaemon(path.join(work, 'reg-expiry'), { host: tokenReg.host, repo: REPO, auth: basic(BOB.user, BOB.password), timeout: TIMEOUT_S });
      const granted = () => daemonTokenRequests().slice(before).filter((r) => r.token);
      let reads = 0;
      for (const [name, group] of Object.entries(groups)) {
        if (name !== 'A') {
          // every token the daemon holds has expired at the registry before the next cold group is read
          const last = granted().at(-1)!;
          await waitFor(() => Date.now() > last.expiresAt! + 500, 30_000, `token ${granted().length} to expire`);
        }
        assertAllRight(await readFiles(d.mnt, group, 60_000), `group ${name}`);
        const now = (await backendCounters(d.daemon)).reads;
        assert.ok(now > reads, `group ${name} was read cold from the registry (backend reads ${reads} -> ${now})`);
        reads = now;
      }
      assert.ok(granted().length >= 2, `more than one token was issued to nydusd (${granted().length})`);
      assertAllRight(await readFiles(d.mnt, files, 60_000), 'everything again');
      await d.daemon.stop();
      assertNoSecrets(d.daemon.stderr, { password: BOB.password, 'base64 credential': basic(BOB.user, BOB.password), ...allTokens() });
    } finally {
      tokens.expiresIn = 300;
    }
  });

  it('credentials rotated through PUT /api/v1/config while reading: the new password is used, reads stay right', { timeout: 180_000 }, async () => {
    const user = 'erin';
    const oldPw = 'erin-OLD-password-1';
    const newPw = 'erin-NEW-password-2';
    tokens.users.set(user, oldPw);
    // longer than the daemon's 5 s poll of the configuration store (spec 2.6, 7.3), so that the old token still
    // covers the reads between the revocation and the moment the new credential is taken up
    tokens.expiresIn = 8;
    try {
      const before = daemonTokenRequests().length;
      const d = await startRegistryDaemon(path.join(work, 'reg-rotate'), { host: tokenReg.host, repo: REPO, auth: basic(user, oldPw), timeout: TIMEOUT_S });
      const mine = () => daemonTokenRequests().slice(before);
      assertAllRight(await readFiles(d.mnt, groups.A, 60_000), 'before the rotation');
      assert.ok(mine().some((r) => r.token && r.password === oldPw), 'a token was granted for the old password');

      // the token service refuses the old password from now on; the daemon is told the new one while a reader runs
      tokens.users.set(user, newPw);
      const rotatedAt = Date.now();
      const reading = readFiles(d.mnt, groups.B, FAIL_BOUND_MS);
      const put = await request(d.sock, 'PUT', '/api/v1/config?id=%2F', { body: JSON.stringify({ registry_auth: basic(user, newPw) }) });
      assert.equal(put.status, 204, put.text);
      const got = await request(d.sock, 'GET', '/api/v1/config?id=%2F');
      assert.deepEqual(got.json, { registry_auth: '<redacted>' });
      // the reads racing the rotation may still use the old token (valid until it expires) or the new one
      assertAllRight(await reading, 'during the rotation');

      await waitFor(() => mine().some((r) => r.token && r.password === newPw), 30_000, 'a token granted for the new password');
      const lastOld = Math.max(...mine().filter((r) => r.token && r.password === oldPw).map((r) => r.expiresAt!));
      await waitFor(() => Date.now() > lastOld + 500, 30_000, 'every token of the old password to expire');
      assertAllRight(await readFiles(d.mnt, groups.C, 60_000), 'after the old tokens expired');
      assert.ok(mine().every((r) => !(r.token && r.password === oldPw && r.at > rotatedAt)), 'no token for the old password after the rotation');
      await d.daemon.stop();
      assertNoSecrets(d.daemon.stderr, {
        'old password': oldPw, 'new password': newPw, 'old base64 credential': basic(user, oldPw), 'new base64 credential': basic(user, newPw), ...allTokens(),
      });
    } finally {
      tokens.users.delete(user);
      tokens.expiresIn = 300;
    }
  });

  it('registry_token: the configured bearer token is used from the first request, no token is asked for, none logged', { timeout: 120_000 }, async () => {
    const before = daemonTokenRequests().length;
    const token = tokens.mint(BOB.user, [{ type: 'repository', name: REPO, actions: ['pull'] }], 600);
    const d = await startRegistryDaemon(path.join(work, 'reg-preset-token'), { host: tokenReg.host, repo: REPO, registryToken: token, timeout: TIMEOUT_S });
    assertAllRight(await readFiles(d.mnt, files, 60_000), 'registry_token');
    assert.equal(daemonTokenRequests().length, before, 'no token request was needed');
    await d.daemon.stop();
    assertNoSecrets(d.daemon.stderr, { 'registry_token': token, 'its signature': token.split('.')[2]! });
  });

  for (const mode of ['htpasswd', 'token'] as const) {
    it(`${mode}: wrong credentials are an EIO and a log line naming the blob, within the timeout`, { timeout: 180_000 }, async () => {
      const reg = mode === 'htpasswd' ? basicReg : tokenReg;
      const user = mode === 'htpasswd' ? ALICE.user : BOB.user;
      const wrong = basic(user, 'not-the-Password-9');
      const d = await startRegistryDaemon(path.join(work, `reg-wrong-${mode}`), { host: reg.host, repo: REPO, auth: wrong, timeout: TIMEOUT_S });
      const r = await readFiles(d.mnt, [groups.A[0]!, groups.C[0]!], 2 * FAIL_BOUND_MS);
      assertAllEio(r, 'wrong credentials');
      for (const [f, res] of r) assert.ok(res.ms < FAIL_BOUND_MS, `${f} took ${res.ms} ms to fail`);
      await waitFor(
        () => d.daemon.stderr.split('\n').some((l) => l.includes(FIXTURE.blobId) && /unauthori[sz]ed/i.test(l)),
        10_000,
        'a log line naming the blob and saying unauthorized',
      );
      assert.ok(d.daemon.running, 'the daemon keeps running');
      await d.daemon.stop();
      assertNoSecrets(d.daemon.stderr, { 'wrong password': 'not-the-Password-9', 'base64 credential': wrong, ...allTokens() });
    });
  }
});
