// Memory for decoded chunks, recycled by reference counts instead of the garbage collector. A fresh Buffer per
// chunk is external memory to V8, and a cold read of 1 GiB made V8 run about twenty full collections to keep up
// with it (BENCHMARKS.md, run H). Slots are page-aligned, so the blob cache can write them with O_DIRECT.
//
// Who holds a slot: the fetch that decoded into it (until the chunk is remembered and written to the cache),
// the blob cache's `recent` list while the chunk is in it, and every READ that took a view of it (a ChunkLease,
// released once the reply is written). A slot is reused only when none of them holds it any more.
import { native } from '../native/index.js';

const ALIGN = 4096;
/** Slots are allocated in blocks of native memory of about this size (one slot at least). */
const SLAB_BYTES = 8 * 1024 * 1024;

export class ChunkArena {
  readonly slotSize: number;
  private readonly slabs = new Map<ArrayBufferLike, number>();
  private readonly slabBuffers: Buffer[] = [];
  private readonly refs: Int32Array;
  private readonly free: number[] = [];
  /** slots per block of native memory */
  private readonly perSlab: number;

  /**
   * @param maxChunk the largest chunk that takes a slot (larger ones get memory of their own)
   * @param budget bytes of slots at most
   */
  constructor(maxChunk: number, budget: number) {
    this.slotSize = Math.ceil(Math.max(maxChunk, 1) / ALIGN) * ALIGN;
    this.perSlab = Math.max(1, Math.floor(Math.min(SLAB_BYTES, budget) / this.slotSize));
    const slabs = Math.max(1, Math.floor(budget / (this.slotSize * this.perSlab)));
    this.refs = new Int32Array(slabs * this.perSlab);
  }

  /** Slots in use (tests, metrics). */
  get used(): number {
    return this.slabBuffers.length * this.perSlab - this.free.length;
  }

  /**
   * `size` bytes in a free slot, held once by the caller, with zeros from `size` to the next 4 KiB boundary;
   * undefined when the chunk does not fit a slot or every slot is held.
   */
  take(size: number): Buffer | undefined {
    if (size > this.slotSize) return undefined;
    let slot = this.free.pop();
    if (slot === undefined) {
      if ((this.slabBuffers.length + 1) * this.perSlab > this.refs.length) return undefined;
      let slab: Buffer;
      try {
        slab = native.alignedBuffer(this.slotSize * this.perSlab);
      } catch {
        return undefined; // no addon or no memory: the caller allocates on its own
      }
      const base = this.slabBuffers.length * this.perSlab;
      this.slabs.set(slab.buffer, this.slabBuffers.length);
      this.slabBuffers.push(slab);
      for (let k = this.perSlab - 1; k > 0; k--) this.free.push(base + k);
      slot = base;
    }
    this.refs[slot] = 1;
    const slab = this.slabBuffers[Math.floor(slot / this.perSlab)]!;
    const at = (slot % this.perSlab) * this.slotSize;
    const padded = Math.ceil(size / ALIGN) * ALIGN;
    if (padded > size) slab.fill(0, at + size, at + padded);
    return slab.subarray(at, at + size);
  }

  /** The slot a view of arena memory lies in, or -1 for memory from elsewhere. */
  private slotOf(view: Uint8Array): number {
    const slab = this.slabs.get(view.buffer);
    if (slab === undefined) return -1;
    return slab * this.perSlab + Math.floor((view.byteOffset - this.slabBuffers[slab]!.byteOffset) / this.slotSize);
  }

  /** Whether `view` lies in arena memory. */
  owns(view: Uint8Array): boolean {
    return this.slabs.has(view.buffer);
  }

  /** One more holder of the slot behind `view`; false (nothing to release later) for memory from elsewhere. */
  hold(view: Uint8Array): boolean {
    const slot = this.slotOf(view);
    if (slot < 0) return false;
    if (this.refs[slot]! <= 0) throw new Error(`chunk arena: slot ${slot} held after it was freed`);
    this.refs[slot]!++;
    return true;
  }

  /** Drops one hold of the slot behind `view` (memory from elsewhere is left to the garbage collector). */
  release(view: Uint8Array): void {
    const slot = this.slotOf(view);
    if (slot < 0) return;
    const left = --this.refs[slot]!;
    if (left === 0) this.free.push(slot);
    else if (left < 0) throw new Error(`chunk arena: slot ${slot} released more often than held`);
  }

  /** Holds taken for one READ, dropped together once its reply is written. */
  lease(): ChunkLease {
    return new ChunkLease(this);
  }
}

export class ChunkLease {
  private held: Uint8Array[] = [];

  constructor(private readonly arena: ChunkArena) {}

  /** Keeps the memory behind `view` from being reused until release(); returns `view`. */
  keep<T extends Uint8Array>(view: T): T {
    if (this.arena.hold(view)) this.held.push(view);
    return view;
  }

  /** Drops every hold; calling it again does nothing. */
  release(): void {
    const held = this.held;
    this.held = [];
    for (const v of held) this.arena.release(v);
  }
}
