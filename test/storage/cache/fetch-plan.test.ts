// Fetch planning (src/storage/cache/fetch-plan.ts) on synthetic chunk tables: what merges, where groups split, how far
// extensions reach, and that 200,000 tiny chunks plan into bounded groups (issue 8 item 2).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChunkInfo } from '../../../src/image-model.js';
import { ExtensionWindow, MAX_FETCH_CHUNKS, MIN_AMPLIFY, planFetches, type PlanContext } from '../../../src/storage/cache/fetch-plan.js';

/** `sizes[i]` compressed bytes per chunk, laid end to end from offset 0 (a gap where a size is negative). */
function table(sizes: number[], blobIndex = 0): ChunkInfo[] {
  let off = 0;
  const out: ChunkInfo[] = [];
  sizes.forEach((s, index) => {
    if (s < 0) off += -s;
    const size = Math.abs(s);
    out.push({ digest: Buffer.alloc(32), blobIndex, index, flags: 0, compressedOffset: off, compressedSize: size, uncompressedOffset: index * 0x10000, uncompressedSize: size, fileOffset: 0, crc32: 0 });
    off += size;
  });
  return out;
}

function ctx(chunks: ChunkInfo[], opts: Partial<PlanContext> & { ready?: Set<number>; flying?: Set<number> } = {}): PlanContext {
  const ready = opts.ready ?? new Set<number>();
  const flying = opts.flying ?? new Set<number>();
  return {
    blobIndex: 0,
    amplifyIo: opts.amplifyIo ?? 0,
    keyOf: (c) => c.index,
    inFlight: (k) => flying.has(k),
    available: (k) => flying.has(k) || ready.has(k),
    neighbours: opts.neighbours === undefined ? (i) => chunks[i] : opts.neighbours,
  };
}

const indexes = (plans: ReturnType<typeof planFetches>) => plans.map((p) => ({ chunks: p.group.map((c) => c.index), asked: p.asked }));

describe('fetch planning', () => {
  it('merges adjacent missing chunks and extends with the following ones up to amplify_io', () => {
    const chunks = table(Array(10).fill(40 * 1024));
    // 128 KiB floor: three 40 KiB chunks fit, a fourth would not
    const plans = planFetches(ctx(chunks), [chunks[1]!, chunks[2]!]);
    assert.deepEqual(indexes(plans), [{ chunks: [1, 2, 3], asked: 2 }]);
    const wide = planFetches(ctx(chunks, { amplifyIo: 1 << 20 }), [chunks[1]!]);
    assert.deepEqual(indexes(wide), [{ chunks: [1, 2, 3, 4, 5, 6, 7, 8, 9], asked: 1 }]);
  });

  it('splits at gaps and at the byte limit; never plans a chunk twice or one already in flight', () => {
    const chunks = table([4096, 4096, -100, 4096, 4096, 4096]);
    const plans = planFetches(ctx(chunks, { flying: new Set([4]), neighbours: () => undefined }), [chunks[0]!, chunks[3]!, chunks[1]!, chunks[0]!, chunks[4]!, chunks[5]!]);
    assert.deepEqual(indexes(plans), [{ chunks: [0, 1], asked: 2 }, { chunks: [3], asked: 1 }, { chunks: [5], asked: 1 }]);
    const big = table(Array(4).fill(MIN_AMPLIFY / 2));
    assert.deepEqual(indexes(planFetches(ctx(big, { neighbours: () => undefined }), big)), [{ chunks: [0, 1], asked: 2 }, { chunks: [2, 3], asked: 2 }]);
  });

  it('an extension stops at the first chunk that needs no fetch', () => {
    const chunks = table(Array(8).fill(1024));
    const plans = planFetches(ctx(chunks, { ready: new Set([3]) }), [chunks[0]!]);
    assert.deepEqual(indexes(plans), [{ chunks: [0, 1, 2], asked: 1 }]);
  });

  it('without a chunk table, `along` chunks of the same blob extend; those of other blobs do not', () => {
    const chunks = table(Array(4).fill(1024));
    const other = table(Array(4).fill(1024), 1);
    const plans = planFetches(ctx(chunks, { neighbours: () => undefined }), [chunks[0]!], [...other.slice(1), chunks[1]!, chunks[2]!]);
    assert.deepEqual(indexes(plans), [{ chunks: [0, 1, 2], asked: 1 }]);
  });

  it('200,000 tiny adjacent chunks plan into groups of at most MAX_FETCH_CHUNKS, each chunk once', () => {
    const chunks = table(Array(200_000).fill(5));
    const plans = planFetches(ctx(chunks, { amplifyIo: 1 << 30 }), chunks);
    assert.equal(plans.length, Math.ceil(200_000 / MAX_FETCH_CHUNKS));
    assert.ok(plans.every((p) => p.group.length <= MAX_FETCH_CHUNKS && p.asked === p.group.length));
    assert.equal(new Set(plans.flatMap((p) => p.group.map((c) => c.index))).size, 200_000);
  });

  it('extendLimit bounds how far past the asked chunks a fetch reaches; 0 fetches only what was asked', () => {
    const chunks = table(Array(10).fill(40 * 1024));
    assert.deepEqual(indexes(planFetches({ ...ctx(chunks, { amplifyIo: 1 << 20 }), extendLimit: 0 }, [chunks[1]!, chunks[2]!])), [{ chunks: [1, 2], asked: 2 }]);
    assert.deepEqual(indexes(planFetches({ ...ctx(chunks, { amplifyIo: 1 << 20 }), extendLimit: 160 * 1024 }, [chunks[1]!])), [{ chunks: [1, 2, 3, 4], asked: 1 }]);
  });
});

describe('extension window', () => {
  it('doubles from MIN_AMPLIFY to amplify_io while fetches follow each other in the blob, and closes on a jump', () => {
    const w = new ExtensionWindow();
    const amplify = 1 << 20;
    assert.equal(w.next(0, amplify), 0, 'the first fetch has no history');
    const seen: number[] = [];
    let end = 4096;
    for (let k = 0; k < 5; k++) {
      w.fetched(end);
      const win = w.next(end, amplify);
      seen.push(win);
      end += 4096 + win;
    }
    assert.deepEqual(seen, [MIN_AMPLIFY, 2 * MIN_AMPLIFY, 4 * MIN_AMPLIFY, amplify, amplify]);
    w.fetched(end);
    assert.equal(w.next(end + 1, amplify), 0, 'a fetch elsewhere closes it');
    w.fetched(end + 4097);
    assert.equal(w.next(end + 4097, 0), MIN_AMPLIFY, 'amplify_io 0 still merges to the floor once reads follow each other');
  });
});
