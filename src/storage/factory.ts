// Backends by configured type. Only what is implemented is accepted; anything else is a clear error at
// mount time rather than a failure on the first read.
import type { BackendConfig } from '../service/config.js';
import type { BlobBackend } from './backend.js';
import { LocalFsBackend, type LocalFsConfig } from './localfs.js';

export interface BackendSettings {
  backend: BlobBackend;
  /** per-read timeout in seconds from the backend's configuration (0 = none) */
  timeoutSec: number;
}

export function createBackend(config: BackendConfig | undefined): BackendSettings {
  if (!config) throw new Error('the configuration has no backend');
  const body = (config[config.type] ?? {}) as Record<string, unknown>;
  const timeoutSec = typeof body.timeout === 'number' ? body.timeout : 0;
  switch (config.type) {
    case 'localfs':
      return { backend: new LocalFsBackend(body as LocalFsConfig), timeoutSec };
    default:
      throw new Error(`backend type "${config.type}" is not supported by this nydusd yet`);
  }
}
