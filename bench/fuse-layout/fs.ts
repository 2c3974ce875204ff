// The filesystem of the FUSE layout benchmark (session.ts): /big, one large in-memory file, and
// /tree/d00..d49/f0000..f0999, 50,000 files of 100 bytes. Node ids are computed, so the same tree can be served
// from several threads without sharing anything but the big file's buffer.
import { FuseError, type DirEntry, type Entry, type FileSystem } from '../../src/fuse/filesystem.js';
import type { Attr, StatFs } from '../../src/fuse/protocol.js';

const DIR = 0o040755;
const REG = 0o100644;
const T = 2 ** 32;
const BIG = 2n;
const TREE = 3n;
const DIR0 = 10n;
const FILE0 = 1000n;
const SMALL = Buffer.alloc(100, 0x61);

export class BenchFs implements FileSystem {
  constructor(private readonly big: Buffer) {}

  private attr(ino: bigint): Attr {
    if (ino === 1n || ino === TREE || (ino >= DIR0 && ino < DIR0 + 50n)) return { ino, size: 4096, mode: DIR, nlink: 2 };
    if (ino === BIG) return { ino, size: this.big.length, mode: REG };
    if (ino >= FILE0 + 1000n && ino < FILE0 + 51_000n) return { ino, size: SMALL.length, mode: REG };
    throw new FuseError('ENOENT');
  }

  private entry(ino: bigint): Entry {
    return { nodeId: ino, entryTimeout: T, attrTimeout: T, attr: this.attr(ino) };
  }

  async lookup(parent: bigint, name: Buffer): Promise<Entry> {
    const n = name.toString();
    if (parent === 1n) {
      if (n === 'big') return this.entry(BIG);
      if (n === 'tree') return this.entry(TREE);
    } else if (parent === TREE && /^d\d\d$/.test(n) && Number(n.slice(1)) < 50) {
      return this.entry(DIR0 + BigInt(n.slice(1)));
    } else if (parent >= DIR0 && parent < DIR0 + 50n && /^f\d{4}$/.test(n)) {
      return this.entry(FILE0 + (parent - DIR0 + 1n) * 1000n + BigInt(n.slice(1)));
    }
    throw new FuseError('ENOENT');
  }

  async getattr(nodeId: bigint): Promise<{ attr: Attr; timeout: number }> {
    return { attr: this.attr(nodeId), timeout: T };
  }

  async read(nodeId: bigint, _fh: bigint, offset: bigint, size: number): Promise<Buffer> {
    const data = nodeId === BIG ? this.big : SMALL;
    const off = Number(offset);
    return data.subarray(Math.min(off, data.length), Math.min(data.length, off + size));
  }

  async readdir(nodeId: bigint, _fh: bigint, offset: bigint): Promise<Iterable<DirEntry>> {
    const names = nodeId === 1n ? ['big', 'tree'] : nodeId === TREE ? [...Array(50).keys()].map((d) => `d${String(d).padStart(2, '0')}`) : [];
    return names.slice(Number(offset)).map((name, i) => ({ name, ino: 0, mode: 0, offset: Number(offset) + i + 1 }));
  }

  async statfs(): Promise<StatFs> {
    return { files: 51_053 };
  }
}
