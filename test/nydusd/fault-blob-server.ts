// Child process of the backend fault tests: a FUSE filesystem (our own session, the real kernel) serving the
// regular files of a directory read-only, with faults injected at byte ranges on command. Each line on stdin is
// one JSON command, answered by "ok" on stdout once it is in force:
//   {"file": "<name>", "kind": "flip", "offset": o, "length": n}   bytes [o, o+n) read back XORed with 0xff
//   {"file": "<name>", "kind": "short", "offset": o}               the file ends at o for readers (size unchanged)
//   {"file": "<name>", "kind": "slow", "offset": o, "length": n, "ms": t}   reads touching the range wait t ms
//   {"file": "<name>", "kind": "fail", "offset": o, "length": n}   reads touching the range fail with EIO
//   {"clear": true}                                                every fault removed
// Files are opened with direct_io, so every read of the blob reaches this process and sees the faults in force.
// Prints "ready" once mounted; SIGTERM unmounts and exits.
//   node fault-blob-server.js <mountpoint> <directory>
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { Session } from '../../src/fuse/session.js';
import { FuseError, type DirEntry, type Entry, type FileSystem } from '../../src/fuse/filesystem.js';
import type { Attr, StatFs } from '../../src/fuse/protocol.js';

const [mountpoint, dir] = process.argv.slice(2);
if (!mountpoint || !dir) throw new Error('usage: fault-blob-server.js <mountpoint> <directory>');

interface Fault {
  file: string;
  kind: 'flip' | 'short' | 'slow' | 'fail';
  offset: number;
  length?: number;
  ms?: number;
}

const names = fs.readdirSync(dir).filter((n) => fs.statSync(path.join(dir, n)).isFile()).sort();
const fds = names.map((n) => fs.openSync(path.join(dir, n), 'r'));
// node ids: 1 is the directory, 2 + i the i-th file
const attrOf = (i: number): Attr => ({ ino: BigInt(2 + i), size: fs.fstatSync(fds[i]!).size, mode: 0o100644, nlink: 1 });
const dirAttr: Attr = { ino: 1n, size: 0, mode: 0o040755, nlink: 2 };
let faults: Fault[] = [];

const touches = (f: Fault, start: number, end: number) => f.offset < end && start < f.offset + (f.length ?? Infinity);

const faultFs: FileSystem = {
  async lookup(parent: bigint, n: Buffer): Promise<Entry> {
    const i = names.indexOf(n.toString());
    if (parent !== 1n || i < 0) throw new FuseError('ENOENT');
    return { nodeId: BigInt(2 + i), entryTimeout: 0, attrTimeout: 0, attr: attrOf(i) };
  },
  async getattr(node: bigint) {
    return { attr: node === 1n ? dirAttr : attrOf(Number(node) - 2), timeout: 0 };
  },
  async open() {
    return { directIo: true };
  },
  async read(node: bigint, _fh: bigint, offsetBig: bigint, size: number): Promise<Buffer> {
    const i = Number(node) - 2;
    const name = names[i]!;
    const offset = Number(offsetBig);
    let end = offset + size;
    const mine = faults.filter((f) => f.file === name);
    for (const f of mine) if (f.kind === 'short') end = Math.min(end, f.offset);
    for (const f of mine) if (f.kind === 'slow' && touches(f, offset, offset + size)) await new Promise((r) => setTimeout(r, f.ms ?? 0));
    if (mine.some((f) => f.kind === 'fail' && touches(f, offset, offset + size))) throw new FuseError('EIO');
    if (end <= offset) return Buffer.alloc(0);
    const buf = Buffer.alloc(end - offset);
    const n = fs.readSync(fds[i]!, buf, 0, buf.length, offset);
    const out = buf.subarray(0, n);
    for (const f of mine) {
      if (f.kind !== 'flip') continue;
      for (let p = Math.max(f.offset, offset); p < Math.min(f.offset + f.length!, offset + n); p++) out[p - offset]! ^= 0xff;
    }
    return out;
  },
  async readdir(node: bigint, _fh: bigint, offset: bigint): Promise<Iterable<DirEntry>> {
    if (node !== 1n) throw new FuseError('ENOTDIR');
    return names.slice(Number(offset)).map((name, k) => ({ name, ino: BigInt(2 + Number(offset) + k), mode: 0o100000, offset: Number(offset) + k + 1 }));
  },
  async statfs(): Promise<StatFs> {
    return { bsize: 4096, frsize: 4096, namelen: 255 };
  },
};

const session = await Session.mount(faultFs, { mountpoint, readers: 4 });
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = JSON.parse(line) as Fault | { clear: true };
  if ('clear' in cmd) faults = [];
  else {
    if (!names.includes(cmd.file)) throw new Error(`no file ${cmd.file} in ${dir}`);
    faults.push(cmd);
  }
  process.stdout.write('ok\n');
});
process.on('SIGTERM', () => {
  void session.unmount({ lazy: true }).finally(() => process.exit(0));
});
process.stdout.write('ready\n');
