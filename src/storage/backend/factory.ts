// Backends by configured type. Only what is implemented is accepted; anything else is a clear error at
// mount time rather than a failure on the first read. The network backends are imported when one is created: they
// bring the HTTP client (undici), which took 55-80 ms of a localfs daemon's 0.24 s start otherwise (measured, issue 11).
import type { BackendConfig } from '../../config/model.js';
import type { Log } from '../../log.js';
import type { BlobBackend } from './blob-backend.js';
import { LocalFsBackend } from './localfs.js';
import { NETWORK_RETRY_POLICY, withRetry, type RetryPolicy } from './retry.js';
import { withTimeout } from './timeout.js';

export interface CreateBackendOptions {
  /** the environment for IMAGE_PULL_AUTH (nydusd-runtime.md 1.6; default: this process's) */
  env?: NodeJS.ProcessEnv;
  log?: Log;
}

/**
 * The configured backend, with its per-read timeout applied: localfs through timeout.ts; the registry's `timeout`
 * already bounds each HTTP exchange (http/client.ts), so no second timer goes around it. The retry policy is not
 * applied here but by whoever meters the backend (retryPolicyOf, device.ts's `above`), so each attempt is metered.
 */
export async function createBackend(config: BackendConfig | undefined, opts: CreateBackendOptions = {}): Promise<BlobBackend> {
  if (!config) throw new Error('the configuration has no backend');
  switch (config.type) {
    case 'localfs':
      return withTimeout(new LocalFsBackend(config.localfs), config.localfs.timeout);
    case 'registry': {
      const { RegistryBackend } = await import('./registry/registry.js');
      try {
        // IMAGE_PULL_AUTH is the credential when the configuration has none (1.6, 7.3)
        return new RegistryBackend(config.registry, { envCredential: (opts.env ?? process.env).IMAGE_PULL_AUTH, log: opts.log });
      } catch (err) {
        throw new Error(`registry backend ${config.registry.host}/${config.registry.repo}: ${(err as Error).message}`, { cause: err });
      }
    }
    case 'kraken': {
      // our extension (issue 11 scope 4): its `timeout` bounds the agent's silence, not each read (kraken/spool.ts)
      const { KrakenBackend } = await import('./kraken/kraken.js');
      try {
        return new KrakenBackend(config.kraken, { log: opts.log });
      } catch (err) {
        throw new Error(`kraken backend ${config.kraken.agent}: ${(err as Error).message}`, { cause: err });
      }
    }
    default:
      throw new Error(`backend type "${config.type}" is not supported by this nydusd yet`);
  }
}

/**
 * Imports the registry backend (and the HTTP client) ahead of its first use: a shared daemon does it while idle, since
 * the images nydus-snapshotter mounts into it come from registries (issue 11, bench/registry-small-file.ts).
 */
export async function preloadRegistryBackend(): Promise<void> {
  await import('./registry/registry.js');
  await (await import('./http/undici.js')).warmUp();
}

/** The retry policy of a backend type: the network policy of 7.4, none for local backends (their reads fail for good). */
export function retryPolicyOf(config: BackendConfig | undefined): RetryPolicy | undefined {
  switch (config?.type) {
    case 'registry':
    case 'oss':
    case 's3':
    case 'http-proxy':
    case 'kraken':
      return NETWORK_RETRY_POLICY;
    default:
      return undefined;
  }
}

/** `metered` with the retry policy of its type, when it has one. */
export function withRetryOf(config: BackendConfig | undefined, metered: BlobBackend, log?: Log): BlobBackend {
  const policy = retryPolicyOf(config);
  return policy ? withRetry(metered, { policy, log }) : metered;
}
