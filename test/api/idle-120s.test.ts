// Idle API connections survive (snapshotter-contract.md 8 items 7 and 8, DECISIONS.md 15), the acceptance form of
// item 7: 120 s of silence, past Node's default 60 s header timeout and its 30 s check interval.
import { after, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { cleanupDaemons, isMounted, removeDir, requireEnv } from '../nydusd/helpers.js';
import { startApiDaemon, type ApiDaemon } from './helpers.js';
import { idleConnectionsSurvive } from './idle.js';

requireEnv();
let d: ApiDaemon | undefined;
after(async () => {
  await cleanupDaemons();
  if (d && isMounted(d.mountpoint)) spawnSync('umount', ['-l', d.mountpoint]);
  if (d) removeDir(d.dir);
});

test('a silent connection and an idle keep-alive connection survive 120 s; SIGKILL hangs them up', { timeout: 200_000 }, async () => {
  d = await startApiDaemon();
  await idleConnectionsSurvive(d, 120);
});
