// A missing name is looked up once: nydusd answers it with a negative entry (spec nydusd-runtime §9) and the kernel
// answers the next lookups of that name from its dentry cache. Shown without any counter inside the daemon: after
// the first stat the daemon is frozen with SIGSTOP, and a second stat of the same name must still come back ENOENT.
// A lookup that reaches the frozen daemon is visible from outside: the caller sleeps in the kernel's FUSE
// request_wait_answer (its /proc/<pid>/wchan), which a control stat of a name never asked about demonstrates.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from '../helpers/paths.js';
import { cleanupDaemons, mountImage, removeDir, requireEnv, sleep, tempDir, waitsOnFuse, writeConfig } from './helpers.js';

const SAMPLES = path.join(projectRoot, 'bootstrap-samples');

interface StatRun {
  pid: number;
  exited: Promise<{ code: number | null; stderr: string }>;
  done: boolean;
}

function startStat(file: string): StatRun {
  const child = spawn('stat', [file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const run: StatRun = {
    pid: child.pid!,
    done: false,
    exited: new Promise((resolve) => child.once('close', (code) => {
      run.done = true;
      resolve({ code, stderr });
    })),
  };
  return run;
}

/**
 * Polls until the stat has exited or sleeps waiting for the FUSE daemon. The deadline only guards against a hang
 * of something else: either outcome normally shows within milliseconds.
 */
async function exitedOrWaitingOnDaemon(s: StatRun, what: string): Promise<'exited' | 'waiting on the daemon'> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (s.done) return 'exited';
    if (waitsOnFuse(s.pid)) return 'waiting on the daemon';
    if (Date.now() > deadline) throw new Error(`${what}: neither exited nor waited on the daemon within 30 s`);
    await sleep(5);
  }
}

describe('negative lookups through nydusd are cached by the kernel', () => {
  let work: string;
  before(() => {
    requireEnv(['stat']);
    work = tempDir('negative');
  });
  after(async () => {
    await cleanupDaemons();
    removeDir(work);
  });

  for (const name of ['v5-zstd', 'v6-zstd']) {
    it(`${name}: a second stat of a missing name is answered without the (frozen) daemon`, async () => {
      const dir = path.join(work, name);
      const mnt = path.join(dir, 'mnt');
      const image = path.join(SAMPLES, name);
      const cfg = writeConfig(`${dir}.json`, { blobDir: path.join(image, 'blobs'), workDir: path.join(dir, 'cache') });
      const d = await mountImage(['fuse', '--config', cfg, '--bootstrap', path.join(image, 'bootstrap'), '--mountpoint', mnt], mnt);
      const missing = [path.join(mnt, 'no-such-entry'), path.join(mnt, 'data', 'no-such-entry')];
      let control: StatRun | undefined;
      try {
        for (const f of missing) {
          const first = await startStat(f).exited;
          assert.equal(first.code, 1);
          assert.match(first.stderr, /No such file or directory/, f);
        }
        d.signal('SIGSTOP');
        // control: a name never asked about must reach the daemon, and so wait while it is frozen
        control = startStat(path.join(mnt, 'data', 'never-asked-about'));
        assert.equal(await exitedOrWaitingOnDaemon(control, 'control stat'), 'waiting on the daemon', 'the control lookup did not reach the daemon');
        for (const f of missing) {
          const again = startStat(f);
          assert.equal(await exitedOrWaitingOnDaemon(again, f), 'exited', `${f}: the second lookup went to the daemon (the negative entry was not cached)`);
          const r = await again.exited;
          assert.equal(r.code, 1);
          assert.match(r.stderr, /No such file or directory/, f);
        }
      } finally {
        d.signal('SIGCONT');
      }
      // thawed, the daemon answers the control lookup it was holding
      const c = await control.exited;
      assert.match(c.stderr, /No such file or directory/);
      const r = await d.stop();
      assert.equal(r.code, 0, r.stderr);
    });
  }
});
