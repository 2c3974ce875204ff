// Where nydusd may mount: an existing directory, not already a mount point, and not on a kernel pseudo
// filesystem. A FUSE mount over /proc/<pid> (`--mountpoint /proc/self`) or inside /sys makes the daemon's own
// start-up look itself up through its not yet answering mount, and it deadlocks; nothing useful lives there.
import fs from 'node:fs';
import { mountAt, mountContaining, readMounts } from '../fuse/mountinfo.js';
import { checkDirectoryPath, inputError } from '../input-file.js';

/** Filesystem types of the kernel's own views, never a place for an image (types from /proc/filesystems). */
const PSEUDO_FS = new Set([
  'proc', 'sysfs', 'cgroup', 'cgroup2', 'debugfs', 'tracefs', 'securityfs', 'pstore', 'bpf', 'configfs',
  'fusectl', 'devpts', 'mqueue', 'binfmt_misc', 'efivarfs', 'selinuxfs', 'nsfs', 'autofs', 'rpc_pipefs', 'nfsd',
]);

/** Checks `--mountpoint` and returns it resolved (absolute, without symlinks); errors are one line naming it. */
export function checkMountpoint(given: string): string {
  let dir: string;
  try {
    dir = fs.realpathSync(given);
  } catch (e) {
    throw inputError(e, given, 'mountpoint', 'resolve');
  }
  checkDirectoryPath(dir, given === dir ? 'mountpoint' : `mountpoint ${given} ->`);
  const mounts = readMounts();
  const holder = mountContaining(dir, mounts);
  if (holder && PSEUDO_FS.has(holder.fsType)) {
    throw new Error(`mountpoint ${given} is on a ${holder.fsType} filesystem (mounted at ${holder.mountPoint}), which cannot hold a FUSE mount`);
  }
  if (mountAt(dir, mounts)) throw new Error(`mountpoint ${dir} is already mounted`);
  return dir;
}
