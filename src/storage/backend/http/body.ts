// Reading an exact number of body bytes (nydusd-runtime.md 7.4: a remote backend returns exactly the bytes asked for; a
// shorter or longer body is an error and is retried, never served).
import type { Readable } from 'node:stream';
import { NetworkError } from '../errors.js';

/**
 * Copies the body into `into` (when it is exactly `length` bytes) or a new buffer. A body that ends early or runs
 * past `length` rejects with ND_ERR_RANGE; a body that breaks rejects with `mapError(err)`. Copies are synchronous per
 * chunk, so once this rejects nothing writes into the buffer any more.
 */
export async function readExactly(body: Readable, length: number, into: Buffer | undefined, what: string, mapError: (err: unknown) => unknown): Promise<Buffer> {
  const buf = into?.length === length ? into : Buffer.allocUnsafe(length);
  let got = 0;
  try {
    for await (const chunk of body) {
      const b = chunk as Buffer;
      if (got + b.length > length) {
        body.on('error', () => undefined);
        body.destroy();
        throw new NetworkError(`${what}: the body is longer than the ${length} bytes asked for`, 'ND_ERR_RANGE');
      }
      b.copy(buf, got);
      got += b.length;
    }
  } catch (err) {
    if (err instanceof NetworkError) throw err;
    throw mapError(err);
  }
  if (got !== length) throw new NetworkError(`${what}: short body, ${got} of ${length} bytes`, 'ND_ERR_RANGE');
  return buf;
}
