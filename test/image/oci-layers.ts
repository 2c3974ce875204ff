// Three OCI layers with deletions (`.wh.<name>`), opaque directories (`.wh..wh..opq`), hardlinks and xattrs, and
// their conversion to the overlayfs whiteout form, so the kernel's overlayfs can say what a merge must show.
import { linkSync, mkdirSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { prng, run, snapshotDisk, withoutDirSizes, type SnapOptions, type Snapshot } from './helpers.js';

export type Layer = Record<string, string | { dir: true } | { hardlinkTo: string } | { xattr: [string, string]; data: string }>;

const big = (seed: number) => {
  const r = prng(seed);
  return Buffer.from(Array.from({ length: 3 * 4096 + 77 }, () => Math.floor(r() * 256))).toString('latin1');
};

export const LAYERS: Layer[] = [
  {
    'a/x': 'x1', 'a/y': { xattr: ['user.layer', '1'], data: 'y1' }, 'a/sub/z': 'z1', b: 'b1', 'c/1': 'c1', 'c/2': 'c2',
    d: 'd1', 'e/k': 'k1', h1: 'hardlinked', h2: { hardlinkTo: 'h1' }, keep: 'keep', big: big(1), 'deep/er/path/file': 'deep',
  },
  {
    'a/.wh.x': '', '.wh.b': '', 'c/.wh..wh..opq': '', 'c/3': 'c3', 'd/new': 'new2', e: 'e2', 'newdir/f': 'f2', 'a/y': 'y2',
    'deep/er/.wh..wh..opq': '', 'deep/er/other': 'o2',
  },
  {
    '.wh.newdir': '', 'c/.wh.3': '', 'c/4': 'c4', 'a/.wh.sub': '', b: { xattr: ['user.layer', '3'], data: 'b3' }, 'a/x': 'x3',
    '.wh.h1': '', 'd/.wh.new': '', '.wh.e': '', 'a/.wh.y': '', 'deep/er/.wh.other': '',
  },
];

export function writeLayer(dir: string, layer: Layer): void {
  mkdirSync(dir, { recursive: true });
  for (const [p, v] of Object.entries(layer)) {
    const full = path.join(dir, p);
    mkdirSync(path.dirname(full), { recursive: true });
    if (typeof v === 'string') writeFileSync(full, Buffer.from(v, 'latin1'));
    else if ('dir' in v) mkdirSync(full, { recursive: true });
    else if ('hardlinkTo' in v) linkSync(path.join(dir, v.hardlinkTo), full);
    else {
      writeFileSync(full, v.data);
      run('setfattr', ['-n', v.xattr[0], '-v', v.xattr[1], full]);
    }
  }
}

/** OCI whiteouts -> overlayfs ones: `.wh.<n>` becomes a 0/0 char device, `.wh..wh..opq` the opaque xattr. */
export function toOverlayfs(dir: string): void {
  // Replacing entries bumps the directory's mtime; the layer's own mtime is what overlayfs must show.
  const st = statSync(dir);
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, name.name);
    if (name.name === '.wh..wh..opq') {
      rmSync(full);
      run('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', dir]);
    } else if (name.name.startsWith('.wh.')) {
      rmSync(full);
      run('mknod', [path.join(dir, name.name.slice(4)), 'c', '0', '0']);
    } else if (name.isDirectory()) {
      toOverlayfs(full);
    }
  }
  utimesSync(dir, st.atime, st.mtime);
}

/** Writes LAYERS as `<work>/layer<i>/` and their pax tars `<work>/layer<i>.tar` (xattrs kept); returns the tars. */
export function writeLayerTars(work: string): string[] {
  return LAYERS.map((l, i) => {
    const d = path.join(work, `layer${i}`);
    writeLayer(d, l);
    const tar = path.join(work, `layer${i}.tar`);
    run('tar', ['--format=pax', '--xattrs', '--xattrs-include=*', '-cf', tar, '-C', d, '.']);
    return tar;
  });
}

/**
 * What a merge of the tars writeLayerTars wrote must show: the same tars extracted, whiteouts converted, stacked
 * by the kernel's overlayfs (needs root), listed without directory sizes, unmounted again.
 */
export function overlaySnapshot(work: string, o: SnapOptions): Snapshot {
  const lowers = LAYERS.map((_, i) => {
    const d = path.join(work, `ovl${i}`);
    mkdirSync(d);
    run('tar', ['--xattrs', '--xattrs-include=*', '-xpf', path.join(work, `layer${i}.tar`), '-C', d]);
    toOverlayfs(d);
    return d;
  });
  const mnt = path.join(work, 'ovl-mnt');
  mkdirSync(mnt);
  run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${[...lowers].reverse().join(':')}`, mnt]);
  try {
    return withoutDirSizes(snapshotDisk(mnt, o));
  } finally {
    run('umount', [mnt]);
  }
}
