// The localfs backend: blobs are plain files, found as `<dir>/<blob_id>` (then in each of `alt_dirs`),
// or one fixed `blob_file` for every id (the reference's single-blob form).
import fs from 'node:fs';
import path from 'node:path';
import type { LocalFsConfig } from '../../config/model.js';
import type { BlobBackend } from './blob-backend.js';
import { BackendError } from './errors.js';
import { untilAborted } from './abort.js';

/**
 * Opens a blob file. O_NONBLOCK keeps a FIFO or device named like a blob from blocking a libuv worker in
 * open(2) forever (and with it the daemon's exit, which joins those workers); such files are refused.
 */
async function openRegular(file: string, blobId: string): Promise<fs.promises.FileHandle> {
  const fh = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const st = await fh.stat().catch(async (err) => {
    await fh.close();
    throw err;
  });
  if (!st.isFile()) {
    await fh.close();
    throw new BackendError(`localfs: blob ${blobId} at ${file} is not a regular file`, blobId);
  }
  return fh;
}

export class LocalFsBackend implements BlobBackend {
  readonly kind = 'localfs';
  private readonly files = new Map<string, Promise<fs.promises.FileHandle>>();
  /** per blob: a read its caller gave up on (timeout) that has not returned from the kernel yet */
  private readonly stuck = new Map<string, Promise<void>>();

  constructor(private readonly config: LocalFsConfig) {
    if (!config.blob_file && !config.dir) {
      throw new Error('localfs backend: either "dir" or "blob_file" must be set');
    }
  }

  /** The path a blob id resolves to, or undefined when no candidate exists. */
  locate(blobId: string): string | undefined {
    if (this.config.blob_file) return this.config.blob_file;
    if (!/^[0-9a-zA-Z._-]+$/.test(blobId)) return undefined;
    for (const dir of [this.config.dir!, ...(this.config.alt_dirs ?? [])]) {
      const p = path.join(dir, blobId);
      if (fs.existsSync(p)) return p;
    }
    return undefined;
  }

  private open(blobId: string): Promise<fs.promises.FileHandle> {
    let fh = this.files.get(blobId);
    if (!fh) {
      const p = this.locate(blobId);
      fh = p
        ? openRegular(p, blobId)
        : Promise.reject(new BackendError(`localfs: blob ${blobId} not found in ${[this.config.dir, ...(this.config.alt_dirs ?? [])].join(', ')}`, blobId));
      // a failed open is not cached: the blob may appear later
      fh.catch(() => this.files.delete(blobId));
      this.files.set(blobId, fh);
    }
    return fh;
  }

  get abandoned(): number {
    return this.stuck.size;
  }

  async read(blobId: string, offset: number, length: number, signal?: AbortSignal, into?: Buffer): Promise<Buffer> {
    let fh: fs.promises.FileHandle;
    try {
      fh = await this.open(blobId);
    } catch (err) {
      if (err instanceof BackendError) throw err;
      throw new BackendError(`localfs: cannot open blob ${blobId}: ${(err as Error).message}`, blobId, { cause: err });
    }
    const buf = into?.length === length ? into : Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      signal?.throwIfAborted();
      // while an abandoned read of this blob is still stuck in the kernel, queue behind it instead of
      // pinning one more libuv worker (there are four for the whole daemon, cache I/O included)
      const stuck = this.stuck.get(blobId);
      if (stuck) await untilAborted(stuck, signal);
      const pending = fh.read(buf, done, length - done, offset + done);
      let bytesRead: number;
      try {
        ({ bytesRead } = await untilAborted(pending, signal));
      } catch (err) {
        if (signal?.aborted) {
          const left = pending.then(() => undefined, () => undefined).finally(() => {
            if (this.stuck.get(blobId) === left) this.stuck.delete(blobId);
          });
          this.stuck.set(blobId, left);
          throw err;
        }
        throw new BackendError(`localfs: reading blob ${blobId}: ${(err as Error).message}`, blobId, { cause: err });
      }
      if (bytesRead === 0) {
        throw new BackendError(
          `localfs: blob ${blobId} is truncated: wanted [${offset}, ${offset + length}) but it ends at ${offset + done}`,
          blobId,
        );
      }
      done += bytesRead;
    }
    return buf;
  }

  async size(blobId: string): Promise<number> {
    const fh = await this.open(blobId);
    return (await fh.stat()).size;
  }

  /** Closes every open blob; an open still hanging is not waited for (it is closed if it ever completes). */
  async close(): Promise<void> {
    const handlesById = new Map(this.files);
    const handles = [...this.files.values()];
    this.files.clear();
    const settled = await Promise.race([Promise.allSettled(handles), new Promise<'hung'>((r) => setImmediate(() => r('hung')))]);
    if (settled === 'hung') {
      for (const h of handles) h.then((fh) => fh.close(), () => undefined).catch(() => undefined);
      return;
    }
    // a handle with a read stuck below it cannot close until that read returns: leave it to process exit
    const stuck = new Set([...this.stuck.keys()].map((id) => handlesById.get(id)));
    await Promise.allSettled(handles.filter((h) => !stuck.has(h)).map(async (h) => (await h).close()));
  }
}
