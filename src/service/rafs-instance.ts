// One mounted RAFS image: bootstrap + configuration -> backend, blob device and the FUSE filesystem.
// Both the initial mount of the command line and (later) API mounts go through here.
import path from 'node:path';
import { loadBootstrap } from '../rafs/bootstrap.js';
import { RafsFs } from '../rafs/fs.js';
import type { Bootstrap } from '../image-model.js';
import type { Log } from '../log.js';
import type { BlobBackend, ReadKind } from '../storage/backend/blob-backend.js';
import { BackendDecorator } from '../storage/backend/decorator.js';
import { BlobDevice } from '../storage/device.js';
import { createBackend, withRetryOf } from '../storage/backend/factory.js';
import { dynamicConfig, type DynamicConfigStore } from './dynamic-config.js';
import type { ConfigV2 } from '../config/model.js';
import { InputFileError } from '../input-file.js';

export interface RafsInstance {
  bootstrap: Bootstrap;
  device: BlobDevice;
  fs: RafsFs;
  config: ConfigV2;
}

/**
 * Reports every read the backend fails to `onError` (the daemon's event ring, spec nydusd-runtime.md 3.5.3). It sits
 * above the retry decorator (7.4: the error goes to the ring after the last failed attempt), so each failure is final
 * for its reader.
 */
function reportingFailures(inner: BlobBackend, onError: (message: string) => void): BlobBackend {
  return new (class extends BackendDecorator {
    read(blobId: string, offset: number, length: number, signal?: AbortSignal, into?: Buffer, kind?: ReadKind, bypassProxy?: boolean): Promise<Buffer> {
      return this.inner.read(blobId, offset, length, signal, into, kind, bypassProxy).catch((err: unknown) => {
        onError(`${this.kind}: reading blob ${blobId} offset ${offset} length ${length}: ${(err as Error).message}`);
        throw err;
      });
    }
  })(inner);
}

/**
 * Live changes (2.6): the backend hears `registry_auth` (credential rotation), `proxy_url` (re-routing, DECISIONS.md
 * row 10) and `dragonfly_scheduler_endpoint` changes of its backend id in the dynamic store. The store is seeded from
 * this configuration now (2.6: "at backend creation"); the subscription ends with the backend.
 */
function followingDynamicConfig(backend: BlobBackend, backendId: string, config: ConfigV2, store: DynamicConfigStore): BlobBackend {
  // decorators forward these whatever is below them: the configuration says whether the backend uses them
  if (config.backend?.type !== 'registry') return backend;
  store.seed(backendId, config);
  const stop = store.subscribe((id, key, value) => {
    if (id !== backendId) return;
    if (key === 'registry_auth') backend.setCredential?.(value);
    else if (key === 'proxy_url') backend.setProxyUrl?.(value);
    else if (key === 'dragonfly_scheduler_endpoint') backend.setSchedulerEndpoint?.(value);
  });
  const close = backend.close.bind(backend);
  backend.close = async () => {
    stop();
    await close();
  };
  return backend;
}

export interface RafsInstanceOptions {
  /** the backend id in the dynamic configuration store (the instance's mountpoint in the FUSE tree, 2.6) */
  backendId?: string;
  /** the store (default: the process's) */
  store?: DynamicConfigStore;
}

export async function createRafsInstance(
  bootstrapPath: string,
  config: ConfigV2,
  startTime: number,
  log?: Log,
  onReadError?: (message: string) => void,
  opts: RafsInstanceOptions = {},
): Promise<RafsInstance> {
  const rafs = config.rafs;
  if (!rafs) throw new Error('no configuration information for rafs');
  const cache = config.cache;
  if (!cache || (cache.type !== 'blobcache' && cache.type !== 'filecache') || !cache.filecache) {
    throw new Error(`cache type "${cache?.type ?? ''}" is not supported: configure a blobcache (filecache) with a work_dir`);
  }
  let bootstrap: Bootstrap;
  try {
    bootstrap = loadBootstrap(bootstrapPath);
    // a mount whose root cannot be read serves nothing but EIO: refuse it now, with the reason
    const root = bootstrap.getInode(bootstrap.superblock.rootIno);
    if ((root.mode & 0o170000) !== 0o040000) throw new Error(`root inode ${root.ino} is not a directory (mode 0o${root.mode.toString(8)})`);
  } catch (err) {
    // a file that cannot be read (a FIFO, a loop, EACCES) already names itself and what it is
    if (err instanceof InputFileError) throw err;
    throw new Error(`cannot load bootstrap ${bootstrapPath}: ${(err as Error).message}`, { cause: err });
  }
  const v6 = bootstrap.superblock.version === 6;
  if (v6 && rafs.validate) throw new Error('RAFS v6 does not support digest validation (rafs.validate / digest_validate)');
  const created = await createBackend(config.backend, { log });
  const backend = opts.backendId !== undefined ? followingDynamicConfig(created, opts.backendId, config, opts.store ?? dynamicConfig) : created;
  const device = new BlobDevice(bootstrap.blobs, {
    backend,
    // retry, then failure reporting, above metering: every attempt metered, only the final failure reported (7.4)
    above: (metered) => {
      const retrying = withRetryOf(config.backend, metered, log);
      return onReadError ? reportingFailures(retrying, onReadError) : retrying;
    },
    workDir: path.resolve(cache.filecache.work_dir),
    useBlobMeta: v6,
    amplifyIo: rafs.batch_size,
    validateFetch: rafs.validate,
    validateCache: cache.validate,
    compressed: cache.compressed,
    digester: bootstrap.superblock.digester,
    log,
  });
  const fs = new RafsFs(bootstrap, device, { amplifyIo: rafs.batch_size, startTime });
  return { bootstrap, device, fs, config };
}
