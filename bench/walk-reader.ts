// Child process of the walk benchmark: opens a bootstrap and walks every entry with our reader, printing
// one `unsquashfs -lln`-like line per entry (mode, uid/gid, size, mtime, path[, -> target]) so both sides
// do the same work. `--quiet` walks and reads the attributes without formatting anything.
// Prints the in-process seconds (open + walk) and the entry count as JSON on stderr.
//   node dist/bench/walk-reader.js <bootstrap> [--quiet] > /dev/null
import { loadBootstrap } from '../src/rafs/bootstrap.js';
import { walk } from '../src/rafs/walk.js';

const S_IFMT = 0o170000;
const TYPE_CHAR: Record<number, string> = { 0o040000: 'd', 0o100000: '-', 0o120000: 'l', 0o020000: 'c', 0o060000: 'b', 0o010000: 'p', 0o140000: 's' };
const RWX = ['---', '--x', '-w-', '-wx', 'r--', 'r-x', 'rw-', 'rwx'];

function modeString(mode: number): string {
  return (TYPE_CHAR[mode & S_IFMT] ?? '?') + RWX[(mode >> 6) & 7] + RWX[(mode >> 3) & 7] + RWX[mode & 7];
}

function main(): void {
  const file = process.argv[2];
  if (!file) throw new Error('usage: walk-reader.js <bootstrap> [--quiet]');
  const quiet = process.argv.includes('--quiet');
  const t0 = process.hrtime.bigint();
  const bs = loadBootstrap(file);
  let n = 0;
  let sink = 0;
  const parts: string[] = [];
  walk(bs, (p, inode) => {
    n++;
    if (quiet) {
      sink += inode.mode + inode.size + p.length;
      return;
    }
    let line = `${modeString(inode.mode)} ${inode.uid}/${inode.gid} ${inode.size} ${inode.mtime} ${p.toString()}`;
    if ((inode.mode & S_IFMT) === 0o120000) line += ` -> ${bs.readlink(inode.ino).toString()}`;
    parts.push(line);
    if (parts.length >= 4096) {
      process.stdout.write(parts.join('\n') + '\n');
      parts.length = 0;
    }
  });
  if (parts.length) process.stdout.write(parts.join('\n') + '\n');
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  process.stderr.write(JSON.stringify({ seconds, entries: n, sink }) + '\n');
}

main();
