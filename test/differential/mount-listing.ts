// What the kernel shows through a mount of an image by either nydusd (test/differential/peer-daemons.ts): every
// path's mode, owner, size, mtime, device, link target, xattrs, nlink, hardlink group and md5, and the differences
// of two such listings, field by field, for a KNOWN-DIFFERENCES table (known.ts) to explain or fail.
import { isMounted, run } from '../nydusd/helpers.js';
import { snapshotDisk, type Entry, type Snapshot } from '../image/helpers.js';
import { mountImage, type Side, type Which } from './peer-daemons.js';

/** Everything the comparison looks at, through a mount. */
export function mountListing(mnt: string): Snapshot {
  return snapshotDisk(mnt, { content: true, mtime: true, nlink: true });
}

/**
 * SIGTERM and a clean exit. Our nydusd must leave no mount behind; the reference 2.2.0 now and then exits 0 with its
 * FUSE mount still in place (3 of ~60 stops in one run here, right after a full listing), which is detached and
 * reported in the returned note (a test diagnostic), since the daemons' shutdown is not what these tests compare.
 */
async function unmount(side: Side): Promise<string | undefined> {
  const exit = await side.daemon.stop(10_000);
  if (exit.code !== 0) throw new Error(`${side.which} nydusd exited ${exit.code ?? exit.signal} on SIGTERM: ${exit.stderr}`);
  if (!isMounted(side.mountpoint)) return undefined;
  if (side.which === 'ours') throw new Error(`our nydusd exited 0 but left ${side.mountpoint} mounted`);
  run('umount', [side.mountpoint]);
  return `reference nydusd exited 0 but left ${side.mountpoint} mounted (detached)`;
}

/**
 * Mounts `bootstrap` with `which` nydusd (a fresh cache in `dir`), lists the mount and unmounts; a listing that fails
 * carries the daemon's log. Returns the listing and a note when the unmount needed help.
 */
export async function listMounted(which: Which, bootstrap: string, blobDir: string, dir: string): Promise<{ listing: Snapshot; note?: string }> {
  const side = await mountImage(which, dir, { name: bootstrap, bootstrap, blobDir });
  let listing: Snapshot;
  try {
    listing = mountListing(side.mountpoint);
  } catch (err) {
    await side.daemon.cleanup();
    throw new Error(`listing ${bootstrap} mounted by ${which} nydusd failed: ${(err as Error).message}\n${which} nydusd log:\n${side.daemon.stderr.slice(-4000)}`);
  }
  return { listing, note: await unmount(side) };
}

export interface Difference {
  path: string;
  field: keyof Entry | 'presence';
  want: unknown;
  got: unknown;
}

const FIELDS: Array<keyof Entry> = ['mode', 'uid', 'gid', 'size', 'mtime', 'rdev', 'link', 'xattrs', 'md5', 'nlink', 'hardlinkOf'];

/** Every field of every path where `got` differs from `want` (a path only on one side is a `presence` difference). */
export function differences(want: Snapshot, got: Snapshot): Difference[] {
  const out: Difference[] = [];
  for (const p of [...new Set([...want.keys(), ...got.keys()])].sort()) {
    const a = want.get(p);
    const b = got.get(p);
    if (!a || !b) {
      out.push({ path: p, field: 'presence', want: a !== undefined, got: b !== undefined });
      continue;
    }
    for (const f of FIELDS) {
      if (JSON.stringify(a[f]) !== JSON.stringify(b[f])) out.push({ path: p, field: f, want: a[f], got: b[f] });
    }
  }
  return out;
}

/** One line per difference, for assertion messages. */
export function describeDifference(d: Difference): string {
  return `${d.path} ${d.field}: want ${JSON.stringify(d.want)} got ${JSON.stringify(d.got)}`;
}
