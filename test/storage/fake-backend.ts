// An in-memory BlobBackend for unit tests of everything above the backend (cache parts, decorators): it serves blobs
// held in memory and, per read, whatever fault `pick` chooses: slow, failing, short (fewer bytes than asked), long
// (more), corrupt (a flipped byte), or hung until the read's signal aborts it. Counts reads and bytes.
import type { BlobBackend } from '../../src/storage/backend/blob-backend.js';
import { BackendError } from '../../src/storage/backend/errors.js';

export type Fault = 'ok' | 'slow' | 'fail' | 'short' | 'long' | 'corrupt' | 'hang';

export class FakeBackend implements BlobBackend {
  readonly kind = 'fake';
  reads = 0;
  bytes = 0;
  /** the fault of the next read; `ok` unless a test says otherwise */
  pick: (blobId: string, offset: number, length: number) => Fault = () => 'ok';
  private readonly blobs: Map<string, Buffer>;

  constructor(
    blobs: Buffer | Map<string, Buffer>,
    /** randomness for slow delays, short lengths and corrupt positions (a seeded PRNG in tests) */
    private readonly rand: () => number = Math.random,
  ) {
    this.blobs = blobs instanceof Map ? blobs : new Map([['*', blobs]]);
  }

  private blob(blobId: string): Buffer {
    const b = this.blobs.get(blobId) ?? this.blobs.get('*');
    if (!b) throw new BackendError(`fake: no blob ${blobId}`, blobId);
    return b;
  }

  async read(blobId: string, offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    this.reads++;
    const fault = this.pick(blobId, offset, length);
    if (fault === 'hang') {
      return new Promise<Buffer>((_, reject) => {
        if (!signal) return; // hangs for good: the caller has to bound it
        signal.addEventListener('abort', () => reject(signal.reason ?? new Error('aborted')), { once: true });
      });
    }
    if (fault === 'slow') await new Promise((r) => setTimeout(r, Math.floor(this.rand() * 4)));
    else await new Promise((r) => setImmediate(r));
    if (fault === 'fail') throw new BackendError(`fake: read [${offset}, +${length}) failed`, blobId);
    const blob = this.blob(blobId);
    if (offset + length > blob.length) throw new BackendError(`fake: blob ${blobId} ends at ${blob.length}`, blobId);
    const data = Buffer.from(blob.subarray(offset, offset + length));
    this.bytes += data.length;
    if (fault === 'short') return data.subarray(0, Math.floor(this.rand() * length));
    if (fault === 'long') return Buffer.concat([data, Buffer.alloc(1 + Math.floor(this.rand() * 100))]);
    if (fault === 'corrupt' && data.length > 0) data[Math.floor(this.rand() * data.length)]! ^= 1 + Math.floor(this.rand() * 255);
    return data;
  }

  async size(blobId: string): Promise<number> {
    return this.blob(blobId).length;
  }

  async close(): Promise<void> {}
}
