// Acceptance 1: every fixture image, mounted by the real nydusd over kernel FUSE with its blob on a localfs
// backend, shows exactly the expected tree: listing, stat fields, link targets, xattrs and file contents.
// Expectations come from outside our reader where the fixtures carry them (the smoke-test `.result`
// listings, bootstrap-samples/tree.list and its source tree), and for the v6 fixture from the kernel's own
// EROFS mount of the same bootstrap; otherwise the image as our offline reader sees it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fixture, projectRoot, texture } from '../helpers/paths.js';
import { native } from '../../src/native/index.js';
import { diffSnapshots, loadImageFile, snapshotDisk, snapshotImage, writeCacheFiles, type Snapshot } from '../image/helpers.js';
import { cleanupDaemons, md5, mountImage, removeDir, requireEnv, tempDir, writeConfig } from './helpers.js';
import { canonicalTree, fileDigests, reportedCounts, sampleListing, smokeResult, splitResult } from './tree-listing.js';

const HISTORICAL = 'nydus-at-5be153feb0c08571e88934e9020c208d85aefeb0';
const SAMPLES = path.join(projectRoot, 'bootstrap-samples');

type Form = 'fuse' | 'top-level';

interface Image {
  name: string;
  bootstrap: string;
  blobDir: string;
  /** the smoke-test expectation, for the repeatable fixtures */
  result?: string;
  /** RAFS v6: the kernel's EROFS driver mounts the bootstrap too and is the expectation */
  erofs?: boolean;
}

const REPEATABLE_RESULT = (): string => texture('repeatable', 'sha256-nocompress-repeatable.result');
const FIXTURES: Array<Image & { forms: Form[] }> = [
  {
    name: 'v5 sha256-nocompress-repeatable',
    bootstrap: texture('repeatable', 'sha256-nocompress-repeatable'),
    blobDir: texture('repeatable', 'blobs'),
    result: REPEATABLE_RESULT(),
    forms: ['fuse', 'top-level'],
  },
  {
    name: 'v5 blake3-lz4_block-non_repeatable',
    bootstrap: texture('repeatable', 'blake3-lz4_block-non_repeatable'),
    blobDir: texture('repeatable', 'blobs'),
    result: texture('repeatable', 'blake3-lz4_block-non_repeatable.result'),
    forms: ['top-level'],
  },
  {
    // the historical lz4 image (blob d7b86b1e…) holds the same tree as the current fixtures
    name: 'historical v5 blake3-lz4_block',
    bootstrap: fixture(HISTORICAL, 'tests', 'texture', 'repeatable', 'blake3-lz4_block-non_repeatable'),
    blobDir: texture('repeatable', 'blobs'),
    result: REPEATABLE_RESULT(),
    forms: ['fuse'],
  },
  {
    name: 'historical v5 sha256-nocompress',
    bootstrap: fixture(HISTORICAL, 'tests', 'texture', 'repeatable', 'sha256-nocompress-repeatable'),
    blobDir: texture('repeatable', 'blobs'),
    result: REPEATABLE_RESULT(),
    forms: ['top-level'],
  },
  {
    name: 'v6 rafs-v6-2.2.boot',
    bootstrap: texture('bootstrap', 'rafs-v6-2.2.boot'),
    blobDir: texture('blobs'),
    erofs: true,
    forms: ['fuse', 'top-level'],
  },
];

const SAMPLE_IMAGES = ['v5-none', 'v5-lz4_block', 'v5-zstd', 'v6-none', 'v6-lz4_block', 'v6-zstd'];

function nydusdArgs(form: Form, config: string, bootstrap: string, mnt: string): string[] {
  const flags = ['--config', config, '--bootstrap', bootstrap, '--mountpoint', mnt, '--log-level', 'warn'];
  return form === 'fuse' ? ['fuse', ...flags] : flags;
}

/**
 * Stat fields the snapshots do not carry: nlink, and that every hardlink of a file is one inode (the
 * snapshots already group paths by st_ino; here the group sizes must also equal nlink).
 */
function checkLinkCounts(mnt: string): void {
  const byIno = new Map<number, string[]>();
  const nlink = new Map<number, number>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = path.join(dir, name);
      const st = lstatSync(p);
      if (st.isDirectory()) {
        const subdirs = readdirSync(p).filter((n) => lstatSync(path.join(p, n)).isDirectory()).length;
        assert.ok(st.nlink === 2 + subdirs || st.nlink === 1, `${p}: directory nlink ${st.nlink}, has ${subdirs} subdirectories`);
        walk(p);
      } else if (st.isFile()) {
        byIno.set(st.ino, [...(byIno.get(st.ino) ?? []), p]);
        nlink.set(st.ino, st.nlink);
      }
    }
  };
  walk(mnt);
  for (const [ino, paths] of byIno) {
    assert.equal(nlink.get(ino), paths.length, `inode ${ino} (${paths.join(', ')}): nlink ${nlink.get(ino)} but ${paths.length} paths`);
  }
}

/** The mount against the image as the offline reader sees it: mode, uid, gid, size, mtime, links, xattrs, md5. */
function checkAgainstImage(mnt: string, bootstrap: string, blobDir: string, daemonStart: number): void {
  const bs = loadImageFile(bootstrap);
  const want = snapshotImage(bs, { blobDir }, { content: true, mtime: true });
  const got = snapshotDisk(mnt, { content: true, mtime: true });
  compareWithDaemonRules(want, got, bs.superblock.explicitUidGid, daemonStart);
}

const MS_RDONLY = 1;

/**
 * The mount against the kernel's EROFS mount of the same v6 bootstrap, an independent reader of its metadata and
 * of which blob bytes make up each file: file-backed, with the blob's chunks decoded at their uncompressed offsets
 * into a cache file as its device (as test/image/kernel.test.ts does).
 */
function checkAgainstKernel(mnt: string, bootstrap: string, blobDir: string, daemonStart: number, scratch: string): void {
  const bs = loadImageFile(bootstrap);
  const erofs = path.join(scratch, 'erofs');
  mkdirSync(erofs, { recursive: true });
  const devices = writeCacheFiles(bs, blobDir, scratch);
  native.mount(bootstrap, erofs, 'erofs', MS_RDONLY, devices.map((c) => `device=${c}`).join(','));
  let want: Snapshot;
  try {
    want = snapshotDisk(erofs, { content: true, mtime: true });
  } finally {
    const u = spawnSync('umount', [erofs], { encoding: 'utf8' });
    assert.equal(u.status, 0, `umount ${erofs}: ${u.stderr}`);
  }
  assert.ok([...want.values()].filter((e) => e.md5).length > 0, 'the kernel mount shows no regular file');
  const got = snapshotDisk(mnt, { content: true, mtime: true });
  compareWithDaemonRules(want, got, bs.superblock.explicitUidGid, daemonStart);
}

/** Compares an expected snapshot with the mount after applying what nydusd reports differently by design. */
function compareWithDaemonRules(want: Snapshot, got: Snapshot, explicitUidGid: boolean, daemonStart: number): void {
  for (const s of [want, got]) {
    // directory sizes are format-specific, and the root's permission bits are forced to 0755 (nydusd-runtime.md 9.2)
    for (const e of s.values()) if ((e.mode & 0o170000) === 0o040000) delete e.size;
    const root = s.get('/')!;
    root.mode = (root.mode & 0o170000) | 0o755;
  }
  if (!explicitUidGid) {
    // without explicit ids every inode belongs to the daemon's user (root here)
    for (const e of want.values()) e.uid = e.gid = 0;
  }
  // a zero mtime is reported as the daemon's start time (nydusd-runtime.md 9.2)
  const now = Date.now() / 1000;
  for (const [p, e] of want) {
    const g = got.get(p);
    if (e.mtime !== 0 || g?.mtime === undefined) continue;
    assert.ok(g.mtime >= Math.floor(daemonStart / 1000) - 1 && g.mtime <= now, `${p}: zero mtime shown as ${g.mtime}, not the daemon start`);
    g.mtime = 0;
  }
  assert.deepEqual(diffSnapshots(want, got), []);
}

describe('nydusd serves fixture images over FUSE', () => {
  let work: string;
  before(() => {
    requireEnv(['tree', 'md5sum', 'getfattr', 'find', 'sort']);
    work = tempDir('mount');
  });
  after(async () => {
    await cleanupDaemons();
    removeDir(work);
  });

  for (const img of FIXTURES) {
    for (const form of img.forms) {
      it(`${img.name} (${form} form)`, async () => {
        const dir = path.join(work, `${img.name.replace(/\W+/g, '_')}-${form}`);
        const mnt = path.join(dir, 'mnt');
        const cfg = writeConfig(path.join(dir + '.json'), { blobDir: img.blobDir, workDir: path.join(dir, 'cache') });
        const d = await mountImage(nydusdArgs(form, cfg, img.bootstrap, mnt), mnt);
        try {
          if (img.result) {
            const expected = splitResult(readFileSync(img.result, 'utf8'));
            const got = splitResult(smokeResult(mnt));
            // the file digests are compared byte for byte; the tree JSON as a tree (see canonicalTree)
            assert.equal(got.sums, expected.sums);
            const e = canonicalTree(expected.treeJson);
            const g = canonicalTree(got.treeJson);
            assert.deepEqual(g.tree, e.tree);
            // tree counts links by what they point to; 2.x also counts the root directory
            const er = reportedCounts(expected.treeJson);
            const gr = reportedCounts(got.treeJson);
            assert.equal(gr.files, er.files);
            assert.ok(gr.directories === er.directories || gr.directories === er.directories + 1, `tree reports ${gr.directories} directories, expected ${er.directories}`);
          }
          if (img.erofs) checkAgainstKernel(mnt, img.bootstrap, img.blobDir, d.started, dir);
          else checkAgainstImage(mnt, img.bootstrap, img.blobDir, d.started);
          checkLinkCounts(mnt);
        } finally {
          const r = await d.stop();
          assert.equal(r.code, 0, r.stderr);
        }
      });
    }
  }

  for (const name of SAMPLE_IMAGES) {
    it(`bootstrap-samples/${name}: tree.list, source contents, stat fields`, async () => {
      const dir = path.join(work, `sample-${name}`);
      const mnt = path.join(dir, 'mnt');
      const img = path.join(SAMPLES, name);
      const bootstrap = path.join(img, 'bootstrap');
      const blobDir = path.join(img, 'blobs');
      const cfg = writeConfig(dir + '.json', { blobDir, workDir: path.join(dir, 'cache') });
      const d = await mountImage(nydusdArgs(name.startsWith('v5') ? 'top-level' : 'fuse', cfg, bootstrap, mnt), mnt);
      try {
        assert.equal(sampleListing(mnt), readFileSync(path.join(SAMPLES, 'tree.list'), 'utf8'));
        const sums = fileDigests(mnt);
        for (const [rel, want] of fileDigests(path.join(SAMPLES, 'tree'))) assert.equal(sums.get(rel), want, rel);
        assert.equal(sums.get('data/readme-hardlink'), sums.get('docs/readme.txt'));
        assert.equal(sums.get('data/big.bin'), md5(sampleBigFile()));
        assert.equal(sums.get('data/empty'), md5(Buffer.alloc(0)));
        for (const st of [lstatSync(path.join(mnt, 'docs/readme.txt')), lstatSync(path.join(mnt, 'data/nested/deeper/leaf.txt'))]) {
          assert.equal(st.mtimeMs, 1700000000 * 1000);
        }
        assert.equal(lstatSync(path.join(mnt, 'docs/readme.txt')).ino, lstatSync(path.join(mnt, 'data/readme-hardlink')).ino);
        checkAgainstImage(mnt, bootstrap, blobDir, d.started);
        checkLinkCounts(mnt);
      } finally {
        const r = await d.stop();
        assert.equal(r.code, 0, r.stderr);
      }
    });
  }
});

/** data/big.bin as scripts/build-samples.sh generates it (it is not committed). */
function sampleBigFile(): Buffer {
  const b = Buffer.alloc(0x100000 + 1000);
  let x = 12345;
  for (let i = 0; i < b.length; i++) {
    if (i < 0x100000 && i >= 4096) {
      b[i] = b[i - 4096]!;
      continue;
    }
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}
