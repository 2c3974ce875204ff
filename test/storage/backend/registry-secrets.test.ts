// Secrets never reach a log line (issue 11; nydusd-runtime.md 2.4 marks auth and registry_token as secrets): the whole
// registry stack (retry, metering, backend, client, token refresh) logs at debug level through Basic and Bearer flows,
// a refresh, a rotation, redirects, a refused credential and failing reads; neither the log nor any error text carries
// a credential (base64 or decoded), a password, registry_token or any token the token service issued.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import { MeteredBackend } from '../../../src/storage/backend/metered.js';
import { RegistryBackend } from '../../../src/storage/backend/registry/registry.js';
import { RateLimiter, RetryBackend, NETWORK_RETRY_POLICY } from '../../../src/storage/backend/retry.js';
import type { Log } from '../../../src/log.js';
import { waitFor } from '../../nydusd/helpers.js';
import { FakeObjectStore, FakeRegistry, registryConfigFor } from './fake-registry.js';

const BLOB = crypto.randomBytes(80_000);
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('secrets in logs', () => {
  const open: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    while (open.length) await open.pop()!.close();
  });

  it('no credential or token appears in any debug log line or error text', { timeout: 60_000 }, async () => {
    const lines: string[] = [];
    const log: Log = (level, msg) => lines.push(`${level} ${msg}`);
    const errors: string[] = [];
    const secrets = ['hunter2-old', 'hunter2-new', b64('dave:hunter2-old'), b64('dave:hunter2-new'), 'dave:hunter2'];

    // Bearer with a short token life (refresh), a redirect, then rotation
    const registry = await FakeRegistry.start({ auth: { kind: 'bearer', user: 'dave', password: 'hunter2-old', expiresIn: 22, expiredChallenge: 'basic' } });
    const store = await FakeObjectStore.start(registry.blobs);
    open.push(registry, store);
    const id = registry.addBlob(BLOB);
    const preset = registry.issueToken(1);
    const backend = new RegistryBackend(registryConfigFor(registry, { auth: b64('dave:hunter2-old'), registry_token: preset, timeout: 2 }), { log });
    const stack = new RetryBackend(new MeteredBackend(backend, log), NETWORK_RETRY_POLICY, new RateLimiter(1), log);
    open.push(stack);
    // a second blob, never redirected (the first one's redirect stays cached)
    const other = registry.addBlob(BLOB.subarray(1));
    const read = async (off: number, blob = id) => {
      try {
        const want = blob === id ? BLOB.subarray(off, off + 1000) : BLOB.subarray(1 + off, 1 + off + 1000);
        assert.ok((await stack.read(blob, off, 1000)).equals(want));
      } catch (err) {
        errors.push(String(err), String((err as Error).cause ?? ''));
        throw err;
      }
    };
    await read(0);
    registry.expireTokens();
    await read(1000);
    await waitFor(() => registry.tokenRequests() >= 3, 20_000, 'a token refresh');
    registry.redirectTo = store;
    await read(2000);
    store.denyNext = 1;
    await read(3000);
    registry.redirectTo = undefined;
    // rotation: the old password stops working, the new credential fetches a token at once
    registry.auth = { kind: 'bearer', user: 'dave', password: 'hunter2-new', expiresIn: 600 };
    stack.setCredential(b64('dave:hunter2-new'));
    stack.setCredential('invalid credential hunter2-new');
    await waitFor(() => registry.requests.filter((r) => r.url === '/token').at(-1)?.headers.authorization === `Basic ${b64('dave:hunter2-new')}`, 20_000, 'the rotated token fetch');
    registry.expireTokens();
    await read(4000, other);
    // failures: faults on every attempt, then a refused credential
    registry.faults.push(500, 500, 500, 500);
    await assert.rejects(read(5000, other), /failed after 4 attempts: the registry answered 500/);
    registry.auth = { kind: 'bearer', user: 'dave', password: 'something-else' };
    registry.expireTokens();
    await assert.rejects(read(6000, other), /token service .* answered 401/);

    // Basic, with a wrong credential first
    const basic = await FakeRegistry.start({ auth: { kind: 'basic', user: 'dave', password: 'hunter2-old' } });
    open.push(basic);
    basic.addBlob(BLOB);
    const wrong = new RegistryBackend(registryConfigFor(basic, { auth: b64('dave:hunter2-new') }), { log });
    open.push(wrong);
    await assert.rejects(wrong.read(id, 0, 10).catch((err: Error) => {
      errors.push(String(err));
      throw err;
    }), /the registry answered 401/);
    const right = new RetryBackend(new MeteredBackend(new RegistryBackend(registryConfigFor(basic, { auth: b64('dave:hunter2-old') }), { log }), log), NETWORK_RETRY_POLICY, new RateLimiter(1), log);
    open.push(right);
    assert.ok((await right.read(id, 10, 10)).equals(BLOB.subarray(10, 20)));

    const tokens = [...registry.issued, preset];
    assert.ok(tokens.length >= 5, `tokens issued: ${tokens.length}`);
    assert.ok(lines.length > 20, `the debug log saw the flows: ${lines.join('\n')}`);
    assert.ok(lines.some((l) => l.startsWith('debug ')), 'debug lines were captured');
    assert.ok(errors.length >= 2, 'failures were captured');
    for (const text of [...lines, ...errors]) {
      for (const s of [...secrets, ...tokens]) assert.ok(!text.includes(s), `a secret leaked into: ${text}`);
    }
  });
});
