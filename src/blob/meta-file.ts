// The `<blob_id>.blob.meta` cache file (rafs-format.md 4.12): the uncompressed CI buffer zero-padded to 4K, then the
// 4096-byte blob-meta header.
import { RafsError, BlobFeature } from '../image-model.js';
import { parseMetaHeader, META_HEADER_SIZE, type BlobMetaHeader } from './meta.js';
import { CiTable, CiFlag } from './ci-table.js';
import { parseZranContexts, parseBatchContexts, type ZranContext, type BatchContext } from './context.js';

export interface BlobMetaFile {
  header: BlobMetaHeader;
  /** the entries, read in place from the file's buffer */
  table: CiTable;
  zranContexts: ZranContext[];
  batchContexts: BatchContext[];
}

const align4k = (n: number): number => Math.ceil(n / 4096) * 4096;

/**
 * Checks the whole file once (header, entry order, context references) without decoding the entries into objects;
 * the table then reads them from `buf`, which must not change afterwards.
 */
export function parseBlobMetaFile(buf: Buffer): BlobMetaFile {
  if (buf.length < META_HEADER_SIZE) throw new RafsError(`blob meta file: ${buf.length} bytes is shorter than its header`);
  const header = parseMetaHeader(buf.subarray(buf.length - META_HEADER_SIZE));
  const expected = align4k(header.ciUncompressedSize) + META_HEADER_SIZE;
  if (buf.length !== expected) {
    throw new RafsError(`blob meta file: size ${buf.length} does not match ci_uncompressed_size ${header.ciUncompressedSize} (expected ${expected})`);
  }
  const ci = buf.subarray(0, header.ciUncompressedSize);
  const v2 = (header.features & BlobFeature.CHUNK_INFO_V2) !== 0;
  const table = new CiTable(ci, header.ciEntries, v2);
  checkEntries(table);
  let zranContexts: ZranContext[] = [];
  let batchContexts: BatchContext[] = [];
  if (header.zranCount > 0) {
    const entryBytes = header.ciEntries * table.entrySize;
    if (header.zranOffset < entryBytes) throw new RafsError(`blob meta file: zran_offset ${header.zranOffset} overlaps the CI entries`);
    const area = ci.subarray(header.zranOffset, header.zranOffset + header.zranSize);
    if (header.features & BlobFeature.ZRAN) zranContexts = parseZranContexts(area, header.zranCount);
    else if (header.features & BlobFeature.BATCH) batchContexts = parseBatchContexts(area, header.zranCount);
    else throw new RafsError('blob meta file: context array present without ZRAN or BATCH feature');
  }
  // only v2 entries name contexts (a v1 entry's flags are just COMPRESSED)
  for (let i = 0; v2 && i < table.count; i++) {
    const flags = table.flags(i);
    if ((flags & (CiFlag.ZRAN | CiFlag.BATCH)) === 0) continue;
    const ctx = table.dataHigh(i);
    const off = table.dataLow(i);
    const size = table.uncompressedSize(i);
    if (flags & CiFlag.ZRAN) {
      const z = zranContexts[ctx];
      if (z === undefined) throw new RafsError(`ci entry ${i}: zran context ${ctx} does not exist`);
      if (off + size > z.outLen) throw new RafsError(`ci entry ${i}: range ${off}+${size} outside zran context ${ctx} output (${z.outLen})`);
    } else {
      const b = batchContexts[ctx];
      if (b === undefined) throw new RafsError(`ci entry ${i}: batch context ${ctx} does not exist`);
      if (off + size > b.uncompressedBatchSize) throw new RafsError(`ci entry ${i}: range outside batch ${ctx}`);
    }
  }
  return { header, table, zranContexts, batchContexts };
}

/** Entries are sorted by uncompressed offset and do not overlap (nydusd binary-searches them). */
export function checkEntries(table: CiTable): void {
  const i = table.firstOverlap();
  if (i >= 0) throw new RafsError(`ci entry ${i}: uncompressed offset ${table.uncompressedOffset(i)} overlaps the previous entry`);
}
