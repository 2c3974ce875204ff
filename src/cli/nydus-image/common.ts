// Shared bits of the nydus-image subcommands: loading bootstraps with clear errors, JSON output.
import { closeSync } from 'node:fs';
import path from 'node:path';
import { loadBootstrap, openBootstrap } from '../../rafs/bootstrap.js';
import type { Bootstrap } from '../../image-model.js';
import { openInputFile, readInputFile, readInputRange, writeOutputFile, type InputFileError } from '../../input-file.js';

export function loadImage(file: string): Bootstrap {
  let data: Buffer;
  try {
    data = readInputFile(file, 'bootstrap');
  } catch (e) {
    const err = e as InputFileError;
    throw err.reason ? new Error(`cannot read bootstrap ${file}: ${err.reason}`) : err;
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
    const input = openInputFile(bootstrapFile, 'bootstrap');
    try {
      return isInlinedMetaBlob(readInputRange(input, 0, Math.min(input.size, 1028), 'bootstrap')) ? bootstrapFile : undefined;
    } finally {
      closeSync(input.fd);
    }
  } catch {
    return undefined;
  }
}

export function writeJson(file: string | undefined, value: unknown): void {
  if (file) writeOutputFile(file, 'JSON output', JSON.stringify(value, null, 2) + '\n');
}
