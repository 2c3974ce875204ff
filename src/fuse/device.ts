// The /dev/fuse device and the kernel mount: the only place that touches syscalls, so the rest of src/fuse is
// plain protocol and scheduling. Raw fds are shared by all threads of the process, so the reader threads and the
// main thread use the same numbers.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { FuseReaderEvent, native } from '../native/index.js';
import { mountAt } from './mountinfo.js';

/** mount(2) flags (linux/mount.h) */
export const MS_RDONLY = 1;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_NOATIME = 1024;
/** umount2(2) flag: detach now, clean up when no longer busy. */
export const MNT_DETACH = 2;

export function openDevice(): number {
  try {
    return fs.openSync('/dev/fuse', fs.constants.O_RDWR);
  } catch (e) {
    throw new Error(`cannot open /dev/fuse: ${(e as Error).message} (FUSE needs the fuse kernel module and root or a fuse group)`, { cause: e });
  }
}

/** A new fd on the same connection (FUSE_DEV_IOC_CLONE): replies must go to the fd that read the request. */
export function cloneDevice(sessionFd: number): number {
  return native.openFuseClone(sessionFd);
}

export { FuseReaderEvent };

/**
 * Starts a reader thread on `fd` (native: an OS thread blocked in read(2), no JS of its own). Requests arrive in
 * `onEvent` as slots of `ring`, to be copied before it returns; see NativeAddon.startFuseReader for the order of
 * events. `control`'s first Int32 set to 1 stops the reader after its next request.
 */
export function startReader(
  fd: number,
  ring: Uint8Array,
  slotSize: number,
  control: SharedArrayBuffer,
  onEvent: (kind: FuseReaderEvent, slot: number, length: number, code?: string, message?: string) => void,
): void {
  native.startFuseReader(fd, ring, slotSize, new Uint8Array(control), onEvent);
}

/** Blocking read of one whole request; throws with `.code` (ENODEV once the connection is gone). */
export function readRequest(fd: number, buf: Uint8Array): number {
  return native.readFd(fd, buf);
}

/** One reply or notification as a single writev(2): the kernel takes a message only whole, in one write. */
export function writeMessage(fd: number, parts: Uint8Array[]): void {
  // native.writeFd has no gather form; writev lets 1 MiB read replies go out without concatenating.
  // Empty parts are dropped: libuv turns a trailing one into a separate write(2), which /dev/fuse rejects.
  parts = nonEmpty(parts);
  const total = parts.reduce((n, p) => n + p.length, 0);
  const n = parts.length === 1 ? fs.writeSync(fd, parts[0]!) : fs.writevSync(fd, parts);
  if (n !== total) throw Object.assign(new Error(`short write to /dev/fuse: ${n} of ${total} bytes`), { code: 'EIO' });
}

/**
 * The same as writeMessage, but the copy into the kernel happens on a libuv pool thread: for large READ replies
 * that copy is most of the work, and it then runs beside the main thread. `parts` must stay unchanged until `done`.
 */
export function writeMessageAsync(fd: number, parts: Uint8Array[], done: (err: (Error & { code?: string }) | null) => void): void {
  parts = nonEmpty(parts);
  const total = parts.reduce((n, p) => n + p.length, 0);
  fs.writev(fd, parts, (err, n) => {
    if (err) done(err);
    else if (n !== total) done(Object.assign(new Error(`short write to /dev/fuse: ${n} of ${total} bytes`), { code: 'EIO' }));
    else done(null);
  });
}

function nonEmpty(parts: Uint8Array[]): Uint8Array[] {
  return parts.every((p) => p.length > 0) ? parts : parts.filter((p) => p.length > 0);
}

export function closeDevice(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // already closed by an earlier unmount path: nothing left to release
  }
}

export function mountFuse(source: string, target: string, fstype: string, flags: number, data: string): void {
  native.mount(source, target, fstype, flags, data);
}

export function umount(target: string, flags = 0): void {
  native.umount2(target, flags);
}

/**
 * Unprivileged mount through fusermount3 (test/nydusd/unprivileged runs nydusd as `nobody`). fusermount3 mounts,
 * then hands the /dev/fuse fd back over the socket named by _FUSE_COMMFD.
 */
export async function mountWithFusermount(target: string, options: string): Promise<number> {
  const [ours, theirs] = native.socketpair();
  try {
    const child = spawn('fusermount3', ['-o', options, '--', target], {
      stdio: ['ignore', 'ignore', 'pipe', theirs],
      env: { ...process.env, _FUSE_COMMFD: '3' },
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number>((resolve, reject) => {
      child.on('error', (e) => reject(new Error(`cannot run fusermount3: ${e.message}`, { cause: e })));
      child.on('close', (c) => resolve(c ?? -1));
    });
    if (code !== 0) throw new Error(`fusermount3 failed (exit ${code}): ${stderr.trim()}`);
    const { fds } = native.recvFds(ours, 64);
    if (fds.length === 0) throw new Error('fusermount3 exited without passing a /dev/fuse fd');
    for (const extra of fds.slice(1)) closeDevice(extra);
    return fds[0]!;
  } finally {
    closeDevice(ours);
    closeDevice(theirs);
  }
}

/** Unmounts a FUSE mount of ours without privileges (fusermount3 -u; -z detaches a busy one). */
export function unmountWithFusermount(target: string, lazy: boolean): void {
  const r = spawnSync('fusermount3', ['-u', ...(lazy ? ['-z'] : []), '--', target], { encoding: 'utf8' });
  if (r.error) throw new Error(`cannot run fusermount3: ${r.error.message}`, { cause: r.error });
  if (r.status !== 0) {
    const msg = (r.stderr ?? '').trim();
    // not mounted any more (someone else unmounted it): the connection closes on its own
    if (/not found in|not mounted|Invalid argument/.test(msg)) throw Object.assign(new Error(msg), { code: 'EINVAL' });
    throw new Error(`fusermount3 -u failed (exit ${r.status}): ${msg}`);
  }
}

/**
 * Whether /etc/fuse.conf lets users mount with allow_other (a `user_allow_other` line): without it fusermount3
 * refuses the whole mount when the option is asked for.
 */
export function usersMayAllowOther(conf = '/etc/fuse.conf'): boolean {
  try {
    return fs.readFileSync(conf, 'utf8').split('\n').some((l) => l.replace(/#.*/, '').trim() === 'user_allow_other');
  } catch {
    return false;
  }
}

/**
 * `major:minor` of the filesystem mounted at `mountpoint`, from /proc/self/mountinfo. Never stat(2) the mount
 * itself: from the thread that serves it, that waits for a reply only this thread could send.
 */
export function deviceNumbers(mountpoint: string): { major: number; minor: number } {
  const m = mountAt(mountpoint);
  if (!m) throw new Error(`${mountpoint} is not a mountpoint`);
  return { major: m.major, minor: m.minor };
}

/** The fusectl connection id of a FUSE mount (`major << 20 | minor`, the kernel's dev_t). */
export function connectionId(mountpoint: string): number {
  const { major, minor } = deviceNumbers(mountpoint);
  return major * 2 ** 20 + minor;
}

const FUSECTL = '/sys/fs/fuse/connections';

/**
 * Aborts a FUSE connection through fusectl: every waiting request fails with ENOTCONN and blocked processes wake.
 * The last resort for a connection whose server is stuck or gone (mounts fusectl if nobody did).
 */
export function abortConnection(mountpoint: string): void {
  const id = connectionId(mountpoint);
  if (!fs.existsSync(`${FUSECTL}/${id}`)) {
    try {
      native.mount('fusectl', FUSECTL, 'fusectl', 0, null);
    } catch (e) {
      if ((e as { code?: string }).code !== 'EBUSY') throw e;
    }
  }
  fs.writeFileSync(`${FUSECTL}/${id}/abort`, '1');
}
