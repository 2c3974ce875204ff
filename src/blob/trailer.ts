// Walks the tar-after-data records of a blob from its end (rafs-format.md 4.1): each payload is followed by its header.
import { RafsError } from '../image-model.js';
import { parseTarHeader, TAR_HEADER_SIZE } from './tar-header.js';

export interface TrailerRecord {
  name: string;
  /** offset of the payload in the blob */
  offset: number;
  size: number;
}

const MAGIC_OFF = 257;

function looksLikeTarHeader(h: Buffer): boolean {
  const m = h.subarray(MAGIC_OFF, MAGIC_OFF + 5).toString('latin1');
  return m === 'ustar';
}

/**
 * Records in file order. Stops at `image.blob` (the chunk data, which starts the framed part), at the start
 * of the blob, or at bytes that are not a tar header (a blob without framing yields []).
 */
export function readTrailer(blob: Buffer): TrailerRecord[] {
  const out: TrailerRecord[] = [];
  let end = blob.length;
  while (end >= TAR_HEADER_SIZE) {
    const h = blob.subarray(end - TAR_HEADER_SIZE, end);
    if (!looksLikeTarHeader(h)) break;
    const { name, size } = parseTarHeader(h);
    const offset = end - TAR_HEADER_SIZE - size;
    if (offset < 0) throw new RafsError(`blob trailer: record "${name}" of ${size} bytes starts before the blob`);
    out.push({ name, offset, size });
    end = offset;
    if (name === 'image.blob') break;
  }
  return out.reverse();
}

export function findRecord(records: TrailerRecord[], name: string): TrailerRecord | undefined {
  return records.find((r) => r.name === name);
}
