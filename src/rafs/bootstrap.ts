// Opens a bootstrap of either RAFS version, or the bootstrap inlined in a data blob.
import path from 'node:path';
import { RafsError, type Bootstrap } from '../image-model.js';
import { V5Bootstrap, V5_MAGIC } from './v5.js';
import { V6Bootstrap, EROFS_MAGIC } from './v6.js';
import type { OpenOptions } from './common.js';
import { extractBootstrap } from '../blob/inline.js';
import { readInputFile } from '../input-file.js';

export type { OpenOptions } from './common.js';

export function detectVersion(data: Buffer): 5 | 6 | undefined {
  if (data.length >= 8 && data.readUInt32LE(0) === V5_MAGIC) return 5;
  if (data.length >= 1028 && data.readUInt32LE(1024) === EROFS_MAGIC) return 6;
  return undefined;
}

export function openBootstrap(data: Buffer, opts?: OpenOptions): Bootstrap {
  const v = detectVersion(data);
  if (v === 5) return new V5Bootstrap(data, opts);
  if (v === 6) return new V6Bootstrap(data, opts);
  throw new RafsError(`invalid RAFS superblock: neither v5 magic at 0 nor EROFS magic at 1024 (${data.length} bytes)`);
}

/**
 * Loads a bootstrap file. A data blob with an inlined bootstrap is accepted too, as nydusd does: its
 * bootstrap is extracted and blob ids are then taken from the file name. Only a regular file is read, and only
 * as far as it was long when opened (input-file.ts).
 */
export function loadBootstrap(file: string): Bootstrap {
  const data = readInputFile(file, 'bootstrap');
  const fileName = path.basename(file);
  if (detectVersion(data) !== undefined) return openBootstrap(data, { fileName });
  let inner: Buffer;
  try {
    inner = extractBootstrap(data);
  } catch (e) {
    throw new RafsError(`${file}: not a RAFS bootstrap, nor a blob with an inlined one (${(e as Error).message})`);
  }
  return openBootstrap(inner, { fileName, extractedFromBlob: true });
}
