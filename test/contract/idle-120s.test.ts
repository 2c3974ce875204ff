// snapshotter-contract.md section 8 item 7 (and item 8, which it contains): the acceptance form, run for real in CI.
// The snapshotter's liveness monitor holds a silent connection (3.8): after 120 s of silence, past Node's default 60 s
// header timeout and its 30 s check interval (3.9), it has received nothing and is still open; a keep-alive connection
// that served a GET before the wait serves another after it (item 8: idle connections are not closed under 10 s);
// killing the daemon hangs the idle connection up at once. The daemon runs on the snapshotter's exact dedicated argv.
// test/api/idle.test.ts is the 10 s form of the same check (test/api/idle.ts), on the API test daemon.
import { test } from 'node:test';
import { idleConnectionsSurvive } from '../api/idle.js';
import { requireEnv } from '../nydusd/helpers.js';
import { dedicatedArgv, snapshotterRoot, spawnDaemon, waitUntilState } from './harness.js';

requireEnv();

test('item 7: a silent connection survives 120 s with no byte and no hang-up; SIGKILL hangs it up', { timeout: 120_000 + 80_000 }, async () => {
  const r = snapshotterRoot();
  const daemon = await spawnDaemon(dedicatedArgv(r), r.mnt, r.sock);
  await waitUntilState(r.sock, 'RUNNING');
  await idleConnectionsSurvive({ daemon, dir: r.R, sock: r.sock, mountpoint: r.mnt, cache: r.cache }, 120);
});
