// The context array that follows the CI entries of zran and batch blobs (rafs-format.md 4.5, 4.6).
import { RafsError } from '../image-model.js';
import { u32, u64, need } from '../le.js';

export const ZRAN_CONTEXT_SIZE = 40;
export const BATCH_CONTEXT_SIZE = 40;
const ZRAN_WINDOW = 32768;
const MAX_ZRAN_OUT = 16 << 20;

export interface ZranContext {
  inOffset: number;
  outOffset: number;
  inLen: number;
  outLen: number;
  ctxByte: number;
  ctxBits: number;
  /** the 32 KiB inflate window to prime with (empty for a context at a stream start) */
  dict: Buffer;
}

export interface BatchContext {
  compressedSize: number;
  uncompressedBatchSize: number;
}

/** `area` is the zran region of the uncompressed CI buffer: the context array, then the dictionaries. */
export function parseZranContexts(area: Buffer, count: number): ZranContext[] {
  if (!Number.isSafeInteger(count) || count < 0 || count * ZRAN_CONTEXT_SIZE > area.length) {
    throw new RafsError(`zran contexts: ${count} contexts do not fit ${area.length} bytes`);
  }
  const dictBase = count * ZRAN_CONTEXT_SIZE;
  const out: ZranContext[] = [];
  for (let i = 0; i < count; i++) {
    const o = i * ZRAN_CONTEXT_SIZE;
    const what = `zran context ${i}`;
    const dictOffset = u64(area, o + 16, `${what} dict_offset`);
    const dictSize = u32(area, o + 32, `${what} dict_size`);
    if (dictSize !== 0 && dictSize !== ZRAN_WINDOW) throw new RafsError(`${what}: dict_size ${dictSize} is neither 0 nor ${ZRAN_WINDOW}`);
    need(area, dictBase + dictOffset, dictSize, `${what} dictionary`);
    const ctx: ZranContext = {
      inOffset: u64(area, o, `${what} in_offset`),
      outOffset: u64(area, o + 8, `${what} out_offset`),
      inLen: u32(area, o + 24, `${what} in_len`),
      outLen: u32(area, o + 28, `${what} out_len`),
      ctxByte: area[o + 36],
      ctxBits: area[o + 37],
      dict: area.subarray(dictBase + dictOffset, dictBase + dictOffset + dictSize),
    };
    if (ctx.ctxBits > 7) throw new RafsError(`${what}: ctx_bits ${ctx.ctxBits} > 7`);
    if (ctx.outLen > MAX_ZRAN_OUT) throw new RafsError(`${what}: out_len ${ctx.outLen} exceeds 16 MiB`);
    out.push(ctx);
  }
  return out;
}

export function parseBatchContexts(area: Buffer, count: number): BatchContext[] {
  if (!Number.isSafeInteger(count) || count < 0 || count * BATCH_CONTEXT_SIZE > area.length) {
    throw new RafsError(`batch contexts: ${count} contexts do not fit ${area.length} bytes`);
  }
  const out: BatchContext[] = [];
  for (let i = 0; i < count; i++) {
    const o = i * BATCH_CONTEXT_SIZE;
    out.push({ compressedSize: area.readUInt32LE(o), uncompressedBatchSize: area.readUInt32LE(o + 4) });
  }
  return out;
}
