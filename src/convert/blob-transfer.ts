// Blobs in and out of a store, always verified: a blob is content-addressed (anchors.md 5.1), so one whose bytes
// do not hash to its digest, or whose length is not its descriptor's size, is refused with both digests named.
import { createHash } from 'node:crypto';
import { createWriteStream, rmSync } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Descriptor } from './image-json.js';
import type { ImageStore } from './image-store.js';

export class DigestMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DigestMismatchError';
  }
}

/** A pass-through stream that hashes what flows through it. */
export class HashingStream extends Transform {
  private readonly hash = createHash('sha256');
  bytes = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null, d?: Buffer) => void): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }

  digest(): string {
    return `sha256:${this.hash.digest('hex')}`;
  }
}

/** Downloads the blob of `desc` into `file`; a wrong digest or size removes the file and throws DigestMismatchError. */
export async function downloadBlob(store: ImageStore, desc: Descriptor, file: string): Promise<void> {
  const hashing = new HashingStream();
  try {
    await pipeline(await store.getBlob(desc.digest), hashing, createWriteStream(file));
  } catch (e) {
    rmSync(file, { force: true });
    throw new Error(`${store.description}: cannot fetch blob ${desc.digest}: ${(e as Error).message}`);
  }
  const got = hashing.digest();
  if (got !== desc.digest || hashing.bytes !== desc.size) {
    rmSync(file, { force: true });
    throw new DigestMismatchError(
      `${store.description}: blob ${desc.digest} is corrupt: its ${hashing.bytes} bytes hash to ${got} (expected ${desc.size} bytes)`,
    );
  }
}
