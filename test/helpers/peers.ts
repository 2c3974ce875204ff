// The reference Nydus tools ("peers": crate nydus-rs, installed by scripts/peers.sh — `npm run peers`, also a step of
// scripts/setup.sh — into ${CARGO_HOME:-~/.cargo}/bin) that the differential suites and the benchmarks run side by
// side with ours. A missing peer is a loud failure naming the command that installs it, never a skip.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The pinned crate version: the newest nydus-rs on crates.io (README "Reference peers"). Keep scripts/peers.sh in step. */
export const PEER_VERSION = '2.2.0';

const bin = path.join(process.env.CARGO_HOME ?? path.join(os.homedir(), '.cargo'), 'bin');

export const REF_NYDUSD = path.join(bin, 'nydusd');
export const REF_NYDUS_IMAGE = path.join(bin, 'nydus-image');
export const REF_NYDUSCTL = path.join(bin, 'nydusctl');

/**
 * Throws unless every reference tool is installed, and installed from the pinned version. The crate's binaries print
 * `Version: unknown`, so the version comes from cargo's own install record (`cargo install --list`, offline).
 */
export function requirePeers(): void {
  const missing = [REF_NYDUSD, REF_NYDUS_IMAGE, REF_NYDUSCTL].filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new Error(`reference Nydus tools missing: ${missing.join(', ')}; install them with \`npm run peers\` (nydus-rs ${PEER_VERSION}, a ~15 min build)`);
  }
  const list = spawnSync(path.join(bin, 'cargo'), ['install', '--list'], { encoding: 'utf8' });
  if (list.status === 0 && !list.stdout.includes(`nydus-rs v${PEER_VERSION}:`)) {
    throw new Error(`the reference Nydus tools in ${bin} are not nydus-rs ${PEER_VERSION} (see \`cargo install --list\`); reinstall with \`npm run peers\``);
  }
}
