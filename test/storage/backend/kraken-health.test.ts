// The kraken backend's agent health (src/storage/backend/kraken/health.ts; issue 11 scope 4: "`/health` drives a
// health check like the proxy's"): checks every check_interval mark the agent unhealthy on a non-200 and healthy again
// on a 200; while it is unhealthy a read that needs a download fails at once with the reason and sends no GET, while
// a blob already spooled keeps being answered; an agent that refuses connections is marked unhealthy by the failed
// download itself; without health checks (check_interval 0) nothing marks it unhealthy; close() stops the checks.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { BackendError } from '../../../src/storage/backend/errors.js';
import { KrakenBackend } from '../../../src/storage/backend/kraken/kraken.js';
import { waitFor } from '../../nydusd/helpers.js';
import { freePort } from '../../helpers/registry.js';
import { FakeKrakenAgent, krakenConfigFor } from './fake-kraken-agent.js';

const A = crypto.randomBytes(200_000);
const B = crypto.randomBytes(300_000);

async function backendError(p: Promise<unknown>): Promise<BackendError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof BackendError, `a BackendError, got ${String(err)}`);
    return err;
  }
  assert.fail('the read succeeded');
}

describe('kraken backend: agent health', () => {
  let agent: FakeKrakenAgent;
  let a: string;
  let b: string;
  before(async () => {
    agent = await FakeKrakenAgent.start();
    a = agent.addBlob(A);
    b = agent.addBlob(B);
  });
  after(() => agent.close());

  it('checks /health every check_interval: unhealthy reads fail fast without a GET, spooled blobs keep reading, healthy again reads', async () => {
    const logged: string[] = [];
    const k = new KrakenBackend(krakenConfigFor(agent, { check_interval: 0.05 }), { log: (level, line) => logged.push(`${level} ${line}`) });
    try {
      assert.ok((await k.read(a, 0, A.length)).equals(A), 'blob A spooled while healthy');
      agent.healthStatus = 503;
      await waitFor(() => !k.health.healthy, 10_000, 'the agent marked unhealthy');
      const gets = agent.blobGets();
      const err = await backendError(k.read(b, 0, 10));
      assert.equal(err.code, 'ND_ERR_CONNECT');
      assert.match(err.message, new RegExp(`^kraken: blob ${b} \\[0, \\+10\\): the Kraken agent at ${agent.origin} is unhealthy \\(GET /health answered 503: unhealthy\\); not downloading$`));
      assert.equal(agent.blobGets(), gets, 'no GET while unhealthy');
      assert.ok((await k.read(a, 1000, 5000)).equals(A.subarray(1000, 6000)), 'a spooled blob keeps reading');
      assert.ok(logged.some((l) => l === `warn kraken: the Kraken agent at ${agent.origin} is unhealthy: GET /health answered 503: unhealthy`), logged.join('\n'));

      agent.healthStatus = 200;
      await waitFor(() => k.health.healthy, 10_000, 'the agent healthy again');
      assert.ok((await k.read(b, 0, B.length)).equals(B));
      assert.ok(logged.some((l) => l === `info kraken: the Kraken agent at ${agent.origin} is healthy again`));
      assert.equal(logged.filter((l) => l.includes('is unhealthy:')).length, 1, 'a transition is logged once, not every check');
    } finally {
      agent.healthStatus = 200;
      await k.close();
    }
    assert.equal(k.health.scheduled, false, 'close() stopped the checks');
  });

  it('an agent that refuses connections fails the read and marks itself unhealthy until a check passes', async () => {
    const port = await freePort();
    // health checks on but far apart: the state changes here come from the failed download and from check()
    const k = new KrakenBackend(krakenConfigFor(`http://127.0.0.1:${port}`, { check_interval: 3600 }));
    try {
      const first = await backendError(k.read(a, 0, 10));
      assert.equal(first.code, 'ND_ERR_CONNECT');
      assert.match(first.message, new RegExp(`cannot connect to http://127.0.0.1:${port}`));
      assert.equal(k.health.healthy, false);
      assert.equal(k.downloads, 1);
      const second = await backendError(k.read(a, 0, 10));
      assert.match(second.message, /is unhealthy \(cannot connect to .*\); not downloading$/);
      assert.equal(k.downloads, 1, 'no second download attempt while unhealthy');
      await k.health.check();
      assert.equal(k.health.healthy, false, 'the check found it still down');
      assert.match(k.health.reason, /^GET \/health failed: cannot connect to/);
    } finally {
      await k.close();
    }
  });

  it('without health checks (check_interval 0) a refused download does not mark the agent unhealthy', async () => {
    const port = await freePort();
    const k = new KrakenBackend(krakenConfigFor(`http://127.0.0.1:${port}`, { check_interval: 0 }));
    try {
      assert.equal((await backendError(k.read(a, 0, 10))).code, 'ND_ERR_CONNECT');
      assert.equal(k.health.healthy, true);
      assert.equal((await backendError(k.read(a, 0, 10))).code, 'ND_ERR_CONNECT');
      assert.equal(k.downloads, 2, 'each read tries the agent again');
      assert.equal(k.health.checks, 0);
    } finally {
      await k.close();
    }
  });
});
