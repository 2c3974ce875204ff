// The retry policy of network backends (src/storage/backend/retry.ts, nydusd-runtime.md 7.4), stacked as a mounted
// image stacks it (device.ts: Retry(Metered(registry))) against the fake registry's faults: on-demand reads are
// retried 3 times, prefetch reads once; every attempt is metered; the final error names blob, range, attempts and
// the last error; a stalled body ends each attempt at `timeout`, so a read ends within timeout x attempts; an aborted
// read is not retried; the last on-demand retry waits for the process-wide limiter of one request per second.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it, mock } from 'node:test';
import { BackendError } from '../../../src/storage/backend/errors.js';
import { MeteredBackend } from '../../../src/storage/backend/metered.js';
import { RegistryBackend } from '../../../src/storage/backend/registry/registry.js';
import { RateLimiter, RetryBackend, NETWORK_RETRY_POLICY } from '../../../src/storage/backend/retry.js';
import { FakeRegistry, registryConfigFor, type BlobFault } from './fake-registry.js';

const BLOB = crypto.randomBytes(120_000);

describe('retry policy', () => {
  let registry: FakeRegistry;
  let id: string;
  before(async () => {
    registry = await FakeRegistry.start();
    id = registry.addBlob(BLOB);
  });
  after(() => registry.close());

  function stack(timeout = 5) {
    const inner = new RegistryBackend(registryConfigFor(registry, { timeout }));
    const metered = new MeteredBackend(inner);
    const retry = new RetryBackend(metered, NETWORK_RETRY_POLICY, new RateLimiter(1000));
    return { inner, metered, retry };
  }

  it('on-demand: 3 faults are retried through, each attempt metered', async () => {
    const { metered, retry } = stack();
    try {
      registry.faults.push(500, 'reset', 'whole');
      assert.ok((await retry.read(id, 4096, 8192)).equals(BLOB.subarray(4096, 4096 + 8192)));
      assert.equal(retry.retried, 3);
      assert.deepEqual(metered.stats, { reads: 4, errors: 3, bytes: 8192 });
    } finally {
      registry.faults.length = 0;
      await retry.close();
    }
  });

  it('on-demand: a 4th fault fails the read naming blob, range, attempts and the last error', async () => {
    const { metered, retry } = stack();
    try {
      registry.faults.push(500, 429, 'short', 'wrong-range');
      await assert.rejects(retry.read(id, 100, 200), (e: BackendError) => {
        assert.ok(e instanceof BackendError);
        assert.equal(e.message, `registry: reading blob ${id} [100, +200) failed after 4 attempts: Content-Range "bytes 101-300/120000" is not bytes 100-299`);
        assert.equal(e.code, 'ND_ERR_RANGE');
        return true;
      });
      assert.deepEqual(metered.stats, { reads: 4, errors: 4, bytes: 0 });
    } finally {
      registry.faults.length = 0;
      await retry.close();
    }
  });

  it('prefetch: one retry, then the error', async () => {
    const { metered, retry } = stack();
    try {
      registry.faults.push(500, 500, 500);
      await assert.rejects(retry.read(id, 0, 10, undefined, undefined, 'prefetch'), /failed after 2 attempts: the registry answered 500/);
      assert.equal(metered.stats.reads, 2);
      registry.faults.length = 0;
      registry.faults.push(429);
      assert.ok((await retry.read(id, 0, 10, undefined, undefined, 'prefetch')).equals(BLOB.subarray(0, 10)));
    } finally {
      registry.faults.length = 0;
      await retry.close();
    }
  });

  it('a body that stalls ends each attempt at the timeout: no hang, then the stall is named', { timeout: 60_000 }, async () => {
    const { metered, retry } = stack(1);
    const faults: BlobFault[] = ['stall', 'stall', 'stall', 'stall'];
    try {
      registry.faults.push(...faults);
      await assert.rejects(retry.read(id, 0, 50_000), /failed after 4 attempts: GET http:\/\/127\.0\.0\.1:\d+\/v2\/library\/test\/blobs\/sha256:[0-9a-f]{64} timed out after 1 s/);
      assert.deepEqual(metered.stats, { reads: 4, errors: 4, bytes: 0 });
      // and the connections are usable again
      assert.ok((await retry.read(id, 0, 50_000)).equals(BLOB.subarray(0, 50_000)));
    } finally {
      registry.faults.length = 0;
      await retry.close();
    }
  });

  it('an aborted read is not retried', async () => {
    const { metered, retry } = stack();
    try {
      registry.faults.push('stall');
      const ctl = new AbortController();
      const reason = new Error('reader went away');
      const p = retry.read(id, 0, 50_000, ctl.signal);
      setImmediate(() => ctl.abort(reason));
      await assert.rejects(p, (e) => e === reason);
      assert.equal(metered.stats.reads, 1);
    } finally {
      registry.faults.length = 0;
      await retry.close();
    }
  });
});

describe('last-retry limiter', () => {
  it('hands out one slot per second, process-wide order kept', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
    try {
      const limiter = new RateLimiter(1000);
      const took: number[] = [];
      const all = [0, 1, 2].map((i) => limiter.take().then(() => took.push(i)));
      await Promise.resolve();
      await new Promise<void>((r) => queueMicrotask(r));
      assert.deepEqual(took, [0], 'the first slot is free');
      mock.timers.tick(999);
      await Promise.resolve();
      assert.deepEqual(took, [0]);
      mock.timers.tick(1);
      await new Promise<void>((r) => queueMicrotask(r));
      await Promise.resolve();
      assert.deepEqual(took, [0, 1]);
      mock.timers.tick(1000);
      await Promise.all(all);
      assert.deepEqual(took, [0, 1, 2]);
    } finally {
      mock.timers.reset();
    }
  });
});
