// snapshotter-contract.md section 8 item 16 (fscache attach and detach) is OUT OF SCOPE: DECISIONS.md 6 leaves
// fscache out (this kernel has no EROFS on-demand cachefiles). This is not a skip: it pins the decided behaviour,
// that every fscache step the snapshotter would take gets a clear answer instead of a crash or a hang
// (DECISIONS.md 7): the singleton argv is refused with one line, and the /api/v2/blobs requests of 3.2 rows 4-6,
// replayed with the 2.3 body, get the documented 501 error while the daemon keeps serving.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { afterEach, test } from 'node:test';
import { cleanupDaemons, Daemon, requireEnv } from '../nydusd/helpers.js';
import {
  assertErrorBody, exchange, fscacheArgv, GET_DAEMON, goRequest, sharedArgv, SID, snapshotterRoot, spawnDaemon, waitUntilState, type Root,
} from './harness.js';

requireEnv();
afterEach(cleanupDaemons);

/** FID: the lowercase hex sha256 of `nydus-snapshot-<SID>` (contract conventions). */
function fid(sid: string): string {
  return createHash('sha256').update(`nydus-snapshot-${sid}`).digest('hex');
}

/** The PUT /api/v2/blobs body of 2.3 (registry template, snapshot 42, basic auth), with this root's paths. */
function fscacheBody(r: Root, id: string): string {
  const fs = path.join(r.R, 'snapshots', SID, 'fs');
  return (
    `{"type":"bootstrap","id":"${id}","domain_id":"${id}","config":{"id":"${id}","backend_type":"registry","backend_config":` +
    `{"readahead":false,"host":"index.docker.io","repo":"library/nginx","auth":"dXNlcjpwYXNz","proxy":{"fallback":false}},` +
    `"cache_type":"fscache","cache_config":{"work_dir":"${fs}"},"prefetch_config":{"enable":true,"threads_count":8,` +
    `"merging_size":1048576,"bandwidth_rate":0,"prefetch_all":false},"metadata_path":"${r.bootstrap}"}}`
  );
}

const UNSUPPORTED = /^\w+: unsupported: \/api\/v2\/blobs needs the blob-cache manager of a singleton \(fscache\) daemon, which this FUSE nydusd does not run$/;

test('item 16 (fscache, out of scope by DECISIONS.md 6): the singleton argv and the /api/v2/blobs requests get clear refusals', async () => {
  const id = fid(SID);
  assert.equal(id, '98a7b6d18b8c7d20e5aee73a90f391719fe95784b42a2eaeb6d7698484a1e76a', 'the FID of snapshot 42 as documented');

  // the fscache daemon itself: parsed, then refused with one line (no usage error, no socket)
  const f = snapshotterRoot();
  const exit = await new Daemon(fscacheArgv(f)).waitExit(20_000);
  assert.equal(exit.code, 1, exit.stderr);
  assert.equal(exit.stderr, 'Error: the singleton (fscache) mode is out of scope for this nydusd\n');

  // the fscache requests of 3.2 sent to the daemon we do run (shared fusedev)
  const r = snapshotterRoot();
  await spawnDaemon(sharedArgv(r), r.sharedMnt, r.sock);
  await waitUntilState(r.sock, 'RUNNING');
  const body = fscacheBody(r, id);
  const put = await exchange(r.sock, goRequest('PUT', '/api/v2/blobs', body));
  assert.equal(put.status, 501, put.body);
  const putErr = assertErrorBody(put, 'PUT /api/v2/blobs');
  assert.match(putErr.message, UNSUPPORTED);
  assert.ok(!put.body.includes('dXNlcjpwYXNz'), 'the refusal echoes the credential');
  // instance removal: DELETE ?domain_id=FID, refused the same way
  const byDomain = await exchange(r.sock, goRequest('DELETE', `/api/v2/blobs?domain_id=${id}`));
  assert.equal(byDomain.status, 501, byDomain.body);
  assert.match(assertErrorBody(byDomain, 'DELETE ?domain_id').message, UNSUPPORTED);
  // after the erofs umount, and the GC's culls: DELETE ?blob_id= has nothing to remove in a FUSE daemon: 204
  const byBlob = await exchange(r.sock, goRequest('DELETE', `/api/v2/blobs?blob_id=${id}`));
  assert.equal(byBlob.status, 204, byBlob.body);
  const info = await exchange(r.sock, GET_DAEMON);
  assert.equal((info.json as { state: string }).state, 'RUNNING');
});
