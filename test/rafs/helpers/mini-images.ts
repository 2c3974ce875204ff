// Hand-assembled tiny bootstraps for what no fixture has: v6 xattrs, compact inodes, special files,
// multi-block FLAT_PLAIN directories; v5 xattrs and HAS_HOLE. Byte layouts follow rafs-format.md 2 and 3 directly.

const BLK = 4096;
const align = (n: number, a: number): number => Math.ceil(n / a) * a;

export interface MiniDirent { name: string; nid: number; type: number }

/** EROFS dirent blocks (rafs-format.md 2.9); entries must be sorted and include '.' and '..'. */
export function packDirents(entries: MiniDirent[]): Buffer[] {
  const blocks: MiniDirent[][] = [[]];
  let used = 0;
  for (const e of entries) {
    const need = 12 + Buffer.byteLength(e.name);
    if (used + need > BLK) {
      blocks.push([]);
      used = 0;
    }
    blocks[blocks.length - 1].push(e);
    used += need;
  }
  return blocks.map((list, bi) => {
    const names = list.map((e) => Buffer.from(e.name));
    const total = 12 * list.length + names.reduce((s, n) => s + n.length, 0);
    const b = Buffer.alloc(bi === blocks.length - 1 ? total : BLK);
    let nameOff = 12 * list.length;
    list.forEach((e, j) => {
      b.writeBigUInt64LE(BigInt(e.nid), 12 * j);
      b.writeUInt16LE(nameOff, 12 * j + 8);
      b[12 * j + 10] = e.type;
      names[j].copy(b, nameOff);
      nameOff += names[j].length;
    });
    return b;
  });
}

function xattrArea(pairs: [number, string, Buffer][]): Buffer {
  const parts = [Buffer.alloc(12)];
  for (const [index, suffix, value] of pairs) {
    const s = Buffer.from(suffix);
    const e = Buffer.alloc(align(4 + s.length + value.length, 4));
    e[0] = s.length;
    e[1] = index;
    e.writeUInt16LE(value.length, 2);
    s.copy(e, 4);
    value.copy(e, 4 + s.length);
    parts.push(e);
  }
  return Buffer.concat(parts);
}

export const MINI_V6 = { rootNid: 128, fileSize: 5000, bigEntries: 400, linkTarget: '../target/file' };

/**
 * v6 image: / (inline dir) with big/ (FLAT_PLAIN, 2 blocks of hardlinks to f), cdev (compact, rdev 0x12345),
 * f (xattrs, one chunk), fifo (compact), link (compact inline symlink). One blob, chunk table with f's chunk.
 */
export function buildMiniV6(): Buffer {
  const META_BLKADDR = 2;
  const base = META_BLKADDR * BLK;
  const xattrs = xattrArea([
    [1, 'foo', Buffer.from('bar')],
    [6, 'selinux', Buffer.from('ctx\0')],
    [2, '', Buffer.from([2, 0, 0, 0])],
  ]);
  const rootNames = ['.', '..', 'big', 'cdev', 'f', 'fifo', 'link'];
  const rootDirSize = rootNames.reduce((s, n) => s + 12 + n.length, 0);
  // inode placement, 32-byte slots from nid 128
  let off = base + 128 * 32;
  const place = (size: number): number => {
    const nid = (off - base) / 32;
    off = align(off + size, 32);
    return nid;
  };
  const root = place(64 + rootDirSize);
  const big = place(64);
  const cdev = place(32);
  const f = place(align(64 + xattrs.length, 8) + 8);
  const fifo = place(32);
  const link = place(32 + MINI_V6.linkTarget.length);
  const bigEntries: MiniDirent[] = [{ name: '.', nid: big, type: 2 }, { name: '..', nid: root, type: 2 }];
  for (let i = 0; i < MINI_V6.bigEntries; i++) bigEntries.push({ name: `e${String(i).padStart(3, '0')}`, nid: f, type: 1 });
  const bigBlocks = packDirents(bigEntries);
  const bigBlkaddr = align(off, BLK) / BLK;
  const chunkTableOff = (bigBlkaddr + bigBlocks.length) * BLK;
  const img = Buffer.alloc(chunkTableOff + BLK);

  // superblock
  img.writeUInt32LE(0xe0f5e1e2, 1024);
  img.writeUInt32LE(0x4000_0000, 1024 + 8);
  img[1024 + 12] = 12;
  img.writeUInt16LE(root, 1024 + 14);
  img.writeBigUInt64LE(7n, 1024 + 16);
  img.writeUInt32LE(META_BLKADDR, 1024 + 40);
  img.writeUInt32LE(0xc, 1024 + 80);
  img.writeUInt16LE(1, 1024 + 86);
  img.writeUInt16LE(11, 1024 + 88);
  // extended superblock: ZSTD | BLAKE3 | EXPLICIT_UID_GID | HAS_XATTR
  img.writeBigUInt64LE(0x80n | 0x4n | 0x10n | 0x20n, 1152);
  img.writeBigUInt64LE(4096n, 1152 + 8);
  img.writeUInt32LE(256, 1152 + 16);
  img.writeUInt32LE(0x100000, 1152 + 20);
  img.writeBigUInt64LE(BigInt(chunkTableOff), 1152 + 24);
  img.writeBigUInt64LE(80n, 1152 + 32);
  // device slot and blob entry
  const blobId = 'ab'.repeat(32);
  img.write(blobId, 1408, 'latin1');
  img.writeUInt32LE(2, 1408 + 64);
  img.write(blobId, 4096, 'latin1');
  img.writeUInt32LE(0, 4096 + 64);
  img.writeUInt32LE(0x100000, 4096 + 68);
  img.writeUInt32LE(1, 4096 + 72);
  img.writeUInt32LE(3, 4096 + 76);
  img.writeUInt32LE(0x4000_0001, 4096 + 84);
  img.writeBigUInt64LE(8192n, 4096 + 96);
  img.writeBigUInt64LE(16n, 4096 + 128);

  const at = (nid: number): number => base + 32 * nid;
  const extInode = (nid: number, format: number, mode: number, size: number, iu: number, ino: number, nlink: number, icount = 0): void => {
    const o = at(nid);
    img.writeUInt16LE(format, o);
    img.writeUInt16LE(icount, o + 2);
    img.writeUInt16LE(mode, o + 4);
    img.writeBigUInt64LE(BigInt(size), o + 8);
    img.writeUInt32LE(iu, o + 16);
    img.writeUInt32LE(ino, o + 20);
    img.writeUInt32LE(1000, o + 24);
    img.writeUInt32LE(1001, o + 28);
    img.writeBigUInt64LE(1700000000n, o + 32);
    img.writeUInt32LE(5, o + 40);
    img.writeUInt32LE(nlink, o + 44);
  };
  const compactInode = (nid: number, format: number, mode: number, size: number, iu: number, ino: number): void => {
    const o = at(nid);
    img.writeUInt16LE(format, o);
    img.writeUInt16LE(mode, o + 4);
    img.writeUInt16LE(1, o + 6);
    img.writeUInt32LE(size, o + 8);
    img.writeUInt32LE(iu, o + 16);
    img.writeUInt32LE(ino, o + 20);
    img.writeUInt16LE(7, o + 24);
    img.writeUInt16LE(8, o + 26);
  };
  const rootBlock = packDirents([
    { name: '.', nid: root, type: 2 }, { name: '..', nid: root, type: 2 }, { name: 'big', nid: big, type: 2 },
    { name: 'cdev', nid: cdev, type: 3 }, { name: 'f', nid: f, type: 1 }, { name: 'fifo', nid: fifo, type: 5 },
    { name: 'link', nid: link, type: 7 },
  ])[0];
  extInode(root, 1 | (2 << 1), 0o40755, rootBlock.length, 0, 1, 3);
  rootBlock.copy(img, at(root) + 64);
  const bigSize = (bigBlocks.length - 1) * BLK + bigBlocks[bigBlocks.length - 1].length;
  extInode(big, 1, 0o40700, bigSize, bigBlkaddr, 2, 2);
  bigBlocks.forEach((b, k) => b.copy(img, (bigBlkaddr + k) * BLK));
  compactInode(cdev, 0, 0o20600, 0, 0x12345, 3);
  extInode(f, 1 | (4 << 1), 0o100644, MINI_V6.fileSize, 0x20 | 8, 4, 1 + MINI_V6.bigEntries, (xattrs.length - 12) / 4 + 1);
  xattrs.copy(img, at(f) + 64);
  const idx = at(f) + align(64 + xattrs.length, 8);
  img.writeUInt16LE(0, idx);
  img.writeUInt16LE(1, idx + 2);
  img.writeUInt32LE(0, idx + 4);
  compactInode(fifo, 0, 0o10644, 0, 0, 5);
  compactInode(link, 2 << 1, 0o120777, MINI_V6.linkTarget.length, 0, 6);
  img.write(MINI_V6.linkTarget, at(link) + 32, 'latin1');
  // chunk table: f's single chunk
  img.fill(0x11, chunkTableOff, chunkTableOff + 32);
  img.writeUInt32LE(0, chunkTableOff + 32);
  img.writeUInt32LE(1, chunkTableOff + 36);
  img.writeUInt32LE(1234, chunkTableOff + 40);
  img.writeUInt32LE(MINI_V6.fileSize, chunkTableOff + 44);
  return img;
}

/**
 * v5 image: / with "a" (regular, 2 chunks with HAS_HOLE at file offsets 0 and 2 MiB, xattrs) and "s" (symlink).
 */
export function buildMiniV5(): Buffer {
  const records: Buffer[] = [];
  const rec = (o: { parent: number; ino: number; mode: number; size: number; flags: number; childIndex: number; childCount: number; name: string; symlink?: string; xattrs?: [string, Buffer][]; chunks?: number[] }): Buffer => {
    const name = Buffer.from(o.name);
    const link = Buffer.from(o.symlink ?? '');
    const parts = [Buffer.alloc(128), Buffer.alloc(align(name.length, 8)), Buffer.alloc(align(link.length, 8))];
    name.copy(parts[1]);
    link.copy(parts[2]);
    const h = parts[0];
    h.writeBigUInt64LE(BigInt(o.parent), 32);
    h.writeBigUInt64LE(BigInt(o.ino), 40);
    h.writeUInt32LE(o.mode, 60);
    h.writeBigUInt64LE(BigInt(o.size), 64);
    h.writeBigUInt64LE(BigInt(o.flags), 80);
    h.writeUInt32LE(1, 88);
    h.writeUInt32LE(o.childIndex, 92);
    h.writeUInt32LE(o.childCount, 96);
    h.writeUInt16LE(name.length, 100);
    h.writeUInt16LE(link.length, 102);
    if (o.xattrs) {
      const pairs = Buffer.concat(o.xattrs.map(([k, v]) => {
        const b = Buffer.alloc(4 + k.length + 1 + v.length);
        b.writeUInt32LE(k.length + 1 + v.length, 0);
        b.write(k, 4);
        v.copy(b, 4 + k.length + 1);
        return b;
      }));
      const x = Buffer.alloc(8 + align(pairs.length, 8));
      x.writeBigUInt64LE(BigInt(pairs.length), 0);
      pairs.copy(x, 8);
      parts.push(x);
    }
    for (const fo of o.chunks ?? []) {
      const c = Buffer.alloc(80, 0);
      c.fill(0x22, 0, 32);
      c.writeUInt32LE(4096, 40);
      c.writeUInt32LE(4096, 44);
      c.writeBigUInt64LE(BigInt(fo), 64);
      parts.push(c);
    }
    return Buffer.concat(parts);
  };
  records.push(rec({ parent: 0, ino: 1, mode: 0o40755, size: 4096, flags: 0, childIndex: 2, childCount: 2, name: '/' }));
  records.push(rec({ parent: 1, ino: 2, mode: 0o100600, size: 0x200000 + 4096, flags: 0x4 | 0x8, childIndex: 0, childCount: 2, name: 'a',
    xattrs: [['user.k', Buffer.from('v1')], ['trusted.overlay.opaque', Buffer.from('y')]], chunks: [0, 0x200000] }));
  records.push(rec({ parent: 1, ino: 3, mode: 0o120777, size: 3, flags: 0x1, childIndex: 0, childCount: 0, name: 's', symlink: 'a/b' }));
  const blobTable = Buffer.alloc(72);
  blobTable.write('cd'.repeat(32), 8, 'latin1');
  const inodeTableOff = 8192;
  const blobOff = inodeTableOff + 16;
  let p = blobOff + blobTable.length;
  const table = Buffer.alloc(16);
  records.forEach((r, i) => {
    table.writeUInt32LE(p / 8, 4 * i);
    p += r.length;
  });
  const sb = Buffer.alloc(8192);
  sb.writeUInt32LE(0x52414653, 0);
  sb.writeUInt32LE(0x500, 4);
  sb.writeUInt32LE(8192, 8);
  sb.writeUInt32LE(0x100000, 12);
  sb.writeBigUInt64LE(0x1n | 0x4n | 0x20n, 16);
  sb.writeBigUInt64LE(3n, 24);
  sb.writeBigUInt64LE(BigInt(inodeTableOff), 32);
  sb.writeBigUInt64LE(BigInt(inodeTableOff + 12), 40);
  sb.writeBigUInt64LE(BigInt(blobOff), 48);
  sb.writeUInt32LE(3, 56);
  sb.writeUInt32LE(0, 60);
  sb.writeUInt32LE(blobTable.length, 64);
  return Buffer.concat([sb, table, blobTable, ...records]);
}
