// Generated trees built with every version × compressor × digester read back identical (tree,
// attributes, xattrs, contents), and a tar-built image unpacks to the source tar's entries.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync, readdirSync } from 'node:fs';
import path from 'node:path';
import {
  cleanup, diffSnapshots, generateTree, loadImageFile, nydusImageOk, requireTool, run, snapshotDisk,
  snapshotImage, tempDir,
} from './helpers.js';
import { readTarEntries, type TarEntry } from '../../src/builder/source-tar.js';

const CHUNK = 0x1000;

describe('round trip of generated trees', () => {
  let work: string;
  let src: string;
  let expected: ReturnType<typeof snapshotDisk>;

  before(() => {
    for (const t of ['setfattr', 'getfattr', 'mkfifo', 'mknod', 'tar']) requireTool(t);
    work = tempDir('roundtrip');
    src = path.join(work, 'src');
    generateTree(src, { seed: 20261123, chunkSize: CHUNK, bigDir: 2000, largeFiles: 3 });
    expected = snapshotDisk(src, { content: true, mtime: true });
  });
  after(() => cleanup(work));

  for (const version of ['5', '6']) {
    for (const compressor of ['none', 'lz4_block', 'zstd', 'gzip']) {
      for (const digester of ['blake3', 'sha256']) {
        it(`v${version} ${compressor} ${digester}`, () => {
          const out = path.join(work, `v${version}-${compressor}-${digester}`);
          nydusImageOk([
            'create', '--fs-version', version, '--compressor', compressor, '--digester', digester,
            '--chunk-size', '0x1000', '-B', path.join(out, 'boot'), '-D', path.join(out, 'blobs'), src,
          ]);
          nydusImageOk(['check', '-B', path.join(out, 'boot'), '-D', path.join(out, 'blobs')]);
          const bs = loadImageFile(path.join(out, 'boot'));
          assert.equal(bs.superblock.version, Number(version));
          assert.equal(bs.superblock.chunkSize, CHUNK);
          assert.equal(bs.blobs.length, 1);
          const got = snapshotImage(bs, { blobDir: path.join(out, 'blobs') }, { content: true, mtime: true });
          assert.deepEqual(diffSnapshots(expected, got), []);
          assert.equal(got.size, expected.size);
          cleanup(out);
        });
      }
    }
  }

  it('blob-toc + inline meta + prefetch + output-json, v6 and v5', () => {
    for (const version of ['6', '5']) {
      const out = path.join(work, `features-v${version}`);
      const json = path.join(out, 'out.json');
      nydusImageOk([
        'create', '-v', version, ...(version === '6' ? ['--features', 'blob-toc'] : []), '--blob-inline-meta',
        '--prefetch-policy', 'fs', '--chunk-size', '0x1000', '-B', path.join(out, 'boot'), '-D', path.join(out, 'blobs'),
        '-J', json, src,
      ], '/bigdir\n/hard-c\n/no/such/path\n');
      const info = JSON.parse(readFileSync(json, 'utf8'));
      assert.equal(info.blobs.length, 1);
      const blob = path.join(out, 'blobs', info.blobs[0]);
      // The blob carries its own bootstrap: it is a complete image on its own.
      nydusImageOk(['check', '-B', blob]);
      const bs = loadImageFile(path.join(out, 'boot'));
      assert.ok(bs.superblock.prefetch.length >= 2, 'prefetch table written');
      const got = snapshotImage(bs, { blobFile: blob }, { content: true, mtime: true });
      assert.deepEqual(diffSnapshots(expected, got), []);
      cleanup(out);
    }
  });

  it('tar build unpacks to the same entries as the source tar', () => {
    const tarFile = path.join(work, 'layer.tar');
    run('tar', ['--format=pax', '--xattrs', "--xattrs-include=*", '-cf', tarFile, '-C', src, '.']);
    const out = path.join(work, 'tar-image');
    nydusImageOk(['create', '-t', 'tar-rafs', '--chunk-size', '0x1000', '-B', path.join(out, 'boot'), '-D', path.join(out, 'blobs'), tarFile]);
    nydusImageOk(['unpack', '-B', path.join(out, 'boot'), '-D', path.join(out, 'blobs'), '-o', path.join(out, 'back.tar')]);
    const a = tarSnapshot(tarFile);
    const b = tarSnapshot(path.join(out, 'back.tar'));
    assert.ok(a.size > 2000);
    assert.deepEqual(diffMaps(a, b), []);
  });

  it('gzip tar layer is detected by magic and gives the same image tree', () => {
    const tarFile = path.join(work, 'layer2.tar');
    run('tar', ['--format=pax', '--xattrs', "--xattrs-include=*", '-cf', tarFile, '-C', src, '.']);
    run('gzip', ['-k', tarFile]);
    const plain = path.join(work, 'plain');
    const gz = path.join(work, 'gz');
    nydusImageOk(['create', '--chunk-size', '0x1000', '-B', path.join(plain, 'boot'), '-D', path.join(plain, 'blobs'), tarFile]);
    nydusImageOk(['create', '--chunk-size', '0x1000', '-B', path.join(gz, 'boot'), '-D', path.join(gz, 'blobs'), tarFile + '.gz']);
    const s1 = snapshotImage(loadImageFile(path.join(plain, 'boot')), { blobDir: path.join(plain, 'blobs') }, { content: true, mtime: true });
    const s2 = snapshotImage(loadImageFile(path.join(gz, 'boot')), { blobDir: path.join(gz, 'blobs') }, { content: true, mtime: true });
    assert.deepEqual(diffSnapshots(s1, s2), []);
    // Same content, same chunking, same order: the blobs are identical.
    assert.deepEqual(readdirSync(path.join(plain, 'blobs')), readdirSync(path.join(gz, 'blobs')));
    // And the tar-built image carries what the directory had (minus root attributes a tar sets).
    const fromDir = snapshotDisk(src, { content: true, mtime: true });
    fromDir.delete('/');
    s1.delete('/');
    assert.deepEqual(diffSnapshots(fromDir, s1), []);
  });
});

interface TarSnap {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size: number;
  link?: string;
  dev?: string;
  xattrs: Record<string, string>;
  md5?: string;
  group?: string;
}

/** Parsed tar entries keyed by normalised path; hardlinks resolved to their target's data and grouped. */
function tarSnapshot(file: string): Map<string, TarSnap> {
  const out = new Map<string, TarSnap>();
  const fd = openSync(file, 'r');
  const links: Array<[string, string]> = [];
  try {
    readTarEntries(file, file, (e: TarEntry) => {
      const p = '/' + e.path.toString().replace(/^\.?\/+/, '').replace(/\/+$/, '');
      if (p === '/') return;
      const xattrs: Record<string, string> = {};
      for (const k of [...e.xattrs.keys()].sort()) xattrs[k] = e.xattrs.get(k)!.toString('hex');
      const s: TarSnap = { type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, size: 0, xattrs };
      if (e.type === '0') {
        const b = Buffer.alloc(e.size);
        if (e.size > 0) readSync(fd, b, 0, e.size, e.dataOffset);
        s.size = e.size;
        s.md5 = createHash('md5').update(b).digest('hex');
      } else if (e.type === '1') {
        links.push([p, '/' + e.linkname.toString().replace(/^\.?\/+/, '')]);
      } else if (e.type === '2') {
        s.link = e.linkname.toString();
      } else if (e.type === '3' || e.type === '4') {
        s.dev = `${e.devmajor}:${e.devminor}`;
      }
      out.set(p, s);
    });
  } finally {
    closeSync(fd);
  }
  const groups = new Map<string, string[]>();
  for (const [p, target] of links) {
    const t = out.get(target);
    assert.ok(t, `hardlink ${p} -> ${target} has no target`);
    out.set(p, { ...t!, mode: out.get(p)!.mode });
    groups.set(target, [...(groups.get(target) ?? [target]), p]);
  }
  for (const paths of groups.values()) {
    const name = [...paths].sort()[0];
    for (const p of paths) out.get(p)!.group = name;
  }
  return out;
}

function diffMaps(a: Map<string, TarSnap>, b: Map<string, TarSnap>): string[] {
  const out: string[] = [];
  for (const k of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = JSON.stringify(a.get(k));
    const y = JSON.stringify(b.get(k));
    if (x !== y) out.push(`${k}: ${x} != ${y}`);
    if (out.length > 8) break;
  }
  return out;
}
