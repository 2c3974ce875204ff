// Tree sources and layer application in isolation: the real nydus tar fixtures, PAX/GNU details,
// whiteout specs for directory builds, overlayfs-style layers, merge's blob renumbering.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { texture } from '../helpers/paths.js';
import { parseTarFile, treeFromTarFile, makedev, devMajor, devMinor } from '../../src/builder/source-tar.js';
import { treeFromDirectory, parseGetfattr } from '../../src/builder/source-dir.js';
import { applyLayer, dropWhiteouts, newDir } from '../../src/builder/overlay.js';
import { S_IFCHR, S_IFREG } from '../../src/rafs/common.js';
import { parsePrefetchPatterns, resolvePrefetch } from '../../src/builder/prefetch.js';
import type { TreeInode, TreeNode } from '../../src/builder/tree.js';
import { cleanup, prng, requireTool, run, tempDir } from './helpers.js';

function paths(root: TreeNode): string[] {
  const out: string[] = [];
  const walk = (n: TreeNode, p: string) => {
    for (const c of n.children ?? []) {
      const cp = `${p}/${c.name.toString()}`;
      out.push(cp);
      walk(c, cp);
    }
  };
  walk(root, '');
  return out;
}

function find(root: TreeNode, p: string): TreeNode | undefined {
  let cur: TreeNode | undefined = root;
  for (const part of p.split('/').filter(Boolean)) cur = cur?.children?.find((c) => c.name.toString() === part);
  return cur;
}

/** path -> SCHILY.xattr.* name -> value of every member of a tar, as Python's tarfile module reads them. */
function paxXattrs(tarFile: string): Record<string, Record<string, string>> {
  requireTool('python3');
  const py = [
    'import sys, json, tarfile',
    'out = {}',
    'for m in tarfile.open(sys.argv[1]).getmembers():',
    '  x = {k[len("SCHILY.xattr."):]: v for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")}',
    '  if x: out["/" + m.name.strip("/")] = x',
    'print(json.dumps(out))',
  ].join('\n');
  return JSON.parse(run('python3', ['-c', py, tarFile]));
}

const file = (name: string, data = '', extra: Partial<TreeInode> = {}): TreeNode => ({
  name: Buffer.from(name),
  inode: { mode: S_IFREG | 0o644, uid: 0, gid: 0, mtime: 0, mtimeNsec: 0, rdev: 0, size: data.length, xattrs: new Map(), source: { kind: 'buffer', data: Buffer.from(data) }, ...extra },
});
const dir = (name: string, children: TreeNode[], xattrs: Array<[string, string]> = []): TreeNode => {
  const d = newDir(Buffer.from(name));
  d.children = children.sort((a, b) => Buffer.compare(a.name, b.name));
  d.inode.xattrs = new Map(xattrs.map(([k, v]) => [k, Buffer.from(v)]));
  return d;
};

describe('tar source', () => {
  it('nydus fixture all-entry-type.tar: hardlinks share one inode, symlink kept', async () => {
    const t = await treeFromTarFile(texture('tar', 'all-entry-type.tar'));
    try {
      const a = find(t.root, '/tar/dir1/dir3/hardlink1.txt')!;
      for (const p of ['/tar/dir1/dir3/xfile.txt', '/tar/dir1/hardlink2.txt', '/tar/dir2/hardlink3.txt']) {
        assert.equal(find(t.root, p)!.inode, a.inode, p);
      }
      assert.equal(find(t.root, '/tar/dir2/symlink1.txt')!.inode.symlink!.toString(), '../dir1/dir3/file1.txt');
      assert.equal(t.files.length, 1, 'hardlinked content is dumped once');
      const src = a.inode.source!;
      assert.equal(src.kind, 'file');
      if (src.kind === 'file') {
        const data = readFileSync(src.path).subarray(src.offset, src.offset + src.length);
        assert.equal(data.length, 15);
      }
    } finally {
      t.cleanup();
    }
  });

  it('nydus fixture all-entry-type-macos.tar: long names, SCHILY xattrs on every entry as Python\'s tarfile reads them', async () => {
    const tarFile = texture('tar', 'all-entry-type-macos.tar');
    const t = await treeFromTarFile(tarFile);
    t.cleanup();
    const long = paths(t.root).find((p) => p.includes('this_is_really_a_very_long_name'));
    assert.ok(long && path.basename(long).length > 100, 'long name read from PAX');
    // an independent reader of the PAX records: every member's SCHILY.xattr.* set, and nothing else
    const want = paxXattrs(tarFile);
    assert.ok(Object.keys(want).length >= 6, `the fixture carries xattrs on ${Object.keys(want).length} entries`);
    for (const [p, xattrs] of Object.entries(want)) assert.ok(Object.keys(xattrs).length > 0, p);
    for (const p of paths(t.root)) {
      const got = Object.fromEntries([...find(t.root, p)!.inode.xattrs].map(([k, v]) => [k, v.toString('latin1')]));
      assert.deepEqual(got, want[p] ?? {}, `xattrs of ${p}`);
    }
  });

  it('SCHILY.xattr records are read, LIBARCHIVE.xattr records ignored (spec rafs-format §5.2)', async () => {
    requireTool('python3');
    const work = tempDir('paxattr');
    try {
      const tarFile = path.join(work, 'x.tar');
      // written by Python's tarfile, not by us: one file per record kind, and one with both (different values)
      const py = [
        'import sys, tarfile, io',
        'with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:',
        '  for name, pax in [("schily", {"SCHILY.xattr.user.s": "plain value", "SCHILY.xattr.trusted.t": "x=y z"}),',
        '                    ("libarchive", {"LIBARCHIVE.xattr.user.l": "bGlibGFyY2hpdmU="}),',
        '                    ("both", {"SCHILY.xattr.user.b": "from schily", "LIBARCHIVE.xattr.user.b": "ZnJvbSBsaWJhcmNoaXZl", "LIBARCHIVE.xattr.user.only": "eA=="})]:',
        '    i = tarfile.TarInfo(name); i.size = 4; i.pax_headers = pax',
        '    t.addfile(i, io.BytesIO(b"data"))',
      ].join('\n');
      run('python3', ['-c', py, tarFile]);
      const t = await treeFromTarFile(tarFile);
      t.cleanup();
      const xattrs = (p: string) => Object.fromEntries([...find(t.root, p)!.inode.xattrs].map(([k, v]) => [k, v.toString()]));
      assert.deepEqual(xattrs('/schily'), { 'user.s': 'plain value', 'trusted.t': 'x=y z' });
      assert.deepEqual(xattrs('/libarchive'), {});
      assert.deepEqual(xattrs('/both'), { 'user.b': 'from schily' });
    } finally {
      cleanup(work);
    }
  });

  it('empty tar is an empty tree', async () => {
    const t = await treeFromTarFile(texture('tar', 'empty.tar'));
    t.cleanup();
    assert.deepEqual(t.root.children, []);
  });

  describe('GNU tar output', () => {
    let work: string;
    before(() => {
      requireTool('tar');
      work = tempDir('tarsrc');
      const d = path.join(work, 'd');
      mkdirSync(path.join(d, 'sub'), { recursive: true });
      writeFileSync(path.join(d, 'x'.repeat(200)), 'long');
      symlinkSync('y'.repeat(150), path.join(d, 'sub', 'longlink'));
      writeFileSync(path.join(d, 'sub', 'f'), 'data');
      run('mknod', [path.join(d, 'dev'), 'c', '300', '70000']);
    });
    after(() => cleanup(work));

    for (const format of ['gnu', 'pax', 'ustar']) {
      it(`--format=${format}`, async () => {
        const tarFile = path.join(work, `${format}.tar`);
        const members = format === 'ustar' ? ['sub/f', 'dev'] : ['.'];
        run('tar', [`--format=${format}`, '-cf', tarFile, '-C', path.join(work, 'd'), ...members]);
        const t = await treeFromTarFile(tarFile);
        t.cleanup();
        if (format !== 'ustar') {
          assert.ok(find(t.root, '/' + 'x'.repeat(200)), 'long name');
          assert.equal(find(t.root, '/sub/longlink')!.inode.symlink!.toString(), 'y'.repeat(150));
        }
        const dev = find(t.root, '/dev')!;
        assert.equal(dev.inode.mode & 0o170000, S_IFCHR);
        assert.equal(devMajor(dev.inode.rdev), 300);
        assert.equal(devMinor(dev.inode.rdev), 70000);
        assert.equal(find(t.root, '/sub/f')!.inode.size, 4);
      });
    }
  });

  it('corrupted tars fail with a clear Error, never a TypeError/RangeError or a hang', () => {
    const work = tempDir('tarfuzz');
    try {
      const d = path.join(work, 'd');
      mkdirSync(path.join(d, 'sub'), { recursive: true });
      writeFileSync(path.join(d, 'n'.repeat(180)), 'x'.repeat(3000));
      writeFileSync(path.join(d, 'sub', 'f'), 'data');
      symlinkSync('t'.repeat(120), path.join(d, 'sub', 'l'));
      run('setfattr', ['-n', 'user.a', '-v', 'b', path.join(d, 'sub', 'f')]);
      const good = path.join(work, 'good.tar');
      run('tar', ['--format=pax', '--xattrs', '-cf', good, '-C', d, '.']);
      const base = readFileSync(good);
      const rand = prng(99);
      const bad = path.join(work, 'bad.tar');
      let failures = 0;
      // a parse that hangs is stopped by the runner's per-test timeout (scripts/test.sh); no wall-clock assertion here
      for (let i = 0; i < 400; i++) {
        let buf = Buffer.from(base);
        if (i % 4 === 0) buf = buf.subarray(0, Math.floor(rand() * buf.length));
        const flips = 1 + Math.floor(rand() * 8);
        for (let f = 0; f < flips && buf.length > 0; f++) buf[Math.floor(rand() * Math.min(buf.length, 4096))] = Math.floor(rand() * 256);
        writeFileSync(bad, buf);
        try {
          parseTarFile(bad);
        } catch (e) {
          failures++;
          assert.ok(!(e instanceof TypeError) && !(e instanceof RangeError), `case ${i}: ${(e as Error).stack}`);
          assert.match((e as Error).message, /tar/, `case ${i}`);
        }
      }
      assert.ok(failures > 100, `only ${failures} of 400 corrupted tars were rejected`);
    } finally {
      cleanup(work);
    }
  });

  it('makedev matches glibc for large numbers', () => {
    assert.equal(makedev(1, 3), 0x103);
    assert.equal(makedev(300, 70000), 286338160);
    assert.equal(devMajor(makedev(4095, 1048575)), 4095);
    assert.equal(devMinor(makedev(4095, 1048575)), 1048575);
  });
});

describe('directory source', () => {
  let work: string;
  before(() => {
    work = tempDir('dirsrc');
    const d = path.join(work, 'd');
    mkdirSync(path.join(d, 'sub'), { recursive: true });
    writeFileSync(path.join(d, '.wh.gone'), '');
    writeFileSync(path.join(d, 'sub', '.wh..wh..opq'), '');
    writeFileSync(path.join(d, 'keep'), 'k');
    run('mknod', [path.join(d, 'ovl-whiteout'), 'c', '0', '0']);
    run('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', path.join(d, 'sub')]);
  });
  after(() => cleanup(work));

  it('oci drops .wh.* entries, overlayfs drops 0/0 devices and keeps opaque dirs, none keeps all', () => {
    const d = path.join(work, 'd');
    assert.deepEqual(paths(treeFromDirectory(d, { whiteoutSpec: 'oci' }).root), ['/keep', '/ovl-whiteout', '/sub']);
    const ovl = treeFromDirectory(d, { whiteoutSpec: 'overlayfs' }).root;
    assert.deepEqual(paths(ovl), ['/.wh.gone', '/keep', '/sub', '/sub/.wh..wh..opq']);
    assert.equal(find(ovl, '/sub')!.inode.xattrs.get('trusted.overlay.opaque')?.toString(), 'y');
    assert.equal(paths(treeFromDirectory(d, { whiteoutSpec: 'none' }).root).length, 5);
    assert.equal(treeFromDirectory(d).root.inode.mtime, 0, 'root mtime zeroed');
  });

  it('getfattr output with escaped names parses to raw bytes', () => {
    const out = new Map<string, Map<string, Buffer>>();
    parseGetfattr(Buffer.from('# file: /a/h\\303\\251llo\\\\x\nuser.k=0x6869\nuser.e=""\n\n'), out);
    const m = out.get(Buffer.from('/a/héllo\\x').toString('latin1'))!;
    assert.equal(m.get('user.k')!.toString(), 'hi');
    assert.equal(m.get('user.e')!.length, 0);
  });

  it('missing source is a clear error', () => {
    assert.throws(() => treeFromDirectory(path.join(work, 'missing')), /source directory .*missing: ENOENT/);
  });
});

describe('layer application', () => {
  it('OCI: whiteout, opaque dir, replacement of file by dir and dir by file, re-add after delete', () => {
    const lower = dir('/', [dir('a', [file('x'), file('y')]), dir('b', [file('z')]), file('c'), dir('d', [file('q')]), file('e')]);
    const upper = dir('/', [
      dir('a', [file('.wh.x'), file('x2')]),
      dir('b', [file('.wh..wh..opq'), file('new')]),
      dir('c', [file('inside')]),
      file('d', 'now a file'),
      file('.wh.e'),
      file('e', 're-added'),
      dir('fresh', [file('.wh.nothing'), file('f')]),
    ]);
    const merged = applyLayer(lower, upper, 'oci');
    assert.deepEqual(paths(merged), ['/a', '/a/x2', '/a/y', '/b', '/b/new', '/c', '/c/inside', '/d', '/e', '/fresh', '/fresh/f']);
    assert.equal(find(merged, '/e')!.inode.size, 8);
  });

  it('overlayfs: 0/0 char device deletes, trusted.overlay.opaque clears lower children and is dropped', () => {
    const lower = dir('/', [dir('o', [file('old')]), file('gone'), file('stay')]);
    const wh: TreeNode = { name: Buffer.from('gone'), inode: { ...file('gone').inode, mode: S_IFCHR, rdev: 0, source: undefined } };
    const upper = dir('/', [dir('o', [file('new')], [['trusted.overlay.opaque', 'y'], ['user.k', 'v']]), wh]);
    const merged = applyLayer(lower, upper, 'overlayfs');
    assert.deepEqual(paths(merged), ['/o', '/o/new', '/stay']);
    assert.deepEqual([...find(merged, '/o')!.inode.xattrs.keys()], ['user.k']);
  });

  it('dropWhiteouts(oci) removes nested whiteouts only', () => {
    const t = dir('/', [dir('a', [file('.wh.x'), file('k')]), file('.wh..wh..opq')]);
    dropWhiteouts(t, 'oci');
    assert.deepEqual(paths(t), ['/a', '/a/k']);
  });
});

describe('prefetch patterns', () => {
  it('parses, normalises and resolves in pattern order', () => {
    const t = dir('/', [dir('a', [file('x')]), file('b')]);
    const pats = parsePrefetchPatterns('/b\n\n  /a/./x  \n/a/x\n/missing\n');
    assert.deepEqual(pats, ['/b', '/a/x', '/missing']);
    const warnings: string[] = [];
    const nodes = resolvePrefetch(t, pats, (m) => warnings.push(m));
    assert.deepEqual(nodes.map((n) => n.name.toString()), ['b', 'x']);
    assert.equal(warnings.length, 1);
    assert.throws(() => parsePrefetchPatterns('relative/path'), /must be an absolute path/);
  });
});
