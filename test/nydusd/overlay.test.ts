// Acceptance 2: a nydusd mount as the lower layer of a kernel overlayfs (how containers use it) behaves
// exactly like a native directory holding the same tree: the same reads, copy-up writes, whiteouts and
// opaque directories give the same merged view and the same upper layer.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, linkSync, mkdirSync, openSync, closeSync, writeSync, renameSync, rmSync, symlinkSync, chmodSync, utimesSync, writeFileSync, rmdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../helpers/paths.js';
import { diffSnapshots, snapshotDisk, type Snapshot } from '../image/helpers.js';
import { cleanupDaemons, isMounted, mountImage, removeDir, requireEnv, run, tempDir, writeConfig } from './helpers.js';

const SAMPLE = path.join(projectRoot, 'bootstrap-samples', 'v6-zstd');
const FIXED = new Date(1_750_000_000 * 1000);

/** The same changes, made through either overlay. */
function mutate(root: string): void {
  const p = (rel: string) => path.join(root, rel);
  // copy-up writes: append, overwrite in place, metadata only
  appendFileSync(p('docs/readme.txt'), 'appended through the overlay\n');
  const fd = openSync(p('data/numbers.txt'), 'r+');
  writeSync(fd, Buffer.from('OVERWRITTEN'), 0, 11, 100);
  closeSync(fd);
  chmodSync(p('bin/hello.sh'), 0o700);
  // whiteouts: a file, a symlink, a file in a non-ASCII directory, an emptied directory
  unlinkSync(p('data/big.bin'));
  unlinkSync(p('data/readme-link'));
  unlinkSync(p('ünïcödé/naïve-文件.txt'));
  rmdirSync(p('empty-dir'));
  // opaque directory: removed with its contents, then created again
  rmSync(p('data/nested'), { recursive: true });
  mkdirSync(p('data/nested'));
  writeFileSync(p('data/nested/new.txt'), 'new file in an opaque directory\n');
  // new entries, a rename (copy-up plus whiteout), a new hardlink of a copied-up file
  mkdirSync(p('newdir'));
  writeFileSync(p('newdir/file'), 'hello\n');
  symlinkSync('../docs/notes2.md', p('newdir/link'));
  renameSync(p('docs/notes.md'), p('docs/notes2.md'));
  linkSync(p('docs/readme.txt'), p('docs/readme-link2'));
  for (const f of ['docs/readme.txt', 'data/numbers.txt', 'data/nested/new.txt', 'newdir/file']) utimesSync(p(f), FIXED, FIXED);
}

/** Directory mtimes and the roots reflect when the test ran, not what the filesystems did. */
function comparable(s: Snapshot): Snapshot {
  for (const e of s.values()) if ((e.mode & 0o170000) === 0o040000) delete e.mtime;
  return s;
}

/** overlayfs' own bookkeeping xattrs name the lower filesystem (file handles, uuids): not comparable. */
const ignoreXattr = (n: string) => n.startsWith('security.') || (n.startsWith('trusted.overlay.') && n !== 'trusted.overlay.opaque');

describe('nydusd mount as an overlayfs lower layer', () => {
  let work: string;
  let tmpfs: string;
  const overlays: string[] = [];

  before(() => {
    requireEnv(['mount', 'umount', 'cp', 'getfattr']);
    work = tempDir('overlay');
    tmpfs = path.join(work, 't');
    mkdirSync(tmpfs);
    run('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', tmpfs]);
  });
  after(async () => {
    for (const m of overlays.reverse()) if (isMounted(m)) run('umount', ['-l', m]);
    await cleanupDaemons();
    if (isMounted(tmpfs)) run('umount', ['-l', tmpfs]);
    removeDir(work);
  });

  it('reads, copy-up writes, whiteouts and opaque directories match a native lower directory', async () => {
    const fuse = path.join(work, 'fuse');
    const cfg = writeConfig(path.join(work, 'cfg.json'), { blobDir: path.join(SAMPLE, 'blobs'), workDir: path.join(work, 'cache') });
    const d = await mountImage(['fuse', '--config', cfg, '--bootstrap', path.join(SAMPLE, 'bootstrap'), '--mountpoint', fuse], fuse);

    const native = path.join(tmpfs, 'native');
    run('cp', ['-a', `${fuse}/.`, native]);
    const merged: Record<'image' | 'native', { dir: string; upper: string }> = {} as never;
    for (const [name, lower] of [['image', fuse], ['native', native]] as const) {
      const dir = path.join(tmpfs, `merged-${name}`);
      const upper = path.join(tmpfs, `upper-${name}`);
      const wd = path.join(tmpfs, `work-${name}`);
      for (const x of [dir, upper, wd]) mkdirSync(x);
      run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${wd}`, dir]);
      overlays.push(dir);
      merged[name] = { dir, upper };
    }

    // reads: the untouched merged views are the same tree, contents and all
    const opts = { content: true, mtime: true, ignoreXattr };
    assert.deepEqual(diffSnapshots(snapshotDisk(merged.native.dir, opts), snapshotDisk(merged.image.dir, opts)), []);

    mutate(merged.image.dir);
    mutate(merged.native.dir);
    const want = comparable(snapshotDisk(merged.native.dir, opts));
    const got = comparable(snapshotDisk(merged.image.dir, opts));
    assert.deepEqual(diffSnapshots(want, got), []);
    assert.ok(!got.has('/data/big.bin') && got.has('/data/nested/new.txt') && !got.has('/data/nested/deeper'));

    // the upper layers hold the same copies, whiteouts (0/0 character devices) and opaque markers
    const upWant = comparable(snapshotDisk(merged.native.upper, opts));
    const upGot = comparable(snapshotDisk(merged.image.upper, opts));
    assert.deepEqual(diffSnapshots(upWant, upGot), []);
    assert.equal(upGot.get('/data/big.bin')?.mode, 0o020000);
    assert.equal(upGot.get('/data/nested')?.xattrs['trusted.overlay.opaque'], Buffer.from('y').toString('hex'));

    // the lower image itself is untouched
    assert.equal(run('md5sum', [path.join(fuse, 'docs/readme.txt')]).split(' ')[0], run('md5sum', [path.join(SAMPLE, '..', 'tree', 'docs/readme.txt')]).split(' ')[0]);

    for (const m of overlays.splice(0).reverse()) run('umount', [m]);
    assert.equal((await d.stop()).code, 0);
  });
});
