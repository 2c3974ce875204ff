// Shared bits of the nydus-image subcommands: loading bootstraps with clear errors, JSON output.
import { closeSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadBootstrap, openBootstrap } from '../../rafs/bootstrap.js';
import type { Bootstrap } from '../../rafs/types.js';

export function loadImage(file: string): Bootstrap {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read bootstrap ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    if (isInlinedMetaBlob(data)) return loadBootstrap(file);
    return openBootstrap(data, { fileName: path.basename(file) });
  } catch (e) {
    throw new Error(`invalid bootstrap ${file}: ${(e as Error).message}`);
  }
}

/** Neither bootstrap magic (v5 at 0, EROFS at 1024): maybe a data blob carrying its bootstrap (`--blob-inline-meta`). */
export function isInlinedMetaBlob(data: Buffer): boolean {
  const v5 = data.length >= 4 && data.readUInt32LE(0) === 0x52414653;
  const v6 = data.length >= 1028 && data.readUInt32LE(1024) === 0xe0f5e1e2;
  return !v5 && !v6 && data.length >= 512;
}

/** `-B` may name an inlined-meta blob; then that file is also where the data is, unless told otherwise. */
export function defaultBlobFile(bootstrapFile: string, blobFile: string | undefined, blobDir: string | undefined): string | undefined {
  if (blobFile || blobDir) return blobFile;
  try {
    const head = Buffer.alloc(1028);
    const fd = openSync(bootstrapFile, 'r');
    const n = readSync(fd, head, 0, head.length, 0);
    closeSync(fd);
    return isInlinedMetaBlob(head.subarray(0, n)) ? bootstrapFile : undefined;
  } catch {
    return undefined;
  }
}

export function writeJson(file: string | undefined, value: unknown): void {
  if (file) writeFileSync(file, JSON.stringify(value, null, 2) + '\n');
}
