// The persistent readiness bitmap of one blob's cache file (`<blob_id>.blob.data.chunk_map`), in the
// reference's on-disk format so that caches survive restarts and can be shared with other daemons:
//   [0..4)  magic 0x424D4150, [4..8) version 1, [8..12) magic2 0x434D4150,
//   [12..16) all_ready (0x4D4D4150 once every chunk is ready), zero up to 4096, then the bitmap
//   (chunk i -> byte 4096 + i/8, mask 0x80 >> i%8).
// Node cannot mmap, so the bitmap lives in memory and each newly set byte is written back with pwrite.
// Bits are only ever set, and only by `markReady`, which callers invoke once the chunk data is durable.
import fs from 'node:fs';

const MAGIC = 0x424d4150;
const VERSION = 1;
const MAGIC2 = 0x434d4150;
const MAGIC_ALL_READY = 0x4d4d4150;
export const CHUNK_MAP_HEADER_SIZE = 4096;

export class ChunkMapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChunkMapError';
  }
}

export class ChunkMap {
  private readonly bits: Buffer;
  private readyCount = 0;

  private constructor(
    readonly path: string,
    private fd: number,
    readonly chunkCount: number,
    bits: Buffer,
    allReady: boolean,
  ) {
    this.bits = bits;
    if (allReady) {
      this.bits.fill(0xff);
      this.readyCount = chunkCount;
    } else {
      for (let i = 0; i < chunkCount; i++) if (this.testBit(i)) this.readyCount++;
    }
  }

  /**
   * Opens or creates the map. A file of the wrong size or with a foreign header is an error, except a
   * file that is all zeros (a crash between sizing and writing the header), whose header is rewritten.
   */
  static open(path: string, chunkCount: number): ChunkMap {
    if (!Number.isSafeInteger(chunkCount) || chunkCount < 0 || chunkCount > 0x100_0000) {
      throw new ChunkMapError(`chunk map ${path}: invalid chunk count ${chunkCount}`);
    }
    const bitmapSize = Math.ceil(chunkCount / 8);
    const size = CHUNK_MAP_HEADER_SIZE + bitmapSize;
    const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    try {
      const st = fs.fstatSync(fd);
      if (st.size === 0) {
        // no fsync here: whatever a crash leaves of a new map (empty, all zeros, or bits without their header, which
        // is refused and started afresh by the cache file) marks nothing ready that is not; two fsyncs held a
        // shared daemon's first read of a small file for 2-3 ms (issue 11)
        fs.ftruncateSync(fd, size);
        writeHeader(fd, false);
        return new ChunkMap(path, fd, chunkCount, Buffer.alloc(bitmapSize), false);
      }
      if (st.size !== size) {
        throw new ChunkMapError(
          `chunk map ${path}: size ${st.size} does not match ${size} for ${chunkCount} chunks`,
        );
      }
      const header = Buffer.alloc(16);
      fs.readSync(fd, header, 0, 16, 0);
      if (header.readUInt32LE(0) !== MAGIC || header.readUInt32LE(8) !== MAGIC2) {
        const whole = Buffer.alloc(size);
        fs.readSync(fd, whole, 0, size, 0);
        if (whole.some((b) => b !== 0)) {
          throw new ChunkMapError(`chunk map ${path}: bad magic 0x${header.readUInt32LE(0).toString(16)}`);
        }
        writeHeader(fd, false);
        fs.fsyncSync(fd);
        return new ChunkMap(path, fd, chunkCount, Buffer.alloc(bitmapSize), false);
      }
      if (header.readUInt32LE(4) !== VERSION) {
        throw new ChunkMapError(`chunk map ${path}: unsupported version ${header.readUInt32LE(4)}`);
      }
      const allReady = header.readUInt32LE(12) === MAGIC_ALL_READY;
      const bits = Buffer.alloc(bitmapSize);
      if (bitmapSize > 0) fs.readSync(fd, bits, 0, bitmapSize, CHUNK_MAP_HEADER_SIZE);
      const map = new ChunkMap(path, fd, chunkCount, bits, allReady);
      if (!allReady && map.allReady()) {
        writeHeader(fd, true);
        fs.fsyncSync(fd);
      }
      return map;
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  isReady(index: number): boolean {
    this.checkIndex(index);
    return this.testBit(index);
  }

  /**
   * Re-reads the byte holding `index` from the file: another daemon sharing the cache (hot upgrade)
   * may have fetched the chunk since we loaded the map. Cheap compared to a backend fetch.
   */
  refresh(index: number): boolean {
    this.checkIndex(index);
    if (this.testBit(index)) return true;
    const byte = Buffer.alloc(1);
    try {
      fs.readSync(this.fd, byte, 0, 1, CHUNK_MAP_HEADER_SIZE + (index >>> 3));
    } catch {
      // a failing cache disk: what cannot be read is not ready (the chunk is fetched), never a failed read
      return false;
    }
    const fresh = byte[0]! & ~this.bits[index >>> 3]!;
    if (fresh) {
      for (let b = 0; b < 8; b++) if (fresh & (0x80 >> b)) this.readyCount++;
      this.bits[index >>> 3]! |= byte[0]!;
    }
    return this.testBit(index);
  }

  /** Marks chunks ready; the caller guarantees their data is already durable in the data file. */
  markReady(indexes: Iterable<number>): void {
    const dirty = new Set<number>();
    for (const i of indexes) {
      this.checkIndex(i);
      if (this.testBit(i)) continue;
      this.bits[i >>> 3]! |= 0x80 >> (i & 7);
      this.readyCount++;
      dirty.add(i >>> 3);
    }
    // one write per run of neighbouring dirty bytes: a layer of tiny files marks thousands of chunks at once
    const sorted = [...dirty].sort((a, b) => a - b);
    for (let k = 0; k < sorted.length; ) {
      let end = k + 1;
      while (end < sorted.length && sorted[end] === sorted[end - 1]! + 1) end++;
      const first = sorted[k]!;
      fs.writeSync(this.fd, this.bits, first, end - k, CHUNK_MAP_HEADER_SIZE + first);
      k = end;
    }
    if (dirty.size > 0 && this.allReady()) fs.fdatasyncSync(this.fd);
  }

  allReady(): boolean {
    return this.readyCount >= this.chunkCount;
  }

  get ready(): number {
    return this.readyCount;
  }

  close(): void {
    if (this.fd >= 0) {
      fs.closeSync(this.fd);
      this.fd = -1;
    }
  }

  private testBit(i: number): boolean {
    return (this.bits[i >>> 3]! & (0x80 >> (i & 7))) !== 0;
  }

  private checkIndex(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.chunkCount) {
      throw new ChunkMapError(`chunk map ${this.path}: chunk index ${i} out of range 0..${this.chunkCount - 1}`);
    }
  }
}

function writeHeader(fd: number, allReady: boolean): void {
  const h = Buffer.alloc(16);
  h.writeUInt32LE(MAGIC, 0);
  h.writeUInt32LE(VERSION, 4);
  h.writeUInt32LE(MAGIC2, 8);
  h.writeUInt32LE(allReady ? MAGIC_ALL_READY : 0, 12);
  fs.writeSync(fd, h, 0, 16, 0);
}
