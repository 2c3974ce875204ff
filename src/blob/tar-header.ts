// The 512-byte GNU tar header that follows (not precedes) each optional piece of a data blob (rafs-format.md 4.1).
// Only name, size, type '0', the GNU magic and the checksum are set, as the nydus builder writes them.
import { RafsError } from '../image-model.js';

export const TAR_HEADER_SIZE = 512;
const NAME_LEN = 100;
const SIZE_OFF = 124;
const MTIME_OFF = 136;
const CHKSUM_OFF = 148;
const TYPE_OFF = 156;
const MAGIC_OFF = 257;
const GNU_MAGIC = Buffer.from('ustar  \0', 'latin1');
const MAX_OCTAL_SIZE = 0o77777777777;

export function makeTarHeader(name: string, size: number): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  if (nameBytes.length === 0 || nameBytes.length > NAME_LEN) throw new RafsError(`tar header: name "${name}" must be 1..${NAME_LEN} bytes`);
  if (!Number.isSafeInteger(size) || size < 0) throw new RafsError(`tar header: invalid size ${size}`);
  const h = Buffer.alloc(TAR_HEADER_SIZE);
  nameBytes.copy(h, 0);
  if (size <= MAX_OCTAL_SIZE) {
    h.write(size.toString(8).padStart(11, '0'), SIZE_OFF, 'latin1');
  } else {
    // GNU base-256: high bit of the first byte set, big-endian value in the rest of the field.
    h[SIZE_OFF] = 0x80;
    let v = size;
    for (let i = SIZE_OFF + 11; i > SIZE_OFF; i--) {
      h[i] = v % 256;
      v = Math.floor(v / 256);
    }
  }
  h.write('00000000000', MTIME_OFF, 'latin1');
  h[TYPE_OFF] = 0x30;
  GNU_MAGIC.copy(h, MAGIC_OFF);
  h.write(checksum(h).toString(8).padStart(7, '0'), CHKSUM_OFF, 'latin1');
  return h;
}

/** Sum of all header bytes with the checksum field counted as eight spaces. */
function checksum(h: Buffer): number {
  let sum = 8 * 0x20;
  for (let i = 0; i < TAR_HEADER_SIZE; i++) if (i < CHKSUM_OFF || i >= CHKSUM_OFF + 8) sum += h[i];
  return sum;
}

function parseOctal(field: Buffer, what: string): number {
  let s = field.toString('latin1');
  const z = s.indexOf('\0');
  if (z >= 0) s = s.slice(0, z);
  s = s.trim();
  if (!/^[0-7]+$/.test(s)) throw new RafsError(`tar header: ${what} "${s}" is not octal`);
  const v = parseInt(s, 8);
  if (!Number.isSafeInteger(v)) throw new RafsError(`tar header: ${what} too large`);
  return v;
}

export function parseTarHeader(buf: Buffer): { name: string; size: number } {
  if (buf.length < TAR_HEADER_SIZE) throw new RafsError(`tar header: need ${TAR_HEADER_SIZE} bytes, have ${buf.length}`);
  const h = buf.subarray(0, TAR_HEADER_SIZE);
  const magic = h.subarray(MAGIC_OFF, MAGIC_OFF + 6).toString('latin1');
  if (magic !== 'ustar ' && magic !== 'ustar\0') throw new RafsError('tar header: bad magic');
  const stored = parseOctal(h.subarray(CHKSUM_OFF, CHKSUM_OFF + 8), 'checksum');
  if (stored !== checksum(h)) throw new RafsError(`tar header: checksum 0${stored.toString(8)} does not match 0${checksum(h).toString(8)}`);
  const type = h[TYPE_OFF];
  if (type !== 0x30 && type !== 0) throw new RafsError(`tar header: entry type 0x${type.toString(16)} is not a regular file`);
  const nameField = h.subarray(0, NAME_LEN);
  const z = nameField.indexOf(0);
  const name = nameField.subarray(0, z < 0 ? NAME_LEN : z).toString('utf8');
  if (name.length === 0) throw new RafsError('tar header: empty name');
  let size: number;
  if (h[SIZE_OFF] & 0x80) {
    size = 0;
    for (let i = SIZE_OFF + 1; i < SIZE_OFF + 12; i++) size = size * 256 + h[i];
    if (!Number.isSafeInteger(size) || (h[SIZE_OFF] & 0x7f) !== 0) throw new RafsError('tar header: size too large');
  } else {
    size = parseOctal(h.subarray(SIZE_OFF, SIZE_OFF + 12), 'size');
  }
  return { name, size };
}
