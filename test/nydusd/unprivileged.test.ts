// nydusd started by an ordinary user: no mount(2) for it, so it mounts through fusermount3 (which hands back
// the /dev/fuse fd over a socket), serves the image, and unmounts through fusermount3 on SIGTERM. Run as
// `nobody` from the root test process. /dev/fuse must be open to all users for this, as distributions ship
// it (0666); the test sets that for its duration where the machine keeps it root-only. The project may sit where
// `nobody` cannot read it (a clone in /root), so nydusd runs from a copy of what it needs at run time: the compiled
// sources, the native addon and the runtime dependencies.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../helpers/paths.js';
import { ADDON_FILE } from '../../src/native/index.js';
import { usersMayAllowOther } from '../../src/fuse/device.js';
import { cleanupDaemons, isMounted, md5, mountImage, removeDir, requireEnv, tempDir, writeConfig } from './helpers.js';

const NOBODY = { uid: 65534, gid: 65534 };
// the runtime dependencies with everything they pull in: every installed package the lock file does not mark dev-only
const lock = JSON.parse(readFileSync(path.join(projectRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
const runtimeModules = Object.entries(lock.packages)
  .filter(([p, e]) => p.startsWith('node_modules/') && !p.slice('node_modules/'.length).includes('node_modules/') && !e.dev)
  .map(([p]) => p)
  .filter((p) => existsSync(path.join(projectRoot, p)));
const RUNTIME = ['package.json', 'dist/src', 'api', `native/${ADDON_FILE}`, ...runtimeModules];
const SAMPLES = path.join(projectRoot, 'bootstrap-samples');

describe('nydusd as an unprivileged user', () => {
  let work: string;
  let fuseMode: number;

  before(() => {
    requireEnv(['fusermount3']);
    fuseMode = statSync('/dev/fuse').mode & 0o777;
    if ((fuseMode & 0o006) !== 0o006) chmodSync('/dev/fuse', 0o666);
    work = tempDir('unprivileged');
    chmodSync(work, 0o755);
    cpSync(path.join(SAMPLES, 'v6-zstd'), path.join(work, 'image'), { recursive: true });
    for (const d of ['mnt', 'cache']) {
      mkdirSync(path.join(work, d));
      chownSync(path.join(work, d), NOBODY.uid, NOBODY.gid);
    }
    for (const p of RUNTIME) cpSync(path.join(projectRoot, p), path.join(work, 'nydus-ts', p), { recursive: true });
    execFileSync('chmod', ['-R', 'a+rX', path.join(work, 'image'), path.join(work, 'nydus-ts')]);
  });
  after(async () => {
    await cleanupDaemons();
    chmodSync('/dev/fuse', fuseMode);
    removeDir(work);
  });

  it('mounts through fusermount3, serves the image to its user, and unmounts on SIGTERM', async () => {
    const mnt = path.join(work, 'mnt');
    const cfg = writeConfig(path.join(work, 'config.json'), { blobDir: path.join(work, 'image', 'blobs'), workDir: path.join(work, 'cache') });
    chmodSync(cfg, 0o644);
    const nydusd = path.join(work, 'nydus-ts', 'dist', 'src', 'cli', 'nydusd.cjs');
    const d = await mountImage(['fuse', '--config', cfg, '--bootstrap', path.join(work, 'image', 'bootstrap'), '--mountpoint', mnt], mnt, 10_000, { ...NOBODY, nydusd });

    const line = readFileSync('/proc/self/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === mnt)!;
    assert.match(line, /^rafs \S+ fuse ro,nosuid,nodev,/);
    assert.match(line, /user_id=65534,group_id=65534/);
    const allowOther = usersMayAllowOther();
    assert.equal(/allow_other/.test(line), allowOther, `allow_other only with user_allow_other in /etc/fuse.conf: ${line}`);
    if (!allowOther) assert.match(d.stderr, /without allow_other: \/etc\/fuse.conf has no user_allow_other/);

    // the daemon's user reads every file as in the source tree
    const tree = path.join(SAMPLES, 'tree');
    const files = execFileSync('find', ['.', '-type', 'f'], { cwd: tree, encoding: 'utf8' }).trim().split('\n').sort();
    assert.ok(files.length > 3);
    // (no cwd: the child enters it before it drops root, and root is not let into a mount without allow_other)
    const asNobody = execFileSync('md5sum', files.map((f) => path.join(mnt, f)), { encoding: 'utf8', ...NOBODY });
    for (const [i, l] of asNobody.trim().split('\n').entries()) {
      assert.equal(l.slice(0, 32), md5(readFileSync(path.join(tree, files[i]!))), files[i]);
    }
    // the blob cache belongs to the daemon's user
    const cached = execFileSync('ls', [path.join(work, 'cache')], { encoding: 'utf8' }).trim().split('\n');
    assert.ok(cached.some((f) => f.endsWith('.blob.data')), cached.join(' '));
    assert.equal(statSync(path.join(work, 'cache', cached.find((f) => f.endsWith('.blob.data'))!)).uid, NOBODY.uid);

    const r = await d.stop();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(isMounted(mnt), false, 'SIGTERM unmounted it through fusermount3');
  });
});
