// Image -> tar (`nydus-image unpack`): every entry with its attributes, xattrs as SCHILY PAX records,
// hardlinks as links to the first path, file contents read from the data blobs.
import { closeSync } from 'node:fs';
import { openOutputFile } from '../input-file.js';
import type { Bootstrap } from '../image-model.js';
import { BlobReader, type BlobLocation } from './blob-reader.js';
import { TarWriter } from './tar-writer.js';
import { devMajor, devMinor } from '../builder/source-tar.js';

const S_IFMT = 0o170000;
const TYPE_OF: Record<number, string> = {
  0o100000: '0',
  0o120000: '2',
  0o020000: '3',
  0o060000: '4',
  0o040000: '5',
  0o010000: '6',
};

export function unpackToTar(bs: Bootstrap, where: BlobLocation, output: string): void {
  const fd = openOutputFile(output, 'tar output');
  const reader = new BlobReader(bs, where);
  try {
    const tw = new TarWriter(fd);
    const firstPath = new Map<number, Buffer>();
    const stack: Array<[number, Buffer]> = [[bs.superblock.rootIno, Buffer.alloc(0)]];
    while (stack.length > 0) {
      const [dirIno, dirPath] = stack.pop()!;
      const sub: Array<[number, Buffer]> = [];
      for (const ent of bs.readdir(dirIno)) {
        const p = dirPath.length > 0 ? Buffer.concat([dirPath, Buffer.from('/'), ent.name]) : Buffer.from(ent.name);
        const inode = bs.getInode(ent.ino);
        const fmt = inode.mode & S_IFMT;
        const type = TYPE_OF[fmt];
        if (type === undefined) continue; // sockets cannot be represented in a tar
        const xattrs = inode.hasXattr ? bs.xattrs(ent.ino) : undefined;
        const base = { path: p, mode: inode.mode, uid: inode.uid, gid: inode.gid, mtime: inode.mtime, xattrs };
        if (fmt === 0o100000) {
          const first = inode.nlink > 1 ? firstPath.get(inode.linkIno) : undefined;
          if (first) {
            tw.entry({ ...base, type: '1', size: 0, linkname: first, xattrs: undefined });
            continue;
          }
          if (inode.nlink > 1) firstPath.set(inode.linkIno, p);
          tw.entry({ ...base, type: '0', size: inode.size });
          let written = 0;
          reader.readFile(ent.ino, true, (data, off) => {
            if (off > written) tw.data(Buffer.alloc(off - written));
            tw.data(data);
            written = off + data.length;
          });
          if (written < inode.size) tw.data(Buffer.alloc(inode.size - written));
          tw.pad(inode.size);
        } else if (fmt === 0o120000) {
          tw.entry({ ...base, type, size: 0, linkname: bs.readlink(ent.ino) });
        } else if (fmt === 0o040000) {
          tw.entry({ ...base, path: Buffer.concat([p, Buffer.from('/')]), type, size: 0 });
          sub.push([ent.ino, p]);
        } else {
          tw.entry({ ...base, type, size: 0, devmajor: devMajor(inode.rdev), devminor: devMinor(inode.rdev) });
        }
      }
      for (let i = sub.length - 1; i >= 0; i--) stack.push(sub[i]);
    }
    tw.finish();
  } finally {
    reader.close();
    closeSync(fd);
  }
}
