// The registry backend (src/storage/backend/registry/) against the fake registry on loopback: ranged reads return
// exactly the bytes asked for, land in the caller's buffer, run several at once on the pool; every answer that is
// not exactly the range (200 with the whole blob, a wrong Content-Range, a short body) is a BackendError with a clear
// text and code, never data; size() is a HEAD; the default and NYDUS_HEADER_* headers go with every request.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { BackendError } from '../../../src/storage/backend/errors.js';
import { RegistryBackend } from '../../../src/storage/backend/registry/registry.js';
import { waitFor } from '../../nydusd/helpers.js';
import { FakeRegistry, registryConfigFor } from './fake-registry.js';

const BLOB = crypto.randomBytes(300_000);

describe('registry backend: ranged reads', () => {
  let registry: FakeRegistry;
  let id: string;
  before(async () => {
    registry = await FakeRegistry.start();
    id = registry.addBlob(BLOB);
  });
  after(() => registry.close());

  it('reads exact ranges, into the caller\'s buffer, and sizes blobs with HEAD', async () => {
    const b = new RegistryBackend(registryConfigFor(registry));
    try {
      for (const [off, len] of [[0, 1], [0, 4096], [12_345, 65_536], [BLOB.length - 10, 10], [1000, BLOB.length - 1000]] as const) {
        const got = await b.read(id, off, len);
        assert.ok(got.equals(BLOB.subarray(off, off + len)), `range [${off}, +${len})`);
      }
      const into = Buffer.alloc(5000);
      const got = await b.read(id, 777, 5000, undefined, into);
      assert.equal(got, into, 'the body lands in the offered buffer');
      assert.ok(into.equals(BLOB.subarray(777, 5777)));
      assert.equal(await b.size(id), BLOB.length);
      const gets = registry.requests.filter((r) => r.method === 'GET');
      assert.ok(gets.every((r) => /^bytes=\d+-\d+$/.test(r.headers.range ?? '')), 'every GET is ranged');
    } finally {
      await b.close();
    }
  });

  it('keeps at least 4 ranges in flight at once (after the first request, which runs alone)', async () => {
    const b = new RegistryBackend(registryConfigFor(registry));
    await b.read(id, 0, 1);
    let release!: () => void;
    registry.hold = new Promise((r) => (release = r));
    const before = registry.count(`/v2/${registry.repo}/blobs/`, 'GET');
    try {
      const reads = [0, 1, 2, 3, 4, 5].map((i) => b.read(id, i * 10_000, 10_000));
      await waitFor(() => registry.count(`/v2/${registry.repo}/blobs/`, 'GET') - before >= 6, 20_000, 'six GETs at the registry at once');
      release();
      const got = await Promise.all(reads);
      got.forEach((g, i) => assert.ok(g.equals(BLOB.subarray(i * 10_000, (i + 1) * 10_000))));
    } finally {
      release();
      registry.hold = undefined;
      await b.close();
    }
  });

  for (const [fault, pattern] of [
    ['whole', /answered 200 instead of 206 Partial Content \(the whole blob, not the range\)/],
    ['wrong-range', /Content-Range "bytes 101-200\/300000" is not bytes 100-199/],
    ['short', /short body, 50 of 100 bytes|request to http:\/\/127\.0\.0\.1:\d+ failed/],
    [500, /the registry answered 500: internal error \(injected\)/],
    ['reset', /request to http:\/\/127\.0\.0\.1:\d+ failed: other side closed|socket/i],
  ] as const) {
    it(`refuses a ${fault} answer with a clear BackendError, never data`, async () => {
      const b = new RegistryBackend(registryConfigFor(registry));
      try {
        registry.faults.push(fault);
        await assert.rejects(b.read(id, 100, 100), (err: BackendError) => {
          assert.ok(err instanceof BackendError, String(err));
          assert.equal(err.blobId, id);
          assert.match(err.message, new RegExp(`^registry: blob ${id} \\[100, \\+100\\): `));
          assert.match(err.message, pattern);
          assert.match(err.code ?? '', fault === 500 ? /ND_ERR_STATUS/ : fault === 'reset' ? /ND_ERR_SOCKET/ : /ND_ERR_RANGE|ND_ERR_SOCKET/);
          return true;
        });
        // and the next read is right again
        assert.ok((await b.read(id, 100, 100)).equals(BLOB.subarray(100, 200)));
      } finally {
        await b.close();
      }
    });
  }

  it('names a missing blob and a bad blob id', async () => {
    const b = new RegistryBackend(registryConfigFor(registry));
    try {
      const missing = 'ab'.repeat(32);
      await assert.rejects(b.read(missing, 0, 10), /^BackendError: registry: blob a{0}.*answered 404: .*BLOB_UNKNOWN/);
      await assert.rejects(b.size(missing), new RegExp(`registry: size of blob ${missing}: HEAD answered 404`));
      await assert.rejects(b.read('../x', 0, 10), /blob id "..\/x" cannot name a blob/);
    } finally {
      await b.close();
    }
  });

  it('sends User-Agent nydusd/1.0.0 and NYDUS_HEADER_* headers', async () => {
    process.env['NYDUS_HEADER_X-Nydus-Test'] = 'yes';
    process.env['NYDUS_HEADER_Bad Name'] = 'skipped';
    let b: RegistryBackend | undefined;
    try {
      b = new RegistryBackend(registryConfigFor(registry));
      const n = registry.requests.length;
      await b.read(id, 0, 10);
      const seen = registry.requests.slice(n);
      assert.ok(seen.length > 0);
      for (const r of seen) {
        assert.equal(r.headers['user-agent'], 'nydusd/1.0.0');
        assert.equal(r.headers['x-nydus-test'], 'yes');
        assert.ok(!Object.keys(r.headers).some((k) => k.includes(' ')));
      }
    } finally {
      delete process.env['NYDUS_HEADER_X-Nydus-Test'];
      delete process.env['NYDUS_HEADER_Bad Name'];
      await b?.close();
    }
  });

  it('fails a read on a closed backend clearly', async () => {
    const b = new RegistryBackend(registryConfigFor(registry));
    await b.close();
    await assert.rejects(b.read(id, 0, 10), (err: BackendError) => err.code === 'ND_ERR_CLOSED' && /the backend is closed/.test(err.message));
  });
});
