// A dedicated nydusd serving a bootstrap sample with the metrics on: a v1 configuration as nydus-snapshotter writes it
// (localfs backend, blob cache in its own work_dir, iostats_files, access_pattern and latest_read_files on, a
// device.id), --apisock, and optionally --metrics-address. Requests go over the socket (test/api/helpers.ts).
import { closeSync, constants, mkdirSync, openSync, readSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../helpers/paths.js';
import { Daemon, tempDir } from '../nydusd/helpers.js';
export { startHungBlobServer } from '../nydusd/helpers.js';
import { request, waitForSocket } from '../api/helpers.js';

export const SAMPLES = path.join(projectRoot, 'bootstrap-samples');

export interface MetricsDaemon {
  daemon: Daemon;
  dir: string;
  sock: string;
  mountpoint: string;
  /** the blob cache's work_dir */
  cache: string;
  /** the configuration's device.id: the key of the blobcache metrics */
  configId: string;
}

export interface MetricsDaemonOptions {
  /** a directory of bootstrap-samples/ */
  sample: string;
  /** where the localfs backend reads blobs (default: the sample's blobs/) */
  blobDir?: string;
  configId?: string;
  args?: string[];
}

export async function startMetricsDaemon(o: MetricsDaemonOptions): Promise<MetricsDaemon> {
  const dir = tempDir('metrics');
  const mountpoint = path.join(dir, 'mnt');
  const cache = path.join(dir, 'cache');
  mkdirSync(mountpoint, { recursive: true });
  const configId = o.configId ?? '/snapshot-1';
  const config = path.join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({
    device: {
      id: configId,
      backend: { type: 'localfs', config: { dir: o.blobDir ?? path.join(SAMPLES, o.sample, 'blobs') } },
      cache: { type: 'blobcache', config: { work_dir: cache } },
    },
    mode: 'direct',
    // no chunks pulled along with a read: the backend reads are exactly the chunks read
    amplify_io: 0,
    iostats_files: true,
    access_pattern: true,
    latest_read_files: true,
  }));
  const sock = path.join(dir, 'api.sock');
  const daemon = new Daemon(
    ['--bootstrap', path.join(SAMPLES, o.sample, 'bootstrap'), '--config', config, '--mountpoint', mountpoint, '--apisock', sock, ...(o.args ?? [])],
    mountpoint,
  );
  await waitForSocket(daemon, sock, 20_000);
  return { daemon, dir, sock, mountpoint, cache, configId };
}

/** GET `url` over the socket: its status and JSON body. */
export async function get(sock: string, url: string): Promise<{ status: number; json: any; text: string }> {
  const r = await request(sock, 'GET', url);
  return { status: r.status, json: r.json, text: r.text };
}

/** The suffixes nydus-snapshotter strips from cache file names to find their blob id (snapshotter-contract.md 5.3). */
const CACHE_SUFFIXES = ['.blob.data.chunk_map', '.blob.data', '.chunk_map', '.blob.meta', '.image.disk', '.layer.disk'];

/** The blob id a cache file belongs to, as the snapshotter's garbage collection sees it. */
export function blobIdOfCacheFile(name: string): string {
  const s = CACHE_SUFFIXES.find((x) => name.endsWith(x));
  return s ? name.slice(0, -s.length) : name;
}


/** Reads `length` bytes at `offset` with O_DIRECT: one FUSE READ, straight to the daemon; returns the bytes read. */
export function directRead(file: string, offset: number, length: number): number {
  const fd = openSync(file, constants.O_RDONLY | constants.O_DIRECT);
  try {
    return readSync(fd, Buffer.alloc(length), 0, length, offset);
  } finally {
    closeSync(fd);
  }
}
