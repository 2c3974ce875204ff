// Memory for decoded chunks, recycled by reference counts instead of the garbage collector. A fresh Buffer per
// chunk is external memory to V8, and a cold read of 1 GiB made V8 run about twenty full collections to keep up
// with it (BENCHMARKS.md, run H). Slots are page-aligned, so the blob cache can write them with O_DIRECT.
//
// Who holds a slot: the fetch that decoded into it (until the chunk is remembered and written to the cache),
// the blob cache's `recent` list while the chunk is in it, and every READ that took a view of it (a ChunkLease,
// released once the reply is written). A slot is reused only when none of them holds it any more.
import { native } from '../../native/index.js';

const ALIGN = 4096;
/** Slots are allocated in blocks of native memory of about this size (one slot at least). */
const SLAB_BYTES = 8 * 1024 * 1024;
/**
 * A block none of whose slots has been held for this long gives its pages back to the kernel (they are faulted in
 * again on the next use): after a cold read the daemon's memory returns to its idle size instead of keeping the
 * arena's high-water mark for good (issue 9; BENCHMARKS.md run V: 40 MiB of blocks stayed resident).
 */
const IDLE_DISCARD_MS = 2000;

export class ChunkArena {
  readonly slotSize: number;
  private readonly slabs = new Map<ArrayBufferLike, number>();
  private readonly slabBuffers: Buffer[] = [];
  private readonly refs: Int32Array;
  private readonly free: number[] = [];
  /** slots per block of native memory */
  private readonly perSlab: number;
  /** per block: slots held now, and whether its pages may hold memory (written since the last discard) */
  private readonly slabHeld: number[] = [];
  private readonly slabResident: boolean[] = [];
  private lastEmptied = 0;
  private discardTimer: NodeJS.Timeout | undefined;
  /** bytes given back to the kernel so far (tests, metrics) */
  discarded = 0;

  /**
   * @param maxChunk the largest chunk that takes a slot (larger ones get memory of their own)
   * @param budget bytes of slots at most
   * @param onQuiet called after blocks gave their pages back, i.e. once a burst of reads is over: the owner of the
   *   process gives back what else the burst left (the heap's garbage, malloc's free arenas); storage knows neither
   */
  constructor(maxChunk: number, budget: number, private readonly onQuiet?: () => void) {
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
      this.slabHeld.push(0);
      this.slabResident.push(true);
      for (let k = this.perSlab - 1; k > 0; k--) this.free.push(base + k);
      slot = base;
    }
    this.refs[slot] = 1;
    const slabIndex = Math.floor(slot / this.perSlab);
    this.slabHeld[slabIndex]!++;
    this.slabResident[slabIndex] = true;
    const slab = this.slabBuffers[slabIndex]!;
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
    if (left === 0) {
      this.free.push(slot);
      const slab = Math.floor(slot / this.perSlab);
      if (--this.slabHeld[slab]! === 0) this.emptied();
    } else if (left < 0) throw new Error(`chunk arena: slot ${slot} released more often than held`);
  }

  /** A block has no held slot any more: its pages go back to the kernel once the arena has been quiet a while. */
  private emptied(): void {
    this.lastEmptied = performance.now();
    if (this.discardTimer) return;
    const check = () => {
      const quiet = performance.now() - this.lastEmptied;
      if (quiet < IDLE_DISCARD_MS) {
        this.discardTimer = setTimeout(check, IDLE_DISCARD_MS - quiet).unref();
        return;
      }
      this.discardTimer = undefined;
      if (this.discardIdle() > 0) this.onQuiet?.();
    };
    this.discardTimer = setTimeout(check, IDLE_DISCARD_MS).unref();
  }

  /** Gives back the pages of every block with no held slot; returns the bytes given back. */
  discardIdle(): number {
    let bytes = 0;
    for (let i = 0; i < this.slabBuffers.length; i++) {
      if (this.slabHeld[i] !== 0 || !this.slabResident[i]) continue;
      try {
        bytes += native.discardPages(this.slabBuffers[i]!);
        this.slabResident[i] = false;
      } catch {
        return bytes; // an addon without discardPages: the memory stays, as before
      }
    }
    this.discarded += bytes;
    return bytes;
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
