// The blob table of contents (`rafs.blob.toc`, rafs-format.md 4.9): 128-byte entries naming the trailing pieces of a blob.
import { RafsError } from '../image-model.js';
import { u64, writeU64 } from '../le.js';

export const TOC_ENTRY_SIZE = 128;
export const TOC_NAME = 'rafs.blob.toc';
/** ToC flags: compression of the entry's payload */
export const TocFlag = { NONE: 0x1, ZSTD: 0x2, LZ4_BLOCK: 0x4 } as const;
const NAME_OFF = 8;
const NAME_LEN = 16;

export interface TocEntry {
  flags: number;
  name: string;
  /** sha256 of the uncompressed content */
  digest: Buffer;
  compressedOffset: number;
  compressedSize: number;
  uncompressedSize: number;
}

export function encodeToc(entries: TocEntry[]): Buffer {
  const b = Buffer.alloc(entries.length * TOC_ENTRY_SIZE);
  entries.forEach((e, i) => {
    const off = i * TOC_ENTRY_SIZE;
    const name = Buffer.from(e.name, 'latin1');
    if (name.length === 0 || name.length > NAME_LEN) throw new RafsError(`toc entry ${i}: name "${e.name}" must be 1..${NAME_LEN} bytes`);
    if (e.digest.length !== 32) throw new RafsError(`toc entry ${i}: digest must be 32 bytes`);
    b.writeUInt32LE(e.flags >>> 0, off);
    name.copy(b, off + NAME_OFF);
    e.digest.copy(b, off + 24);
    writeU64(b, off + 56, e.compressedOffset, `toc entry ${i} compressed_offset`);
    writeU64(b, off + 64, e.compressedSize, `toc entry ${i} compressed_size`);
    writeU64(b, off + 72, e.uncompressedSize, `toc entry ${i} uncompressed_size`);
  });
  return b;
}

export function parseToc(buf: Buffer): TocEntry[] {
  if (buf.length % TOC_ENTRY_SIZE !== 0) throw new RafsError(`toc: size ${buf.length} is not a multiple of ${TOC_ENTRY_SIZE}`);
  const out: TocEntry[] = [];
  for (let off = 0; off < buf.length; off += TOC_ENTRY_SIZE) {
    const i = off / TOC_ENTRY_SIZE;
    const flags = buf.readUInt32LE(off);
    if ((flags & ~0xf) !== 0) throw new RafsError(`toc entry ${i}: unknown flags 0x${flags.toString(16)}`);
    const nameField = buf.subarray(off + NAME_OFF, off + NAME_OFF + NAME_LEN);
    const z = nameField.indexOf(0);
    const nameBytes = nameField.subarray(0, z < 0 ? NAME_LEN : z);
    if (nameBytes.length === 0 || !/^[\x21-\x7e]+$/.test(nameBytes.toString('latin1'))) throw new RafsError(`toc entry ${i}: invalid name`);
    const e: TocEntry = {
      flags,
      name: nameBytes.toString('latin1'),
      digest: Buffer.from(buf.subarray(off + 24, off + 56)),
      compressedOffset: u64(buf, off + 56, `toc entry ${i} compressed_offset`),
      compressedSize: u64(buf, off + 64, `toc entry ${i} compressed_size`),
      uncompressedSize: u64(buf, off + 72, `toc entry ${i} uncompressed_size`),
    };
    out.push(e);
  }
  return out;
}

/** The compressor a ToC entry's payload uses, from its flags. */
export function tocCompression(e: TocEntry): 'none' | 'zstd' | 'lz4_block' {
  const f = e.flags & 0xf;
  if (f === TocFlag.ZSTD) return 'zstd';
  if (f === TocFlag.LZ4_BLOCK) return 'lz4_block';
  if (f === TocFlag.NONE || f === 0) return 'none';
  throw new RafsError(`toc entry ${e.name}: ambiguous compression flags 0x${f.toString(16)}`);
}
