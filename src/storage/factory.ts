// Backends by configured type. Only what is implemented is accepted; anything else is a clear error at
// mount time rather than a failure on the first read.
import type { BackendConfig } from '../config/model.js';
import type { BlobBackend } from './backend.js';
import { LocalFsBackend } from './localfs.js';

export interface BackendSettings {
  backend: BlobBackend;
  /** per-read timeout in seconds from the backend's configuration (0 = none) */
  timeoutSec: number;
}

export function createBackend(config: BackendConfig | undefined): BackendSettings {
  if (!config) throw new Error('the configuration has no backend');
  switch (config.type) {
    case 'localfs':
      return { backend: new LocalFsBackend(config.localfs), timeoutSec: config.localfs.timeout };
    default:
      throw new Error(`backend type "${config.type}" is not supported by this nydusd yet`);
  }
}
