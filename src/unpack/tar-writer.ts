// A minimal PAX tar writer for `nydus-image unpack`: ustar headers, with a PAX record carrying what
// ustar cannot (long or non-ASCII paths, link targets, xattrs as SCHILY.xattr.*, big ids/sizes).
import { writeSync } from 'node:fs';

const BLOCK = 512;
const ZERO = Buffer.alloc(BLOCK);

export interface TarHeaderFields {
  path: Buffer;
  /** '0' file, '1' hardlink, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo */
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname?: Buffer;
  devmajor?: number;
  devminor?: number;
  xattrs?: Map<string, Buffer>;
}

export class TarWriter {
  private pos = 0;

  constructor(private readonly fd: number) {}

  private write(b: Buffer): void {
    let done = 0;
    while (done < b.length) done += writeSync(this.fd, b, done, b.length - done);
    this.pos += b.length;
  }

  /** Writes the header(s) of one entry; a regular file's data follows through `data()` then `pad()`. */
  entry(f: TarHeaderFields): void {
    const records: Buffer[] = [];
    const ascii = (b: Buffer, max: number) => b.length <= max && b.every((c) => c >= 0x20 && c < 0x7f);
    if (!ascii(f.path, 100)) records.push(paxRecord('path', f.path));
    if (f.linkname && !ascii(f.linkname, 100)) records.push(paxRecord('linkpath', f.linkname));
    if (f.uid > 0o7777777) records.push(paxRecord('uid', Buffer.from(String(f.uid))));
    if (f.gid > 0o7777777) records.push(paxRecord('gid', Buffer.from(String(f.gid))));
    if (f.size > 0o77777777777) records.push(paxRecord('size', Buffer.from(String(f.size))));
    for (const [k, v] of f.xattrs ?? []) records.push(paxRecord(`SCHILY.xattr.${k}`, v));
    if (records.length > 0) {
      const body = Buffer.concat(records);
      this.write(header({ path: Buffer.from('PaxHeader'), type: 'x', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: f.mtime }));
      this.write(body);
      this.pad(body.length);
    }
    this.write(header(f));
  }

  data(b: Buffer): void {
    this.write(b);
  }

  /** pads the data of an entry of `size` bytes to the block boundary */
  pad(size: number): void {
    const rem = size % BLOCK;
    if (rem !== 0) this.write(ZERO.subarray(0, BLOCK - rem));
  }

  finish(): void {
    this.write(ZERO);
    this.write(ZERO);
  }
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  // The length prefix counts itself, so grow it until it is stable.
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function octal(b: Buffer, off: number, len: number, v: number): void {
  const s = Math.min(v, 8 ** (len - 1) - 1).toString(8).padStart(len - 1, '0');
  b.write(s, off, 'latin1');
}

function header(f: TarHeaderFields): Buffer {
  const h = Buffer.alloc(BLOCK);
  f.path.copy(h, 0, 0, Math.min(100, f.path.length));
  octal(h, 100, 8, f.mode & 0o7777);
  octal(h, 108, 8, f.uid);
  octal(h, 116, 8, f.gid);
  octal(h, 124, 12, f.size);
  octal(h, 136, 12, Math.max(0, f.mtime));
  h.write(f.type, 156, 'latin1');
  if (f.linkname) f.linkname.copy(h, 157, 0, Math.min(100, f.linkname.length));
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  octal(h, 329, 8, f.devmajor ?? 0);
  octal(h, 337, 8, f.devminor ?? 0);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i];
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return h;
}
