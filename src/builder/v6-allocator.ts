// Metadata space allocation of the RAFS v6 builder (rafs-format.md 2.15 step 2): a bump pointer plus partially
// used blocks bucketed by free 32-byte slots, reused oldest-first for later small objects. Mirrors
// nydus-image so that layouts (and thus nids) come out the same.

const BLOCK = 4096;
const SLOT = 32;

export const enum Layout {
  FlatPlain = 0,
  FlatInline = 2,
  ChunkBased = 4,
}

const alignUp = (v: number, a: number): number => Math.ceil(v / a) * a;

/**
 * Partially used metadata blocks, bucketed by free space in 32-byte slots, as the nydus builder keeps
 * them: later small objects are placed into the first block with room, oldest first.
 */
export class MetaAllocator {
  offset = BLOCK;
  private readonly free: number[][] = Array.from({ length: BLOCK / SLOT }, () => []);
  private readonly heads = new Array<number>(BLOCK / SLOT).fill(0);

  align(a: number): void {
    this.offset = alignUp(this.offset, a);
  }

  /** offset inside a remembered block with at least `size` bytes free, or 0 */
  fromFree(size: number): number {
    if (size >= BLOCK) return 0;
    const min = Math.ceil(size / SLOT);
    for (let idx = min; idx < BLOCK / SLOT; idx++) {
      const q = this.free[idx];
      if (this.heads[idx] < q.length) {
        const base = q[this.heads[idx]++];
        const off = base + BLOCK - idx * SLOT;
        this.remember(off + min * SLOT);
        return off;
      }
    }
    return 0;
  }

  /** remember the rest of the block that `off` falls in */
  remember(off: number): void {
    if (off % BLOCK === 0) return;
    const idx = Math.floor((BLOCK - (off % BLOCK)) / SLOT);
    this.free[idx].push(off - (off % BLOCK));
  }

  /** directories and symlinks: inode with the data's last partial block packed after it when it fits */
  withTail(inodeSize: number, dataSize: number): { offset: number; dataOffset: number; layout: Layout } {
    const tail = dataSize % BLOCK;
    if (tail !== 0 && inodeSize + tail <= BLOCK) {
      let offset = this.fromFree(inodeSize + tail);
      if (offset === 0) {
        if (BLOCK - (this.offset % BLOCK) < inodeSize + tail) {
          this.remember(this.offset);
          this.align(BLOCK);
        }
        offset = this.offset;
        this.offset += inodeSize + tail;
      }
      if (dataSize !== tail) {
        this.remember(this.offset);
        this.align(BLOCK);
      }
      const dataOffset = this.offset;
      this.offset += dataSize - tail;
      return { offset, dataOffset, layout: Layout.FlatInline };
    }
    let offset = this.fromFree(inodeSize);
    if (offset === 0) {
      offset = this.offset;
      this.offset += inodeSize;
    }
    this.remember(this.offset);
    this.align(BLOCK);
    const dataOffset = this.offset;
    this.offset += dataSize;
    this.align(BLOCK);
    return { offset, dataOffset, layout: Layout.FlatPlain };
  }
}

