// When RegistryAuth refreshes a Bearer token (nydusd-runtime.md 7.3), on mocked timers: at
// issued + expires_in - 20 s - jitter (jitter in [0, min(expires_in/10, 300)] s), never sooner than the reference's 5 s
// polling period (a token living less than 20 s is not refreshed in a loop), with back-off 5, 10, 20 ... s after failures,
// and not at all once closed.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { RegistryAuth } from '../../../src/storage/backend/registry/auth.js';
import type { BearerParams, Token, TokenFetcher } from '../../../src/storage/backend/registry/token.js';

const CHALLENGE = { scheme: 'bearer', params: { realm: 'http://127.0.0.1:1/token', service: 's', scope: 'repository:r:pull' } };

/** A token service on demand: each fetch resolves with the next token of `expiresIn` or fails while `failing`. */
function fakeTokens(expiresIn: number) {
  const calls: (string | undefined)[] = [];
  const state = { failing: false };
  const fetcher = {
    requests: 0,
    async fetch(_p: BearerParams, credential: string | undefined): Promise<Token> {
      calls.push(credential);
      if (state.failing) throw new Error('token service down');
      return { token: `t${calls.length}`, expiresIn, issuedAt: Date.now() };
    },
  };
  return { fetcher: fetcher as unknown as TokenFetcher, calls, state };
}

/** Lets the promise callbacks of a refresh run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

describe('token refresh timing', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 }));
  afterEach(() => mock.timers.reset());

  it('refreshes inside [expires_in - 20 - 60, expires_in - 20] s for a 600 s token', async () => {
    const { fetcher, calls } = fakeTokens(600);
    const auth = new RegistryAuth(fetcher, { credential: 'Y3JlZDpz' });
    auth.accept(await auth.authorize(CHALLENGE));
    assert.equal(calls.length, 1);
    mock.timers.tick(520_000 - 1);
    await settle();
    assert.equal(calls.length, 1, 'not before 600 - 20 - 60 s');
    mock.timers.tick(60_001);
    await settle();
    assert.equal(calls.length, 2, 'by 600 - 20 s');
    assert.equal(auth.header, 'Bearer t2');
    auth.close();
  });

  it('a token shorter-lived than the margin is refreshed every 5 s, not in a loop', async () => {
    const { fetcher, calls } = fakeTokens(3);
    const auth = new RegistryAuth(fetcher, {});
    auth.accept(await auth.authorize(CHALLENGE));
    mock.timers.tick(4_999);
    await settle();
    assert.equal(calls.length, 1);
    mock.timers.tick(1);
    await settle();
    assert.equal(calls.length, 2);
    auth.close();
    mock.timers.tick(60_000);
    await settle();
    assert.equal(calls.length, 2, 'nothing after close');
  });

  it('backs off 5, 10, 20 s after failed refreshes', async () => {
    const { fetcher, calls, state } = fakeTokens(25);
    const auth = new RegistryAuth(fetcher, {});
    auth.accept(await auth.authorize(CHALLENGE));
    state.failing = true;
    // first refresh at 25 - 20 - jitter (<= 2.5 s), floored to 5 s
    mock.timers.tick(5_000);
    await settle();
    assert.equal(calls.length, 2);
    for (const wait of [5_000, 10_000, 20_000]) {
      mock.timers.tick(wait - 1);
      await settle();
      const n: number = calls.length;
      mock.timers.tick(1);
      await settle();
      assert.equal(calls.length, n + 1, `a retry after ${wait} ms`);
    }
    state.failing = false;
    mock.timers.tick(40_000);
    await settle();
    assert.match(auth.header ?? '', /^Bearer t\d+$/);
    auth.close();
  });
});
