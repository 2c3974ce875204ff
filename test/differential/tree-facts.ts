// What the ordinary tools see of a mounted image, path by path, for comparing two daemons' mounts of it: `find`
// (its order is the daemon's readdir order), `stat` (every field), `stat -f`, `getfattr -d -m -` and a probe of an
// absent attribute (exit status and message included: an error is a fact too), `readlink` and `md5sum`.
import { spawnSync } from 'node:child_process';
import { run } from '../nydusd/helpers.js';

const C_LOCALE = { ...process.env, LC_ALL: 'C' };

/** `stat` fields by name: %f raw mode, %s size, %h nlink, %u/%g ids, %y/%x/%z times with nanoseconds, %b/%B
 * blocks and their unit, %o I/O block, %t/%T device major/minor, %i inode number. */
const STAT_FIELDS = { mode: '%f', size: '%s', nlink: '%h', uid: '%u', gid: '%g', mtime: '%y', atime: '%x', ctime: '%z', blocks: '%b', blockUnit: '%B', ioBlock: '%o', rdevMajor: '%t', rdevMinor: '%T', ino: '%i' };
const STATFS_FIELDS = { bsize: '%s', frsize: '%S', blocks: '%b', bfree: '%f', bavail: '%a', files: '%c', ffree: '%d', namemax: '%l', fstype: '%T', fsid: '%i' };

/** One value per fact, keyed `<path> <fact>`; the path is relative to the mount (`.` is its root). */
export type Facts = Map<string, string>;

function tool(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: C_LOCALE, timeout: 60_000 });
  if (r.error) throw r.error;
  return `exit ${r.status}; ${r.stdout.trim()}${r.stderr ? `; stderr ${r.stderr.trim()}` : ''}`;
}

export function treeFacts(mnt: string): Facts {
  const facts: Facts = new Map();
  const order = run('find', ['.', '-print0'], { cwd: mnt, env: C_LOCALE }).split('\0').filter(Boolean);
  facts.set('. find-order', order.join('\n'));
  // stat's --printf decodes the octal escapes: fields split by \037, name by \036, records by NUL
  const fmt = Object.values(STAT_FIELDS).join('\\037');
  const stats = run('find', ['.', '-exec', 'stat', '--printf', `%n\\036${fmt}\\000`, '{}', '+'], { cwd: mnt, env: C_LOCALE }).split('\0').filter(Boolean);
  const types = new Map<string, number>();
  for (const rec of stats) {
    const [name, rest] = rec.split('\x1e') as [string, string];
    const values = rest.split('\x1f');
    Object.keys(STAT_FIELDS).forEach((k, i) => facts.set(`${name} ${k}`, values[i]!));
    types.set(name, parseInt(values[0]!, 16) & 0o170000);
  }
  const fsValues = run('stat', ['-f', '--printf', Object.values(STATFS_FIELDS).join('\\037'), '.'], { cwd: mnt, env: C_LOCALE }).split('\x1f');
  Object.keys(STATFS_FIELDS).forEach((k, i) => facts.set(`. statfs.${k}`, fsValues[i]!));
  for (const [name, type] of types) {
    facts.set(`${name} getfattr`, tool('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--', name], mnt));
    facts.set(`${name} getfattr-absent`, tool('getfattr', ['-h', '-n', 'user.differential-absent', '--', name], mnt));
    if (type === 0o120000) facts.set(`${name} readlink`, tool('readlink', ['--', name], mnt));
    if (type === 0o100000) facts.set(`${name} md5`, tool('md5sum', ['--', name], mnt));
  }
  return facts;
}

export interface FactDifference {
  key: string;
  path: string;
  fact: string;
  ref: string | undefined;
  ours: string | undefined;
}

/** Every fact whose value differs between the two mounts (or that only one of them has). */
export function diffFacts(ref: Facts, ours: Facts): FactDifference[] {
  const out: FactDifference[] = [];
  for (const key of new Set([...ref.keys(), ...ours.keys()])) {
    if (ref.get(key) === ours.get(key)) continue;
    const at = key.lastIndexOf(' ');
    out.push({ key, path: key.slice(0, at), fact: key.slice(at + 1), ref: ref.get(key), ours: ours.get(key) });
  }
  return out;
}
