// The reference Nydus tools ("peers") the differential tests and benchmarks compare against: nydus-rs 2.2.0 from
// crates.io, installed into ~/.cargo/bin by scripts/peers.sh (`npm run peers`, also step 5 of scripts/setup.sh).
// A missing peer is a loud failure naming the command that installs it, never a skip.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The pinned crate version (the newest nydus-rs published on crates.io; see README "Reference peers"). */
export const PEER_VERSION = '2.2.0';

const cargoBin = path.join(process.env.CARGO_HOME ?? path.join(os.homedir(), '.cargo'), 'bin');

export const REF_NYDUSD = path.join(cargoBin, 'nydusd');
export const REF_NYDUS_IMAGE = path.join(cargoBin, 'nydus-image');
export const REF_NYDUSCTL = path.join(cargoBin, 'nydusctl');

/**
 * Throws unless every reference binary is installed. The crate build prints `Version: unknown` for --version, so the
 * version is read from cargo's own install record (`cargo install --list`, offline).
 */
export function requirePeers(): void {
  const missing = [REF_NYDUSD, REF_NYDUS_IMAGE, REF_NYDUSCTL].filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new Error(`reference peers missing: ${missing.join(', ')}; install them with \`npm run peers\` (nydus-rs ${PEER_VERSION}, ~15 min to build)`);
  }
  const list = spawnSync(path.join(cargoBin, 'cargo'), ['install', '--list'], { encoding: 'utf8' });
  if (list.status === 0 && !list.stdout.includes(`nydus-rs v${PEER_VERSION}:`)) {
    throw new Error(`the reference peers in ${cargoBin} are not nydus-rs ${PEER_VERSION} (\`cargo install --list\` says otherwise); reinstall with \`npm run peers\``);
  }
}

/**
 * The real nydusd raises RLIMIT_NOFILE to 1,000,000 by default and exits "Operation not permitted" where the hard
 * limit is lower (containers, CI): every run of it passes this.
 */
export const REF_NYDUSD_FLAGS = ['--rlimit-nofile', '0'];
