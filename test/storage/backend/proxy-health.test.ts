// The proxy health check (src/storage/backend/http/proxy-health.ts, nydusd-runtime.md 7.5) on mocked timers with an
// injected ping: checks every `check_interval` seconds, 200-399 healthy and anything else (a status, a failure)
// unhealthy, the proxy healthy until a check says otherwise, no checks while the backend has been idle for
// `check_pause_elapsed` seconds, never two at once, none after close.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { ProxyHealth } from '../../../src/storage/backend/http/proxy-health.js';

/** Lets the promise callbacks of a check run (the injected ping resolves at once). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('proxy health check', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_000_000 }));
  afterEach(() => mock.timers.reset());

  function checker(answers: Array<number | Error>, over: { checkInterval?: number; checkPauseElapsed?: number; lastActivity?: () => number } = {}) {
    const logs: string[] = [];
    let pings = 0;
    const health = new ProxyHealth({
      pingUrl: 'http://127.0.0.1:1/server/ping',
      checkInterval: over.checkInterval ?? 5,
      checkPauseElapsed: over.checkPauseElapsed ?? 300,
      timeout: 2,
      lastActivity: over.lastActivity ?? (() => Date.now()),
      proxy: 'http://127.0.0.1:1',
      log: (level, m) => logs.push(`${level} ${m}`),
      ping: async () => {
        pings++;
        const a = answers.shift() ?? 200;
        if (a instanceof Error) throw a;
        return a;
      },
    });
    return { health, logs, pings: () => pings };
  }

  it('pings every check_interval; 200-399 healthy, a status or a failure unhealthy; starts healthy', async () => {
    const { health, logs, pings } = checker([204, 302, 404, new Error('connect ECONNREFUSED'), 500, 200]);
    try {
      assert.equal(health.healthy, true);
      const seen: boolean[] = [];
      for (let i = 0; i < 6; i++) {
        mock.timers.tick(4_999);
        await settle();
        assert.equal(pings(), i, 'no ping before the interval is up');
        mock.timers.tick(1);
        await settle();
        seen.push(health.healthy);
      }
      assert.deepEqual(seen, [true, true, false, false, false, true]);
      assert.deepEqual(logs, [
        'warn proxy http://127.0.0.1:1 is not healthy (ping http://127.0.0.1:1/server/ping answered 404)',
        'info proxy http://127.0.0.1:1 is healthy again (ping http://127.0.0.1:1/server/ping answered 200); requests go through it',
      ]);
    } finally {
      await health.close();
    }
  });

  it('skips checks while the backend has been idle for check_pause_elapsed, resumes with the next request', async () => {
    let last = Date.now();
    const { health, pings } = checker(Array(11).fill(500), { checkInterval: 1, checkPauseElapsed: 10, lastActivity: () => last });
    try {
      for (let i = 0; i < 30; i++) {
        mock.timers.tick(1000);
        await settle();
      }
      assert.equal(pings(), 10, 'checks during the first 10 s of silence only');
      assert.equal(health.healthy, false);
      last = Date.now();
      mock.timers.tick(1000);
      await settle();
      assert.equal(pings(), 11);
    } finally {
      await health.close();
    }
  });

  it('never runs two checks at once, and none after close (a check in flight is aborted)', async () => {
    let release: (status: number) => void = () => undefined;
    let pings = 0;
    let aborted = false;
    const health = new ProxyHealth({
      pingUrl: 'http://127.0.0.1:1/ping', checkInterval: 1, checkPauseElapsed: 0, timeout: 2, lastActivity: () => 0, proxy: 'p',
      ping: (_url, signal) => {
        pings++;
        signal.addEventListener('abort', () => (aborted = true));
        return new Promise<number>((resolve) => (release = resolve));
      },
    });
    mock.timers.tick(1000);
    mock.timers.tick(1000);
    mock.timers.tick(1000);
    await settle();
    assert.equal(pings, 1, 'a slow ping is not overlapped (check_pause_elapsed 0: never paused)');
    await health.close();
    assert.ok(aborted);
    release(500);
    await settle();
    assert.equal(health.healthy, true, 'a check ended by close changes nothing');
    mock.timers.tick(10_000);
    await settle();
    assert.equal(pings, 1);
  });
});
