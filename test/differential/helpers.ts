// Differential conformance against the reference Nydus tools (test/helpers/peers.ts): run either tool's
// nydus-image and either tool's nydusd on the same input, list what the kernel shows through the mount, and
// compare field by field. A difference is only accepted when a KnownDifference entry names it with its reason.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { REF_NYDUS_IMAGE, REF_NYDUSD, REF_NYDUSD_FLAGS } from '../helpers/peers.js';
import { mountImage, writeConfig, type Daemon } from '../nydusd/helpers.js';
import { nydusImageOk, snapshotDisk, type Entry, type Snapshot } from '../image/helpers.js';

export type Tool = 'ours' | 'ref';

export interface ToolRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The reference nydus-image; a run longer than a minute is a hang. */
export function refImage(args: string[]): ToolRun {
  const r = spawnSync(REF_NYDUS_IMAGE, args, { encoding: 'utf8', maxBuffer: 1 << 28, timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs `nydus-image <args>` of either tool and fails with its stderr when it does not exit 0. */
export function imageOk(tool: Tool, args: string[]): string {
  if (tool === 'ours') return nydusImageOk(args);
  const r = refImage(args);
  if (r.status !== 0) throw new Error(`reference nydus-image ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

export interface Mounted {
  daemon: Daemon;
  mnt: string;
}

/** Mounts `bootstrap` (blobs in `blobDir`, a fresh cache under `dir`) with either tool's nydusd. */
export async function mountWith(tool: Tool, bootstrap: string, blobDir: string, dir: string): Promise<Mounted> {
  const mnt = path.join(dir, 'mnt');
  const workDir = path.join(dir, 'cache');
  mkdirSync(workDir, { recursive: true });
  const config = writeConfig(path.join(dir, 'config.json'), { blobDir, workDir, enableXattr: true });
  const args = ['fuse', '--config', config, '--bootstrap', bootstrap, '--mountpoint', mnt];
  const daemon = tool === 'ours'
    ? await mountImage(args, mnt, 20_000)
    : await mountImage([...args, ...REF_NYDUSD_FLAGS], mnt, 20_000, undefined, REF_NYDUSD);
  return { daemon, mnt };
}

/** Everything the comparison looks at through a mount: modes, owners, sizes, link targets, xattrs, nlink, md5. */
export function mountListing(mnt: string): Snapshot {
  return snapshotDisk(mnt, { content: true, mtime: true, nlink: true });
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

/** One way two tools (or a tool and its source) may legitimately differ, with the reason. */
export interface KnownDifference<C> {
  id: string;
  /** which cases it applies to */
  when: (c: C) => boolean;
  /** which differences it covers */
  matches: (d: Difference) => boolean;
  reason: string;
}

/**
 * Splits `diffs` into those a known entry explains and those none does. Every entry that applies to the case must
 * also have been seen, so the table cannot keep entries for differences that have gone away.
 */
export function explain<C>(diffs: Difference[], known: Array<KnownDifference<C>>, c: C): { unlisted: string[]; unseen: string[] } {
  const applicable = known.filter((k) => k.when(c));
  const seen = new Set<string>();
  const unlisted: string[] = [];
  for (const d of diffs) {
    const k = applicable.find((x) => x.matches(d));
    if (k) seen.add(k.id);
    else unlisted.push(`${d.path} ${d.field}: want ${JSON.stringify(d.want)} got ${JSON.stringify(d.got)}`);
  }
  return { unlisted, unseen: applicable.filter((k) => !seen.has(k.id)).map((k) => k.id) };
}
