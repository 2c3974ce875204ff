// GET /api/v1/metrics/inflight on a real daemon (spec nydusd-runtime.md 3.5.8, snapshotter-contract.md section 8 item
// 25): 204 with no body when idle; while a read waits on a backend that never answers (hung-blob-server.ts, a FUSE
// blob directory on the real kernel), 200 with the READ in flight: its FUSE node id, opcode 15, unique and the Unix
// second it was picked up; 204 again once the backend lets go.
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import path from 'node:path';
import { INODE_MASK } from '../../src/fuse/protocol.js';
import { loadImageFile } from '../image/helpers.js';
import { request } from '../api/helpers.js';
import { cleanupDaemons, isMounted, removeDir, requireEnv, sleep, tempDir } from '../nydusd/helpers.js';
import { SAMPLES, startHungBlobServer, startMetricsDaemon } from './helpers.js';
import { responseSchema, schemaErrors } from './schema.js';

const FUSE_READ = 15;
let server: ChildProcess | undefined;
let reader: ChildProcess | undefined;
const dirs: string[] = [];

after(async () => {
  reader?.kill('SIGKILL');
  server?.kill('SIGUSR1');
  await cleanupDaemons();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server!.once('close', r));
  }
  for (const d of dirs) removeDir(d);
});

async function inflight(sock: string) {
  const r = await request(sock, 'GET', '/api/v1/metrics/inflight');
  return r;
}

it('inflight: 204 when idle, the stalled READ while the backend hangs, 204 again after', { timeout: 120_000 }, async () => {
  requireEnv(['dd']);
  const bs = loadImageFile(path.join(SAMPLES, 'v5-none', 'bootstrap'));
  const blob = bs.blobs[0]!;
  const blobs = tempDir('hung-blobs');
  dirs.push(blobs);
  server = await startHungBlobServer(blobs, blob.blobId, statSync(path.join(SAMPLES, 'v5-none', 'blobs', blob.blobId)).size);
  const d = await startMetricsDaemon({ sample: 'v5-none', blobDir: blobs });
  dirs.push(d.dir);

  const idle = await inflight(d.sock);
  assert.equal(idle.status, 204, idle.text);
  assert.equal(idle.text, '');
  assert.equal(idle.headers['content-length'], undefined);

  const file = path.join(d.mountpoint, 'data', 'big.bin');
  const ino = statSync(file).ino;
  const t0 = Math.floor(Date.now() / 1000);
  reader = spawn('dd', [`if=${file}`, 'of=/dev/null', 'bs=1000', 'count=1', 'iflag=direct'], { stdio: 'ignore' });
  const readerDone = new Promise<number | null>((r) => reader!.once('close', (code) => r(code)));

  let busy = await inflight(d.sock);
  for (const deadline = Date.now() + 20_000; busy.status !== 200 && Date.now() < deadline;) {
    await sleep(20);
    busy = await inflight(d.sock);
  }
  assert.equal(busy.status, 200, `no request in flight while the backend hangs: ${busy.status} ${busy.text}`);
  assert.deepEqual(schemaErrors(busy.json, responseSchema('/api/v1/metrics/inflight', 200)), [], busy.text);
  const entries = busy.json as { inode: number; opcode: number; unique: number; timestamp_secs: number }[];
  const read = entries.find((e) => e.opcode === FUSE_READ);
  assert.ok(read, `no READ in flight: ${busy.text}`);
  // the FUSE node id: the instance's VFS slot in the top byte, big.bin's inode below it (spec 9.1); exact to the
  // last digit in the text (JSON.parse rounds numbers beyond 2^53)
  const inodes = [...busy.text.matchAll(/"inode":(\d+),"opcode":15,/g)].map((m) => BigInt(m[1]!));
  assert.equal(inodes.length, 1, busy.text);
  assert.equal(inodes[0]! & INODE_MASK, BigInt(ino), `node id ${inodes[0]} is not big.bin's (inode ${ino})`);
  assert.ok(inodes[0]! >> 56n >= 1n && inodes[0]! >> 56n <= 255n, `node id ${inodes[0]}: VFS slot 1..255`);
  assert.ok(read.unique > 0);
  assert.ok(read.timestamp_secs >= t0 && read.timestamp_secs <= Date.now() / 1000, busy.text);
  assert.equal(reader.exitCode, null, 'the reader is still waiting');

  // the backend fails the read: the reader gets EIO, nothing is in flight any more
  server.kill('SIGUSR1');
  assert.notEqual(await readerDone, 0, 'dd failed (EIO)');
  let after = await inflight(d.sock);
  for (const deadline = Date.now() + 20_000; after.status !== 204 && Date.now() < deadline;) {
    await sleep(20);
    after = await inflight(d.sock);
  }
  assert.equal(after.status, 204, after.text);
  await d.daemon.stop(10_000);
  assert.ok(!isMounted(d.mountpoint));
});
