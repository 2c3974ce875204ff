// nydusd's registry backend when the registry misbehaves (issue 11, Faults; spec nydusd-runtime.md 7.1, 7.4): a front
// end before the real docker-registry resets connections, answers 500 or 429, sends short, cut, corrupt or whole-blob
// bodies, or stalls mid-body; and the registry process is killed in the middle of a read and started again.
// Asserted, with a byte-exact check of every file served against the fixture's md5 listing: a fault that happens once
// is retried and the read is right; a fault that persists is an EIO within timeout x attempts (bounded generously),
// with a log line naming the blob, never a wrong byte and never a hang; once the fault is gone the same daemon (no
// remount) serves every file right; files already cached keep reading while the registry is down, with no backend
// read for them, and while a read stalls, the API and cached reads still answer.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { request } from '../api/helpers.js';
import { FrontEnd, Registry, RegistryClient, type Fault } from '../helpers/registry.js';
import { cleanupDaemons, isMounted, removeDir, requireEnv, tempDir, waitFor } from './helpers.js';
import {
  assertAllEio, assertAllRight, assertNeverWrong, backendCounters, fixtureGroups, fixtureSums, FIXTURE, pushFixture, readFiles, startRegistryDaemon,
} from './registry-helpers.js';

const REPO = 'nydus/faulty';
const TIMEOUT_S = 2;
/** one read that must fail: every attempt (4, spec 7.4) running into the timeout, and much slack */
const FAIL_BOUND_MS = 4 * (TIMEOUT_S + 2) * 1000 + 30_000;

const FAULTS: Array<{ name: string; fault: Fault; validate?: boolean }> = [
  { name: 'connection reset', fault: { kind: 'reset' } },
  { name: '500', fault: { kind: 'status', status: 500 } },
  { name: '429', fault: { kind: 'status', status: 429 } },
  { name: 'short body (a 206 with fewer bytes than asked)', fault: { kind: 'short' } },
  { name: 'body cut mid-way', fault: { kind: 'truncate' } },
  { name: 'a 200 with the whole blob for a range', fault: { kind: 'whole' } },
  { name: 'stall mid-body', fault: { kind: 'stall' } },
  // the bytes look right to HTTP: only the chunk digests can tell, so validation is on
  { name: 'corrupt body (validated)', fault: { kind: 'corrupt' }, validate: true },
];

describe('nydusd on a faulty registry', () => {
  let work: string;
  let reg: Registry;
  let front: FrontEnd;
  const files = [...fixtureSums().keys()];
  const groups = fixtureGroups();
  const layer = groups.B.find((f) => f.endsWith('/layer.tar'))!;

  before(async () => {
    requireEnv(['docker-registry']);
    work = tempDir('registry-faults');
    reg = await Registry.start({ kind: 'anonymous' }, path.join(work, 'registry'));
    await pushFixture(new RegistryClient(reg.url), REPO);
    front = await FrontEnd.start(reg);
  });
  after(async () => {
    await cleanupDaemons();
    await front?.close().catch(() => undefined);
    await reg?.destroy().catch(() => undefined);
    removeDir(work);
  });

  const actionsSince = (n: number): string[] => front.blobGets.slice(n).map((g) => g.action);

  for (const { name, fault, validate } of FAULTS) {
    it(`${name}: once is retried and right; persistent is an EIO in bounded time; gone, everything is right again`, { timeout: 240_000 }, async () => {
      front.clear();
      const d = await startRegistryDaemon(path.join(work, `fault-${fault.kind}${'status' in fault ? fault.status : ''}`), { host: front.host, repo: REPO, timeout: TIMEOUT_S, validate });
      try {
        // once: the first blob GET meets the fault, a retry gets the data
        let mark = front.blobGets.length;
        front.inject({ ...fault, times: 1 });
        const once = await readFiles(d.mnt, groups.A, FAIL_BOUND_MS);
        if (fault.kind === 'corrupt') {
          // a validated chunk that fails is refused (EIO, never served); whether it is fetched again is the cache's call
          assertNeverWrong(once, `${name} once`);
        } else {
          assertAllRight(once, `${name} once`);
        }
        const seen = actionsSince(mark);
        assert.equal(seen[0], fault.kind, `the first blob GET met the fault: ${seen.join(', ')}`);
        front.releaseStalls();

        // persistent: every cold read fails, none is served wrong, none hangs
        mark = front.blobGets.length;
        front.inject(fault);
        // a stall costs a whole timeout per attempt: one file is enough to show the bound
        const cold = fault.kind === 'stall' ? [layer] : groups.B;
        let settled = false;
        const reading = readFiles(d.mnt, cold, cold.length * FAIL_BOUND_MS).finally(() => (settled = true));
        if (fault.kind === 'stall') {
          // a registry that stalls blocks neither the API nor cached reads (issue 11): both answer while the read waits
          await waitFor(() => front.stalledCount >= 1, 30_000, 'a blob GET stalled mid-body');
          const info = await request(d.sock, 'GET', '/api/v1/daemon', { timeoutMs: 30_000 });
          assert.equal(info.status, 200, info.text);
          assertAllRight(await readFiles(d.mnt, groups.A, 30_000), 'cached files while a read stalls');
          assert.ok(!settled, 'the API and the cached reads answered while the stalled read was still waiting');
        }
        const failing = await reading;
        front.clear();
        front.releaseStalls();
        if (fault.kind === 'corrupt') {
          // a body spans several chunks and only one of them is damaged: at least that one's files fail
          assert.ok(assertNeverWrong(failing, `${name} persistent`).length > 0, 'a corrupt chunk was refused');
        } else {
          assertAllEio(failing, `${name} persistent`);
          // on-demand reads get 3 retries (spec 7.4): more than one attempt per failed read
          assert.ok(actionsSince(mark).filter((a) => a === fault.kind).length >= 2, `the failing reads were retried: ${actionsSince(mark).join(', ')}`);
        }
        for (const [f, r] of failing) assert.ok(r.ms < FAIL_BOUND_MS, `${f} took ${r.ms} ms`);
        assert.ok(
          d.daemon.stderr.split('\n').some((l) => l.includes(FIXTURE.blobId) && /WARN|ERROR/.test(l) && !/read blob .* in \d/.test(l)),
          'a log line names the blob of the failed read',
        );
        if (fault.kind === 'status') {
          assert.ok(d.daemon.stderr.split('\n').some((l) => l.includes(FIXTURE.blobId) && l.includes(String(fault.status))), `a log line names the blob and ${fault.status}`);
        }

        // gone: the same daemon, no remount, serves every file right (nothing wrong was cached)
        assertAllRight(await readFiles(d.mnt, files, 60_000), `${name} cleared`);
        assert.ok(d.daemon.running && isMounted(d.mnt));
        await d.daemon.stop();
      } finally {
        front.clear();
        front.releaseStalls();
      }
    });
  }

  it('registry killed mid-read: EIO in bounded time, cached files keep reading with no backend read, right again once it is back', { timeout: 240_000 }, async () => {
    front.clear();
    const d = await startRegistryDaemon(path.join(work, 'stopped'), { host: front.host, repo: REPO, timeout: TIMEOUT_S });
    try {
      assertAllRight(await readFiles(d.mnt, groups.A, 60_000), 'group A, registry up');

      // a read is in flight (its answer stalled mid-body) when the registry is killed
      front.inject({ kind: 'stall', times: 1 });
      const cold = [...groups.B, ...groups.C];
      const reading = readFiles(d.mnt, cold, cold.length * FAIL_BOUND_MS);
      await waitFor(() => front.stalledCount === 1, 30_000, 'a blob GET stalled mid-body');
      await reg.stop();
      front.releaseStalls();
      const failed = await reading;
      assertAllEio(failed, 'registry down');
      for (const [f, r] of failed) assert.ok(r.ms < FAIL_BOUND_MS, `${f} took ${r.ms} ms`);
      assert.ok(front.blobGets.some((g) => g.action === 'unreachable'), 'the retries found the registry down');

      // what is cached keeps reading, without the backend
      const before = await backendCounters(d.daemon);
      const gets = front.blobGets.length;
      assertAllRight(await readFiles(d.mnt, groups.A, 60_000), 'cached group A, registry down');
      const afterCached = await backendCounters(d.daemon);
      assert.equal(afterCached.reads, before.reads, 'cached files cost no backend read');
      assert.equal(front.blobGets.length, gets, 'cached files sent no blob GET');

      // back again: the same daemon serves everything, no remount
      await reg.start();
      assertAllRight(await readFiles(d.mnt, files, 60_000), 'registry back');
      assert.ok(d.daemon.running && isMounted(d.mnt));
      await d.daemon.stop();
    } finally {
      front.releaseStalls();
      if (!reg.running) await reg.start();
    }
  });
});

