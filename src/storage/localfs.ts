// The localfs backend: blobs are plain files, found as `<dir>/<blob_id>` (then in each of `alt_dirs`),
// or one fixed `blob_file` for every id (the reference's single-blob form).
import fs from 'node:fs';
import path from 'node:path';
import { BackendError, type BlobBackend } from './backend.js';

export interface LocalFsConfig {
  dir?: string;
  blob_file?: string;
  alt_dirs?: string[];
}

export class LocalFsBackend implements BlobBackend {
  readonly kind = 'localfs';
  private readonly files = new Map<string, Promise<fs.promises.FileHandle>>();

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
        ? fs.promises.open(p, 'r')
        : Promise.reject(new BackendError(`localfs: blob ${blobId} not found in ${[this.config.dir, ...(this.config.alt_dirs ?? [])].join(', ')}`, blobId));
      // a failed open is not cached: the blob may appear later
      fh.catch(() => this.files.delete(blobId));
      this.files.set(blobId, fh);
    }
    return fh;
  }

  async read(blobId: string, offset: number, length: number, signal?: AbortSignal): Promise<Buffer> {
    let fh: fs.promises.FileHandle;
    try {
      fh = await this.open(blobId);
    } catch (err) {
      if (err instanceof BackendError) throw err;
      throw new BackendError(`localfs: cannot open blob ${blobId}: ${(err as Error).message}`, blobId, { cause: err });
    }
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      signal?.throwIfAborted();
      const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
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

  async close(): Promise<void> {
    const handles = [...this.files.values()];
    this.files.clear();
    await Promise.allSettled(handles.map(async (h) => (await h).close()));
  }
}
