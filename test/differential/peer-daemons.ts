// Our nydusd and the reference nydusd (test/helpers/peers.ts) started with the same argv on the same inputs, so
// the differential suites can put the same question to both. The reference raises RLIMIT_NOFILE to 1,000,000 by
// default, which this machine refuses ("Operation not permitted"), so both get `--rlimit-nofile 0` (leave it).
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { REF_NYDUSD } from '../helpers/peers.js';
import { waitForSocket } from '../api/helpers.js';
import { Daemon, writeConfig, type ConfigOptions } from '../nydusd/helpers.js';

export type Which = 'ref' | 'ours';
export const BOTH: readonly Which[] = ['ref', 'ours'];

export interface Side {
  which: Which;
  daemon: Daemon;
  mountpoint: string;
  sock: string;
}

/** A RAFS image on disk: its bootstrap and the directory holding its data blobs (named by blob id). */
export interface Image {
  name: string;
  bootstrap: string;
  blobDir: string;
}

/** Starts one daemon with `args` (plus the socket and rlimit flags) and waits for its mount and API socket. */
export async function startSide(which: Which, dir: string, args: string[]): Promise<Side> {
  const mountpoint = path.join(dir, 'mnt');
  const sock = path.join(dir, 'api.sock');
  mkdirSync(mountpoint, { recursive: true });
  const argv = ['fuse', ...args, '--mountpoint', mountpoint, '--apisock', sock, '--rlimit-nofile', '0'];
  const daemon = new Daemon(argv, mountpoint, undefined, which === 'ref' ? REF_NYDUSD : undefined);
  try {
    await daemon.waitMounted(20_000);
    await waitForSocket(daemon, sock, 20_000);
  } catch (err) {
    await daemon.kill();
    throw new Error(`${which} nydusd: ${(err as Error).message}`);
  }
  return { which, daemon, mountpoint, sock };
}

/** A dedicated daemon on `image` with a v1 localfs config (as nydus-snapshotter writes it) in `dir`. */
export function mountImage(which: Which, dir: string, image: Image, cache: Partial<ConfigOptions> = {}): Promise<Side> {
  mkdirSync(dir, { recursive: true });
  const config = writeConfig(path.join(dir, 'config.json'), { blobDir: image.blobDir, workDir: path.join(dir, 'cache'), ...cache });
  return startSide(which, dir, ['--config', config, '--bootstrap', image.bootstrap]);
}

/** A shared daemon (no bootstrap): the pseudo root only, images attached over POST /api/v1/mount. */
export function sharedDaemon(which: Which, dir: string): Promise<Side> {
  mkdirSync(dir, { recursive: true });
  return startSide(which, dir, []);
}
