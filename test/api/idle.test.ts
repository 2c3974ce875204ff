// Idle API connections survive (snapshotter-contract.md 8 items 7 and 8, DECISIONS.md 15), the short form run with
// every suite: 10 s of silence. idle-120s.test.ts runs the acceptance form (120 s, past Node's 60 s header timeout).
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

test('a silent connection and an idle keep-alive connection survive 10 s; SIGKILL hangs them up', { timeout: 60_000 }, async () => {
  d = await startApiDaemon();
  await idleConnectionsSurvive(d, 10);
});
