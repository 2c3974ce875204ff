// Every route of api/v1.yaml and api/v2.yaml, driven on a running daemon over its socket: the table below must name
// exactly the documented operations (a route added to a document without a case here fails, and so does a case for
// a route no document has), and every status a route answers must be one its document lists.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { loadApiRoutes, type ApiRoute } from '../../src/api/documents.js';
import { checkHandlers } from '../../src/api/server.js';
import { HANDLERS } from '../../src/api/handlers.js';
import { cleanupDaemons, isMounted, removeDir, requireEnv, waitFor } from '../nydusd/helpers.js';
import { isSocket, request, startApiDaemon, type ApiDaemon } from './helpers.js';

interface Case {
  url: string;
  body?: string;
  status: number;
  /** what else the answer must show */
  check?: (json: unknown, d: ApiDaemon) => void;
}

const err = (pattern: RegExp) => (json: unknown) => {
  const e = json as { code: unknown; message: unknown };
  assert.equal(e.code, 'UNDEFINED');
  assert.equal(typeof e.message, 'string');
  assert.match(e.message as string, pattern);
};

// every case but exit, which ends the daemon and is run last
const CASES: Record<string, Case[]> = {
  describeDaemon: [{ url: '/api/v1/daemon', status: 200, check: (j) => assert.equal((j as { state: string }).state, 'RUNNING') }],
  configureDaemon: [
    { url: '/api/v1/daemon', body: '{"log_level":"Debug"}', status: 204 },
    { url: '/api/v1/daemon', body: '{"log_level":"loud"}', status: 500, check: err(/^Configure: unknown log level "loud"/) },
    { url: '/api/v1/daemon', body: '{"level":"info"}', status: 400, check: err(/log_level/) },
  ],
  getEvents: [{ url: '/api/v1/daemon/events', status: 200, check: (j) => assert.equal((j as { max_errors: number }).max_errors, 500) }],
  getFsBackendInfo: [
    { url: '/api/v1/daemon/backend?mountpoint=%2F', status: 200, check: (j) => assert.equal((j as { magic: number }).magic, 0xe0f5e1e2) },
    { url: '/api/v1/daemon/backend?mountpoint=/nothing', status: 500, check: err(/^FsBackendInfo: object or filesystem doesn't exist/) },
    { url: '/api/v1/daemon/backend', status: 400, check: err(/^QueryString: .*mountpoint/) },
  ],
  startDaemon: [{ url: '/api/v1/daemon/start', status: 400, check: err(/^Configure: unexpected state machine transition event Start/) }],
  sendFuseFd: [{ url: '/api/v1/daemon/fuse/sendfd', status: 501, check: err(/^Upgrade: not implemented yet: failover/) }],
  takeoverFuseFd: [{ url: '/api/v1/daemon/fuse/takeover', status: 501, check: err(/^Upgrade: not implemented yet: failover/) }],
  mountFilesystem: [
    // the dedicated daemon's image serves the FUSE root: nothing can be attached inside it (shared-mode.test.ts attaches)
    { url: '/api/v1/mount?mountpoint=%2F42', body: '{"fs_type":"rafs","source":"/x","config":"{}"}', status: 500, check: err(/^Mount: .*inside the instance at \//) },
    { url: '/api/v1/mount?mountpoint=%2F..%2F42', body: '{"fs_type":"rafs","source":"/x","config":"{}"}', status: 400, check: err(/^Mount: .*normalised/) },
    { url: '/api/v1/mount?mountpoint=%2F42', body: '{"fs_type":"passthrough_fs","source":"/x","config":""}', status: 501, check: err(/^Mount: .*passthrough/) },
    { url: '/api/v1/mount', body: '{"fs_type":"rafs","source":"/x","config":"{}"}', status: 400, check: err(/mountpoint/) },
    { url: '/api/v1/mount?mountpoint=%2F42', body: '{"fs_type":"rafs","config":"{}"}', status: 400, check: err(/source/) },
  ],
  remountFilesystem: [{ url: '/api/v1/mount?mountpoint=%2F42', body: '{"fs_type":"rafs","source":"/x","config":"{}"}', status: 500, check: err(/^Mount: object or filesystem doesn't exist/) }],
  umountFilesystem: [{ url: '/api/v1/mount?mountpoint=%2F42', status: 500, check: err(/^Mount: object or filesystem doesn't exist/) }],
  getGlobalMetrics: [
    { url: '/api/v1/metrics', status: 200, check: (j) => assert.equal((j as { id: string }).id, '/') },
    { url: '/api/v1/metrics?id=%2Fnope', status: 404, check: err(/^GlobalMetrics: Metrics\(Stats\(NoCounter\)\)/) },
  ],
  getFilesMetrics: [
    { url: '/api/v1/metrics/files?latest=true', status: 200, check: (j) => assert.deepEqual(j, []) },
    { url: '/api/v1/metrics/files', status: 200, check: (j) => assert.deepEqual(j, {}) },
    { url: '/api/v1/metrics/files?id=%2Fnope', status: 404, check: err(/^FsFilesMetrics: Metrics\(Stats\(NoCounter\)\)/) },
  ],
  getPatternMetrics: [{ url: '/api/v1/metrics/pattern', status: 200, check: (j) => assert.deepEqual(j, []) }],
  getBackendMetrics: [{ url: '/api/v1/metrics/backend', status: 200, check: (j) => assert.equal((j as { backend_type: string }).backend_type, 'localfs') }],
  getBlobcacheMetrics: [
    { url: '/api/v1/metrics/blobcache', status: 200, check: (j, d) => assert.equal((j as { store_path: string }).store_path, d.cache) },
    // the blob cache is keyed by the configuration id (none with --localfs-dir), not by the mountpoint
    { url: '/api/v1/metrics/blobcache?id=%2F', status: 404, check: err(/^BlobcacheMetrics: Metrics\(Stats\(NoCounter\)\)/) },
  ],
  getInflightMetrics: [{ url: '/api/v1/metrics/inflight', status: 204 }],
  getDynamicConfig: [{ url: '/api/v1/config?id=%2F', status: 200, check: (j) => assert.deepEqual(j, {}) }],
  updateDynamicConfig: [
    { url: '/api/v1/config?id=%2F', body: '{"registry_auth":"dXNlcjpwYXNz"}', status: 204 },
    { url: '/api/v1/config?id=%2F', body: '{"registry_auth":5}', status: 400 },
    { url: '/api/v1/config?id=%2F', body: '{"bogus":"x"}', status: 500, check: err(/^Configure: .*unknown key "bogus"/) },
  ],
  describeDaemonV2: [{ url: '/api/v2/daemon', status: 200, check: (j) => assert.equal((j as { backend_collection: unknown }).backend_collection, null) }],
  configureDaemonV2: [
    { url: '/api/v2/daemon', body: '{"log_level":"info"}', status: 204 },
    { url: '/api/v2/daemon', body: '{"log_level":"verbose"}', status: 500 },
  ],
  createBlobObject: [{ url: '/api/v2/blobs', body: '{"type":"bootstrap","id":"b","domain_id":"d"}', status: 501, check: err(/^CreateBlobObject: unsupported/) }],
  getBlobObjects: [
    { url: '/api/v2/blobs', status: 400, check: err(/domain_id/) },
    { url: '/api/v2/blobs?domain_id=d', status: 501 },
  ],
  deleteBlobObject: [
    { url: '/api/v2/blobs?blob_id=b', status: 204 },
    { url: '/api/v2/blobs?domain_id=d', status: 501, check: err(/^DeleteBlobObject: unsupported/) },
    { url: '/api/v2/blobs?blob_id=b&domain_id=d', status: 501 },
    { url: '/api/v2/blobs', status: 400 },
  ],
};
const LAST = 'exitDaemon';

let routes: ApiRoute[];
let d: ApiDaemon;

before(async () => {
  requireEnv();
  routes = loadApiRoutes();
  d = await startApiDaemon();
});

after(async () => {
  await cleanupDaemons();
  if (d && isMounted(d.mountpoint)) spawnSync('umount', ['-l', d.mountpoint]);
  if (d) removeDir(d.dir);
});

test('the cases cover exactly the documented operations, and the handlers are exactly those operations', () => {
  const documented = routes.map((r) => r.operationId).sort();
  assert.deepEqual([...Object.keys(CASES), LAST].sort(), documented);
  checkHandlers(routes, HANDLERS);
  assert.throws(() => checkHandlers(routes, { ...HANDLERS, extraOp: HANDLERS.getEvents! }), /handlers for operations no document declares: extraOp/);
  const { getEvents: _gone, ...missing } = HANDLERS;
  assert.throws(() => checkHandlers(routes, missing), /no handler for the documented operations getEvents/);
});

test('every documented route answers with a documented status and the {code, message} error shape', async () => {
  for (const r of routes) {
    if (r.operationId === LAST) continue;
    for (const c of CASES[r.operationId]!) {
      const what = `${r.method} ${c.url}`;
      const res = await request(d.sock, r.method, c.url, c.body !== undefined ? { body: c.body } : {});
      assert.equal(res.status, c.status, `${what}: ${res.text}`);
      assert.ok(r.statuses.includes(res.status), `${what}: status ${res.status} is not in api/${r.document} (${r.statuses.join(', ')})`);
      if (res.status === 204) {
        assert.equal(res.text, '', `${what}: a 204 has no body`);
        assert.equal(res.headers['content-length'], undefined, `${what}: a 204 has no Content-Length`);
      } else {
        assert.match(String(res.headers['content-type']), /^application\/json/, what);
        assert.equal(res.headers['content-length'], String(Buffer.byteLength(res.text)), what);
        if (res.status >= 400) err(/./)(res.json);
      }
      c.check?.(res.json, d);
    }
  }
});

test('PUT /api/v1/daemon/exit answers 204, exits 0 without unmounting and removes the socket', async () => {
  const r = routes.find((x) => x.operationId === LAST)!;
  const res = await request(d.sock, r.method, r.path, { headers: { 'Content-Length': '0' } });
  assert.equal(res.status, 204, res.text);
  assert.equal(res.text, '');
  const exit = await d.daemon.waitExit(10_000);
  assert.equal(exit.code, 0, exit.stderr);
  // the kernel mount is still there (a successor holding the /dev/fuse fd would keep serving it)
  assert.ok(isMounted(d.mountpoint), `${d.mountpoint} was unmounted by exit`);
  await waitFor(() => !isSocket(d.sock), 5_000, 'the API socket to be removed');
  spawnSync('umount', ['-l', d.mountpoint]);
  assert.ok(!isMounted(d.mountpoint));
});
