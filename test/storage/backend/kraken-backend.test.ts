// The kraken backend (src/storage/backend/kraken/, our extension; issue 11 scope 4, spec p2p-seeds.md 3) against a
// fake agent server on loopback: reads are byte-exact with or without Content-Length, land in the caller's buffer,
// and cost one whole-blob GET per blob however many reads there are and however they overlap in time; a body still
// arriving answers the ranges it already holds (the rest wait); a body cut mid-way, corrupt, stalled, or a 404 fails
// the waiting reads with a clear BackendError and code, and a later read downloads again; one reader giving up does
// not stop the download the others share; size() comes from Content-Length or the body's end; close() fails the reads
// still waiting and removes the spool directory.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BackendError } from '../../../src/storage/backend/errors.js';
import { KrakenBackend } from '../../../src/storage/backend/kraken/kraken.js';
import { waitFor } from '../../nydusd/helpers.js';
import { FakeKrakenAgent, krakenConfigFor } from './fake-kraken-agent.js';

const BLOB = crypto.randomBytes(3 * 1024 * 1024 + 4321);

/** `[offset, length]` ranges over the whole blob, overlapping, first and last bytes included */
function ranges(n: number, size: number): [number, number][] {
  const out: [number, number][] = [[0, 1], [size - 1, 1], [0, size]];
  for (let i = 0; i < n; i++) {
    const off = crypto.randomInt(0, size);
    out.push([off, crypto.randomInt(1, Math.min(300_000, size - off) + 1)]);
  }
  return out;
}

/** The BackendError a promise rejects with. */
async function backendError(p: Promise<unknown>): Promise<BackendError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof BackendError, `a BackendError, got ${(err as Error)?.stack ?? String(err)}`);
    return err;
  }
  assert.fail('the read succeeded');
}

describe('kraken backend', () => {
  let agent: FakeKrakenAgent;
  let id: string;
  let spoolDir: string;
  before(async () => {
    agent = await FakeKrakenAgent.start();
    id = agent.addBlob(BLOB);
    spoolDir = mkdtempSync(path.join(os.tmpdir(), 'kraken-spool-test-'));
  });
  after(async () => {
    await agent.close();
    rmSync(spoolDir, { recursive: true, force: true });
  });

  for (const contentLength of [true, false]) {
    it(`answers every range byte-exact from one GET of the whole blob (${contentLength ? 'with' : 'without'} Content-Length)`, async () => {
      agent.setBehaviour({ contentLength });
      const b = new KrakenBackend(krakenConfigFor(agent, { spool_dir: spoolDir }));
      const gets = agent.blobGets(id);
      try {
        // all at once: they share the one download
        const rs = ranges(40, BLOB.length);
        const got = await Promise.all(rs.map(([off, len]) => b.read(id, off, len)));
        rs.forEach(([off, len], i) => assert.ok(got[i]!.equals(BLOB.subarray(off, off + len)), `range [${off}, +${len})`));
        // and after it has ended: from the spool
        for (const [off, len] of ranges(10, BLOB.length)) assert.ok((await b.read(id, off, len)).equals(BLOB.subarray(off, off + len)));
        const into = Buffer.alloc(5000);
        assert.equal(await b.read(id, 777, 5000, undefined, into), into, 'the bytes land in the offered buffer');
        assert.ok(into.equals(BLOB.subarray(777, 5777)));
        assert.equal(await b.size(id), BLOB.length);
        assert.equal(agent.blobGets(id) - gets, 1, 'one GET for every read of the blob');
        assert.equal(b.downloads, 1);
        const url = agent.requests.filter((r) => r.url.includes('/blobs/')).at(-1)!.url;
        assert.equal(url, `/namespace/library%2Ftest/blobs/sha256:${id}`, 'the namespace is URL-escaped, the digest sha256:<id>');
      } finally {
        await b.close();
        agent.setBehaviour({});
      }
      assert.deepEqual(readdirSync(spoolDir), [], 'close() removed the spool directory');
    });
  }

  it('answers the ranges that have arrived while the rest of the body is still on its way', async () => {
    const HELD = 1024 * 1024 + 17;
    agent.setBehaviour({ holdAfter: HELD, times: 1 });
    const held = agent.held;
    const b = new KrakenBackend(krakenConfigFor(agent));
    try {
      let lateSettled = false;
      const late = b.read(id, BLOB.length - 4096, 4096).finally(() => (lateSettled = true));
      const early = await b.read(id, 0, 65536);
      assert.ok(early.equals(BLOB.subarray(0, 65536)));
      assert.ok((await b.read(id, HELD - 100, 100)).equals(BLOB.subarray(HELD - 100, HELD)), 'up to the last byte that arrived');
      assert.equal(agent.held, held + 1, 'the agent is still holding the rest of the body');
      assert.equal(lateSettled, false, 'a range beyond what arrived waits');
      agent.release();
      assert.ok((await late).equals(BLOB.subarray(BLOB.length - 4096)));
      assert.equal(b.downloads, 1);
    } finally {
      agent.release();
      await b.close();
    }
  });

  it('fails the waiting reads when the body is cut mid-way, and downloads again for a later read', async () => {
    const CUT = 1024 * 1024;
    agent.setBehaviour({ cutAfter: CUT, times: 1 });
    const gets = agent.blobGets(id);
    const b = new KrakenBackend(krakenConfigFor(agent));
    try {
      const waiting = [b.read(id, BLOB.length - 10, 10), b.read(id, 2 * CUT, 4096)];
      for (const w of waiting) {
        const err = await backendError(w);
        assert.equal(err.code, 'ND_ERR_SOCKET', err.message);
        assert.match(err.message, new RegExp(`^kraken: blob ${id} \\[\\d+, \\+\\d+\\): `));
        assert.equal(err.blobId, id);
      }
      assert.ok((await b.read(id, BLOB.length - 10, 10)).equals(BLOB.subarray(BLOB.length - 10)), 'a later read downloads again');
      assert.equal(agent.blobGets(id) - gets, 2);
    } finally {
      await b.close();
    }
  });

  it('drops a download whose sha256 is not the blob id (corrupt), so later reads download again', async () => {
    agent.setBehaviour({ corrupt: true, times: 1 });
    const logged: string[] = [];
    const b = new KrakenBackend(krakenConfigFor(agent), { log: (_level, line) => logged.push(line) });
    try {
      // reads answered before the end cannot be recalled (the cache's validation guards chunks); what the check
      // prevents is a spool that goes on serving the wrong bytes
      await b.read(id, 0, 10).catch(() => undefined);
      await waitFor(() => logged.some((l) => /have sha256 [0-9a-f]{64}, not the digest asked for/.test(l)), 10_000, 'the digest mismatch');
      assert.ok(logged.some((l) => l.startsWith(`kraken: downloading blob ${id} failed after ${BLOB.length} bytes:`)), logged.join('\n'));
      assert.ok((await b.read(id, 0, BLOB.length)).equals(BLOB), 'downloaded again, right');
      assert.equal(b.downloads, 2);
    } finally {
      await b.close();
    }
  });

  it('answers a range past the end of the blob with ND_ERR_RANGE, without Content-Length too', async () => {
    agent.setBehaviour({ contentLength: false });
    const b = new KrakenBackend(krakenConfigFor(agent));
    try {
      const err = await backendError(b.read(id, BLOB.length - 10, 11));
      assert.equal(err.code, 'ND_ERR_RANGE');
      assert.match(err.message, new RegExp(`the blob has ${BLOB.length} bytes; bytes up to ${BLOB.length + 1} were asked for`));
    } finally {
      agent.setBehaviour({});
      await b.close();
    }
  });

  it('names a blob the agent does not have (404)', async () => {
    const b = new KrakenBackend(krakenConfigFor(agent));
    const missing = 'ab'.repeat(32);
    try {
      const err = await backendError(b.read(missing, 0, 10));
      assert.equal(err.code, 'ND_ERR_STATUS');
      assert.match(err.message, new RegExp(`^kraken: blob ${missing} \\[0, \\+10\\): the Kraken agent at ${agent.origin} answered 404 \\(the agent could not find the blob in its namespace\\)`));
      assert.equal((await backendError(b.size(missing))).code, 'ND_ERR_STATUS');
    } finally {
      await b.close();
    }
  });

  it('refuses a spool_dir it cannot make its spool directory in, at creation', () => {
    assert.throws(
      () => new KrakenBackend(krakenConfigFor(agent, { spool_dir: '/nonexistent/spool' })),
      (err: Error) => /^spool_dir: cannot make a spool directory in \/nonexistent\/spool: ENOENT/.test(err.message) && (err as { code?: string }).code === 'ND_ERR_CONFIG',
    );
  });

  it('refuses a blob id that is not a sha256 digest, before any request', async () => {
    const b = new KrakenBackend(krakenConfigFor(agent));
    const n = agent.requests.length;
    try {
      for (const bad of ['../../health', 'AB'.repeat(32), 'abc']) assert.equal((await backendError(b.read(bad, 0, 1))).code, 'ND_ERR_CONFIG');
      assert.equal(agent.requests.length, n);
    } finally {
      await b.close();
    }
  });

  it('fails a download the agent stops sending, after `timeout` seconds of silence', async () => {
    agent.setBehaviour({ holdAfter: 4096, times: 1 });
    const b = new KrakenBackend(krakenConfigFor(agent, { timeout: 1 }));
    try {
      assert.ok((await b.read(id, 0, 4096)).equals(BLOB.subarray(0, 4096)));
      const err = await backendError(b.read(id, 4096, 1));
      assert.equal(err.code, 'ND_ERR_TIMEOUT');
      assert.match(err.message, new RegExp(`the Kraken agent at ${agent.origin} sent nothing for 1 s after 4096 bytes`));
    } finally {
      agent.release();
      await b.close();
    }
  });

  it('keeps the shared download going when one reader gives up', async () => {
    agent.setBehaviour({ holdAfter: 1000, times: 1 });
    const held = agent.held;
    const b = new KrakenBackend(krakenConfigFor(agent));
    try {
      const ctl = new AbortController();
      const giving = b.read(id, BLOB.length - 1, 1, ctl.signal);
      const staying = b.read(id, BLOB.length - 2, 2);
      await waitFor(() => agent.held > held, 10_000, 'the agent holds the body');
      ctl.abort(new Error('reader gave up'));
      await assert.rejects(giving, /reader gave up/);
      agent.release();
      assert.ok((await staying).equals(BLOB.subarray(BLOB.length - 2)));
      assert.equal(b.downloads, 1);
    } finally {
      await b.close();
    }
  });

  it('size() comes from Content-Length before the body has arrived, or from the end of a body without one', async () => {
    agent.setBehaviour({ holdAfter: 10, times: 1 });
    const b = new KrakenBackend(krakenConfigFor(agent));
    try {
      assert.equal(await b.size(id), BLOB.length, 'known while the body is held');
    } finally {
      agent.release();
      await b.close();
    }
    agent.setBehaviour({ contentLength: false });
    const c = new KrakenBackend(krakenConfigFor(agent));
    try {
      assert.equal(await c.size(id), BLOB.length);
    } finally {
      agent.setBehaviour({});
      await c.close();
    }
  });

  it('close() fails the reads still waiting (ND_ERR_CLOSED) and removes its spool directory; later reads are refused', async () => {
    agent.setBehaviour({ holdAfter: 1000, times: 1 });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kraken-close-test-'));
    const b = new KrakenBackend(krakenConfigFor(agent, { spool_dir: dir }));
    try {
      const waiting = backendError(b.read(id, BLOB.length - 1, 1));
      await waitFor(() => readdirSync(dir).length === 1, 10_000, 'the spool directory');
      const spool = path.join(dir, readdirSync(dir)[0]!);
      await b.close();
      assert.equal((await waiting).code, 'ND_ERR_CLOSED');
      assert.equal(existsSync(spool), false);
      assert.equal((await backendError(b.read(id, 0, 1))).code, 'ND_ERR_CLOSED');
    } finally {
      agent.release();
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
