// The reference Nydus tools (crate nydus-rs, installed by setup into ${CARGO_HOME:-~/.cargo}/bin) that the
// differential suites run side by side with ours. A missing peer is a loud failure, never a skip.
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const bin = path.join(process.env.CARGO_HOME ?? path.join(os.homedir(), '.cargo'), 'bin');

export const REF_NYDUSD = path.join(bin, 'nydusd');
export const REF_NYDUS_IMAGE = path.join(bin, 'nydus-image');
export const REF_NYDUSCTL = path.join(bin, 'nydusctl');

/** Throws unless every reference tool is installed. */
export function requirePeers(): void {
  const missing = [REF_NYDUSD, REF_NYDUS_IMAGE, REF_NYDUSCTL].filter((p) => !existsSync(p));
  if (missing.length > 0) throw new Error(`reference Nydus tools missing: ${missing.join(', ')} (install them with the project's peers setup step)`);
}
