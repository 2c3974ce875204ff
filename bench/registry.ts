// The registry side of the issue 11 benchmarks: Debian's docker-registry on loopback (the test harness's, anonymous),
// the docker-registry process's CPU, and nydusd (ours or the reference) reading an image's blobs from it with the
// registry backend, configured as nydus-snapshotter configures it (v1, nydusd-runtime.md 2.4; plain http on loopback).
import fs from 'node:fs';
import path from 'node:path';
import { Registry } from '../test/helpers/registry.js';
import { FuseServer, nydusdJs, referenceNydusd, rmrf } from './common.js';

export { Registry, RegistryClient } from '../test/helpers/registry.js';

/** An anonymous registry with its storage in `dir` (emptied first). */
export async function startRegistry(dir: string): Promise<Registry> {
  rmrf(dir);
  fs.mkdirSync(dir, { recursive: true });
  return Registry.start({ kind: 'anonymous' }, dir);
}

/** The pid of the docker-registry process serving `reg` (a child of the harness's watchdog shell). */
export function registryPid(reg: Registry): number {
  const config = path.join(reg.dir, 'config.yml');
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (argv[0]?.endsWith('docker-registry') && argv[1] === 'serve' && argv[2] === config) return Number(e);
  }
  throw new Error(`no docker-registry process serving ${config}`);
}

/** What a benchmark may set in the daemons' configuration; anything absent keeps the daemons' default. */
export interface Tuning {
  amplifyIo?: number;
}

/**
 * A v1 nydusd configuration reading `repo`'s blobs from `reg` over plain http, with a blobcache in `cacheDir`. Both
 * daemons take it; nothing is tuned unless `tuning` says so (no amplify_io, no prefetch): the defaults are measured.
 */
export function writeRegistryNydusdConfig(file: string, reg: Registry, repo: string, cacheDir: string, tuning: Tuning = {}): string {
  fs.writeFileSync(file, JSON.stringify({
    device: {
      backend: { type: 'registry', config: { scheme: 'http', host: reg.host, repo, timeout: 30, connect_timeout: 10 } },
      cache: { type: 'blobcache', config: { work_dir: cacheDir } },
    },
    mode: 'direct',
    digest_validate: false,
    enable_xattr: true,
    ...(tuning.amplifyIo !== undefined ? { amplify_io: tuning.amplifyIo } : {}),
  }));
  return file;
}

export type Daemon = 'nydusd' | 'nydusd-rs';

/** The command line of a daemon serving `bootstrap` at `mountpoint` with the configuration `config`. */
export function daemonCommand(which: Daemon, config: string, bootstrap: string, mountpoint: string, extra: string[] = [], nodeArgs: string[] = []): [string, string[]] {
  const common = ['fuse', '--config', config, '--bootstrap', bootstrap, '--mountpoint', mountpoint, '--log-level', 'warn', ...extra];
  if (which === 'nydusd') return [process.execPath, [...nodeArgs, nydusdJs, ...common]];
  if (!fs.existsSync(referenceNydusd)) throw new Error(`the reference nydusd is missing at ${referenceNydusd}: run npm run peers`);
  // --rlimit-nofile 0: see startReferenceNydusd in common.ts
  return [referenceNydusd, [...common, '--rlimit-nofile', '0']];
}

/**
 * A daemon on the registry backend, mounted at `mountpoint`, with a fresh cache under `work`. `nodeArgs` (ours only) go
 * before the script, e.g. `--cpu-prof --cpu-prof-dir D`.
 */
export async function startRegistryDaemon(
  which: Daemon, reg: Registry, repo: string, bootstrap: string, work: string, mountpoint: string, extra: string[] = [], nodeArgs: string[] = [], tuning: Tuning = {},
): Promise<FuseServer> {
  const cacheDir = path.join(work, `${which}-registry-cache`);
  rmrf(cacheDir);
  fs.mkdirSync(cacheDir, { recursive: true });
  const config = writeRegistryNydusdConfig(path.join(work, `${which}-registry.json`), reg, repo, cacheDir, tuning);
  const [cmd, args] = daemonCommand(which, config, bootstrap, mountpoint, extra, nodeArgs);
  return FuseServer.start(which, cmd, args, mountpoint);
}
