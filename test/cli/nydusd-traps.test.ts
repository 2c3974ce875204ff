// Command-line traps of nydusd (issue 8, item 8): each is refused at start with a clear message instead of being
// silently taken, ignored, or (a mount on procfs) deadlocking the daemon on itself.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../helpers/paths.js';
import { cleanupDaemons, isMounted, mountImage, removeDir, requireEnv, runNydusd, tempDir, writeConfig } from '../nydusd/helpers.js';

const SAMPLE = path.join(projectRoot, 'bootstrap-samples', 'v6-zstd');

describe('nydusd command-line traps', () => {
  let work: string;
  let cfg: string;
  let mnt: string;
  before(() => {
    requireEnv();
    work = tempDir('traps');
    cfg = writeConfig(path.join(work, 'config.json'), { blobDir: path.join(SAMPLE, 'blobs'), workDir: path.join(work, 'cache') });
    mnt = path.join(work, 'mnt');
    mkdirSync(mnt);
  });
  after(async () => {
    await cleanupDaemons();
    removeDir(work);
  });
  const base = () => ['fuse', '--config', cfg, '--bootstrap', path.join(SAMPLE, 'bootstrap')];

  it('--mountpoint on procfs or sysfs is refused (exit 1), not deadlocked', async () => {
    for (const [dir, type] of [['/proc/self', 'proc'], ['/proc', 'proc'], ['/sys/kernel', 'sysfs']] as const) {
      // no mountpoint handed to the runner: its cleanup must never `umount -l /proc`
      const r = await runNydusd([...base(), '--mountpoint', dir], 20_000);
      assert.equal(r.code, 1, `${dir}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^Error: mountpoint ${dir} is on a ${type} filesystem \\(mounted at /(proc|sys)\\), which cannot hold a FUSE mount$`, 'm'));
    }
  });

  it('--mountpoint given twice is a usage error (exit 2)', async () => {
    const r = await runNydusd([...base(), '--mountpoint', mnt, '--mountpoint', path.join(work, 'other')], 20_000, mnt);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: the argument '--mountpoint <dir>' cannot be used multiple times$/m);
    assert.equal(isMounted(mnt), false);
  });

  it('-m /a/b attaches the image there, below a pseudo root; a relative one is a usage error (exit 2)', async () => {
    const d = await mountImage([...base(), '--mountpoint', mnt, '-m', '/a/b'], mnt);
    assert.deepEqual(readdirSync(mnt), ['a']);
    assert.deepEqual(readFileSync(path.join(mnt, 'a', 'b', 'hello')), readFileSync(path.join(projectRoot, 'bootstrap-samples', 'tree', 'hello')));
    assert.equal((await d.stop()).code, 0);
    const rel = await runNydusd([...base(), '--mountpoint', mnt, '-m', 'sub'], 20_000, mnt);
    assert.equal(rel.code, 2, rel.stderr);
    assert.match(rel.stderr, /^error: invalid value 'sub' for '--virtual-mountpoint': must be an absolute path$/m);
    assert.equal(isMounted(mnt), false);
  });

  it('--log-file naming a directory (or a file that cannot be opened) is a start-up error (exit 1)', async () => {
    const logDir = path.join(work, 'logs');
    mkdirSync(logDir);
    const r = await runNydusd([...base(), '--mountpoint', mnt, '--log-file', logDir], 20_000, mnt);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^Error: log file ${logDir} is a directory, not a regular file$`, 'm'));
    // the .log name it would use is a directory: cannot be opened either
    mkdirSync(path.join(work, 'x.log'));
    const r2 = await runNydusd([...base(), '--mountpoint', mnt, '--log-file', path.join(work, 'x')], 20_000, mnt);
    assert.equal(r2.code, 1, r2.stderr);
    assert.match(r2.stderr, new RegExp(`^Error: log file ${work}/x.log is a directory, not a regular file$`, 'm'));
    // under a file, where no directory can be made
    writeFileSync(path.join(work, 'plain'), '');
    const r3 = await runNydusd([...base(), '--mountpoint', mnt, '--log-file', path.join(work, 'plain', 'n.log')], 20_000, mnt);
    assert.equal(r3.code, 1, r3.stderr);
    assert.match(r3.stderr, new RegExp(`^Error: (log directory ${work}/plain is a regular file, not a directory|cannot write log file .*ENOTDIR)`, 'm'));
    assert.equal(isMounted(mnt), false);
  });
});
