// /proc/self/mountinfo, the one place it is parsed (proc(5)): one mount per line,
//   `<id> <parent> <major>:<minor> <root> <mount point> <options> [optional fields...] - <fstype> <source> <super options>`.
// The kernel escapes space, tab, newline and backslash in paths as \040 \011 \012 \134; they are decoded
// here, and the raw bytes are read as latin1 first so that non-UTF-8 names survive the decoding.
import fs from 'node:fs';
import path from 'node:path';

export interface Mount {
  id: number;
  parentId: number;
  major: number;
  minor: number;
  /** the directory of the filesystem mounted here (bind mounts: not `/`) */
  root: string;
  mountPoint: string;
  options: string;
  fsType: string;
  source: string;
  superOptions: string;
}

/** Decodes the kernel's octal escapes (`\040` -> space, ...) of one field, read as latin1, to a string. */
export function decodeField(field: string): string {
  const latin1 = field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
  return Buffer.from(latin1, 'latin1').toString('utf8');
}

/** Parses mountinfo text; malformed lines are skipped (the kernel writes none). */
export function parseMountinfo(text: string): Mount[] {
  const out: Mount[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (sep < 0 || sep + 3 >= f.length) continue;
    const dev = /^(\d+):(\d+)$/.exec(f[2]!);
    if (!dev) continue;
    out.push({
      id: Number(f[0]),
      parentId: Number(f[1]),
      major: Number(dev[1]),
      minor: Number(dev[2]),
      root: decodeField(f[3]!),
      mountPoint: decodeField(f[4]!),
      options: f[5]!,
      fsType: f[sep + 1] ?? '',
      source: decodeField(f[sep + 2] ?? ''),
      superOptions: f[sep + 3] ?? '',
    });
  }
  return out;
}

/** The mounts of this process's namespace, in mount order. */
export function readMounts(file = '/proc/self/mountinfo'): Mount[] {
  return parseMountinfo(fs.readFileSync(file).toString('latin1'));
}

/** The mount whose mount point is exactly `dir` (the top one when several are stacked), if any. */
export function mountAt(dir: string, mounts: Mount[] = readMounts()): Mount | undefined {
  let found: Mount | undefined;
  for (const m of mounts) if (m.mountPoint === dir) found = m; // later lines are mounted on top
  return found;
}

/** The mount holding the absolute, symlink-free path `p`: the one with the longest mount point above it. */
export function mountContaining(p: string, mounts: Mount[] = readMounts()): Mount | undefined {
  let found: Mount | undefined;
  for (const m of mounts) {
    const mp = m.mountPoint;
    const under = mp === '/' || p === mp || p.startsWith(mp.endsWith('/') ? mp : `${mp}/`);
    if (!under || !path.isAbsolute(mp)) continue;
    if (!found || mp.length >= found.mountPoint.length) found = m;
  }
  return found;
}
