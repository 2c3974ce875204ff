// The `<blob_id>.blob.meta` cache file (spec 4.12): the uncompressed CI buffer zero-padded to 4K, then the
// 4096-byte blob-meta header.
import { RafsError, BlobFeature } from '../rafs/types.js';
import { parseMetaHeader, parseCiTable, META_HEADER_SIZE, CI_V1_SIZE, CI_V2_SIZE, CiFlag, type BlobMetaHeader, type CiEntry } from './meta.js';
import { parseZranContexts, parseBatchContexts, type ZranContext, type BatchContext } from './context.js';

export interface BlobMetaFile {
  header: BlobMetaHeader;
  entries: CiEntry[];
  zranContexts: ZranContext[];
  batchContexts: BatchContext[];
}

const align4k = (n: number): number => Math.ceil(n / 4096) * 4096;

export function parseBlobMetaFile(buf: Buffer): BlobMetaFile {
  if (buf.length < META_HEADER_SIZE) throw new RafsError(`blob meta file: ${buf.length} bytes is shorter than its header`);
  const header = parseMetaHeader(buf.subarray(buf.length - META_HEADER_SIZE));
  const expected = align4k(header.ciUncompressedSize) + META_HEADER_SIZE;
  if (buf.length !== expected) {
    throw new RafsError(`blob meta file: size ${buf.length} does not match ci_uncompressed_size ${header.ciUncompressedSize} (expected ${expected})`);
  }
  const ci = buf.subarray(0, header.ciUncompressedSize);
  const v2 = (header.features & BlobFeature.CHUNK_INFO_V2) !== 0;
  const entries = parseCiTable(ci, header.ciEntries, v2);
  checkEntries(entries, header);
  let zranContexts: ZranContext[] = [];
  let batchContexts: BatchContext[] = [];
  if (header.zranCount > 0) {
    const entryBytes = header.ciEntries * (v2 ? CI_V2_SIZE : CI_V1_SIZE);
    if (header.zranOffset < entryBytes) throw new RafsError(`blob meta file: zran_offset ${header.zranOffset} overlaps the CI entries`);
    const area = ci.subarray(header.zranOffset, header.zranOffset + header.zranSize);
    if (header.features & BlobFeature.ZRAN) zranContexts = parseZranContexts(area, header.zranCount);
    else if (header.features & BlobFeature.BATCH) batchContexts = parseBatchContexts(area, header.zranCount);
    else throw new RafsError('blob meta file: context array present without ZRAN or BATCH feature');
  }
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (e.flags & CiFlag.ZRAN) {
      const ctx = Number(e.data >> 32n);
      const off = Number(e.data & 0xffff_ffffn);
      const z = zranContexts[ctx];
      if (z === undefined) throw new RafsError(`ci entry ${i}: zran context ${ctx} does not exist`);
      if (off + e.uncompressedSize > z.outLen) throw new RafsError(`ci entry ${i}: range ${off}+${e.uncompressedSize} outside zran context ${ctx} output (${z.outLen})`);
    } else if (e.flags & CiFlag.BATCH) {
      const ctx = Number(e.data >> 32n);
      const off = Number(e.data & 0xffff_ffffn);
      const b = batchContexts[ctx];
      if (b === undefined) throw new RafsError(`ci entry ${i}: batch context ${ctx} does not exist`);
      if (off + e.uncompressedSize > b.uncompressedBatchSize) throw new RafsError(`ci entry ${i}: range outside batch ${ctx}`);
    }
  }
  return { header, entries, zranContexts, batchContexts };
}

/** Entries are sorted by uncompressed offset and do not overlap (nydusd binary-searches them). */
export function checkEntries(entries: CiEntry[], header: BlobMetaHeader): void {
  let end = 0;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (e.uncompressedOffset < end) throw new RafsError(`ci entry ${i}: uncompressed offset ${e.uncompressedOffset} overlaps the previous entry`);
    if ((header.features & BlobFeature.ALIGNED) && e.uncompressedOffset % 4096 !== 0) {
      throw new RafsError(`ci entry ${i}: uncompressed offset ${e.uncompressedOffset} not 4K aligned`);
    }
    end = e.uncompressedOffset + e.uncompressedSize;
  }
}

/** End of the blob's uncompressed address space (the aligned end of its last chunk). */
export function uncompressedEnd(entries: CiEntry[]): number {
  if (entries.length === 0) return 0;
  const last = entries[entries.length - 1];
  return align4k(last.uncompressedOffset + last.uncompressedSize);
}
