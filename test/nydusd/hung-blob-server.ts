// Child process of the timeout test: a FUSE filesystem holding one file, named like a blob, whose reads
// never answer (a dead network mount, as far as the reader can tell). SIGUSR1 releases them with EIO;
// SIGTERM unmounts and exits. Prints "ready" once mounted.
//   node hung-blob-server.js <mountpoint> <file name> <size>
import { Session } from '../../src/fuse/session.js';
import { FuseError, type DirEntry, type Entry, type FileSystem } from '../../src/fuse/filesystem.js';
import type { Attr, StatFs } from '../../src/fuse/protocol.js';

const [mountpoint, name, sizeArg] = process.argv.slice(2);
if (!mountpoint || !name || !sizeArg) throw new Error('usage: hung-blob-server.js <mountpoint> <file name> <size>');
const size = Number(sizeArg);
const FILE = 2n;
const TIMEOUT = 1;

const dirAttr: Attr = { ino: 1n, size: 0, mode: 0o040755, nlink: 2 };
const fileAttr: Attr = { ino: FILE, size, mode: 0o100644, nlink: 1 };
let released = false;
const waiting: Array<(err: Error) => void> = [];

const hungFs: FileSystem = {
  async lookup(parent: bigint, n: Buffer): Promise<Entry> {
    if (parent !== 1n || n.toString() !== name) throw new FuseError('ENOENT');
    return { nodeId: FILE, entryTimeout: TIMEOUT, attrTimeout: TIMEOUT, attr: fileAttr };
  },
  async getattr(node: bigint) {
    return { attr: node === FILE ? fileAttr : dirAttr, timeout: TIMEOUT };
  },
  async read(): Promise<Buffer> {
    if (released) throw new FuseError('EIO');
    return new Promise<Buffer>((_, reject) => waiting.push(reject));
  },
  async readdir(node: bigint, _fh: bigint, offset: bigint): Promise<Iterable<DirEntry>> {
    if (node !== 1n) throw new FuseError('ENOTDIR');
    return offset === 0n ? [{ name, ino: FILE, mode: 0o100000, offset: 1 }] : [];
  },
  async statfs(): Promise<StatFs> {
    return { bsize: 4096, frsize: 4096, namelen: 255 };
  },
};

const session = await Session.mount(hungFs, { mountpoint, readers: 2 });
process.on('SIGUSR1', () => {
  released = true;
  for (const reject of waiting.splice(0)) reject(new FuseError('EIO'));
  process.stdout.write('released\n');
});
process.on('SIGTERM', () => {
  released = true;
  for (const reject of waiting.splice(0)) reject(new FuseError('EIO'));
  void session.unmount({ lazy: true }).finally(() => process.exit(0));
});
process.stdout.write('ready\n');
