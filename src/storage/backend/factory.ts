// Backends by configured type. Only what is implemented is accepted; anything else is a clear error at
// mount time rather than a failure on the first read.
import type { BackendConfig } from '../../config/model.js';
import type { BlobBackend } from './blob-backend.js';
import { LocalFsBackend } from './localfs.js';
import { withTimeout } from './timeout.js';

/** The configured backend, with its per-read timeout applied (timeout.ts). */
export function createBackend(config: BackendConfig | undefined): BlobBackend {
  if (!config) throw new Error('the configuration has no backend');
  switch (config.type) {
    case 'localfs':
      return withTimeout(new LocalFsBackend(config.localfs), config.localfs.timeout);
    default:
      throw new Error(`backend type "${config.type}" is not supported by this nydusd yet`);
  }
}
