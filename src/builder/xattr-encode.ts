// On-disk encodings of an inode's extended attributes: the v6 inline xattr area (rafs-format.md 2.8) and the
// v5 pair table (rafs-format.md 3.6).

/** EROFS name indexes RAFS can store; 'system.posix_acl_*' must come before any shorter prefix. */
const V6_PREFIXES: Array<[number, string]> = [
  [2, 'system.posix_acl_access'],
  [3, 'system.posix_acl_default'],
  [1, 'user.'],
  [4, 'trusted.'],
  [6, 'security.'],
];

const MAX_VALUE = 0xffff;

function checkPair(name: string, value: Buffer): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  if (nameBytes.length === 0 || nameBytes.length > 255) throw new Error(`xattr name "${name}" must be 1..255 bytes`);
  if (value.length > MAX_VALUE) throw new Error(`xattr "${name}": value of ${value.length} bytes exceeds 64 KiB`);
  return nameBytes;
}

/** The v6 xattr area (header + entries), or undefined when there are none. */
export function encodeXattrsV6(xattrs: Map<string, Buffer>): Buffer | undefined {
  if (xattrs.size === 0) return undefined;
  const parts: Buffer[] = [Buffer.alloc(12)];
  for (const [name, value] of xattrs) {
    checkPair(name, value);
    const p = V6_PREFIXES.find(([, pre]) => name.startsWith(pre));
    if (!p) {
      throw new Error(`xattr "${name}": RAFS v6 only stores the user., trusted., security. and system.posix_acl_* namespaces`);
    }
    const suffix = Buffer.from(name.slice(p[1].length), 'utf8');
    const len = 4 + suffix.length + value.length;
    const e = Buffer.alloc(Math.ceil(len / 4) * 4);
    e[0] = suffix.length;
    e[1] = p[0];
    e.writeUInt16LE(value.length, 2);
    suffix.copy(e, 4);
    value.copy(e, 4 + suffix.length);
    parts.push(e);
  }
  return Buffer.concat(parts);
}

/** i_xattr_icount for an area of `size` bytes (0 when there is no area). */
export function xattrIcount(size: number): number {
  if (size === 0) return 0;
  const n = (size - 12) / 4 + 1;
  if (n > 0xffff) throw new Error('extended attributes are too big for one inode');
  return n;
}

/** v5: u64 size then `u32 len, name NUL value` pairs, padded to 8; undefined when there are none. */
export function encodeXattrsV5(xattrs: Map<string, Buffer>): Buffer | undefined {
  if (xattrs.size === 0) return undefined;
  const pairs: Buffer[] = [];
  for (const [name, value] of xattrs) {
    const nameBytes = checkPair(name, value);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(nameBytes.length + 1 + value.length);
    pairs.push(len, nameBytes, Buffer.from([0]), value);
  }
  const body = Buffer.concat(pairs);
  const out = Buffer.alloc(8 + Math.ceil(body.length / 8) * 8);
  out.writeUInt32LE(body.length, 0);
  body.copy(out, 8);
  return out;
}
