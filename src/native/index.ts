// Typed loader for the Rust Node-API addon in native/ (built by `npm run build:native`).
// @napi-rs/cli generates no JS/typings without napi-derive, so both live here by hand.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A failed syscall, shaped like Node's own errors: `code` is the errno name (`ENOENT`, `EPERM`, ...),
 * `errno` the negated errno number (as Node reports it, e.g. -2 for ENOENT), `syscall` the call, and
 * `path` the path argument where there is one.
 */
export interface NativeSysError extends Error {
  code: string;
  errno: number;
  syscall: string;
  path?: string;
}

/** What a FUSE reader thread reports (NativeAddon.startFuseReader). */
export const enum FuseReaderEvent {
  REQUEST = 0,
  CLOSED = 1,
  STOPPED = 2,
  ERROR = 3,
  EXITED = 4,
}

export interface NativeAddon {
  /** Decodes one lz4 block into `dst`; returns the bytes written. Throws on corrupt input or when it does not fit. */
  lz4DecompressInto(src: Uint8Array, dst: Uint8Array): number;
  /** One lz4 block (no size prefix). */
  lz4Compress(src: Uint8Array): Buffer;
  /** Decodes zstd frame(s) into `dst` with a per-thread context; returns the bytes written. */
  zstdDecompressInto(src: Uint8Array, dst: Uint8Array): number;
  /**
   * Decodes an lz4 block (algo 1) or zstd frame (algo 3) into `dst` on the libuv thread pool; resolves to
   * the bytes written. `src` and `dst` must stay untouched until it settles.
   */
  decompressAsync(algo: number, src: Uint8Array, dst: Uint8Array): Promise<number>;
  /**
   * pwritev(2) of all of `buffers`, one after another, from `offset`, on the libuv pool (short writes are
   * continued); resolves to the bytes written. Through an O_DIRECT fd every Buffer must be 4 KiB-aligned in
   * address and length, as alignedBuffer's are. Rejects with an Error whose `code` is the errno name. The fd
   * must stay open and the Buffers untouched until it settles. `background` submits the writes with the idle
   * I/O priority (direct I/O only: buffered writes reach the disk later, from the kernel's flusher).
   */
  pwritevAsync(fd: number, buffers: Uint8Array[], offset: number, background?: boolean): Promise<number>;
  /**
   * A Buffer of `size` rounded up to 4 KiB, at a 4 KiB-aligned address. The bytes past `size` are zero; the
   * first `size` are unspecified.
   */
  alignedBuffer(size: number): Buffer;
  /**
   * Gives the whole 4 KiB pages inside `buf` back to the kernel (madvise MADV_DONTNEED): they read as zeros afterwards
   * and take memory again only when written. Returns the bytes given back.
   */
  discardPages(buf: Uint8Array): number;
  /** malloc_trim(0): the free memory of every malloc arena goes back to the kernel; 1 if any did, else 0. */
  trimMalloc(): number;
  /** One standard zstd frame; `level` defaults to 3. */
  zstdCompress(src: Uint8Array, level?: number): Buffer;
  /** 32-byte BLAKE3 hash. */
  blake3(data: Uint8Array): Buffer;
  /** CRC32C (Castagnoli), as an unsigned 32-bit number. */
  crc32c(data: Uint8Array): number;
  /** mount(2). `source`, `fstype` and `data` may be null. Throws NativeSysError. */
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void;
  /** umount2(2). Throws NativeSysError (EINVAL for a non-mountpoint). */
  umount2(target: string, flags: number): void;
  /** Opens /dev/fuse and clones the session `sessionFd` onto it (FUSE_DEV_IOC_CLONE); returns the new fd. */
  openFuseClone(sessionFd: number): number;
  /** Blocking read(2) into `buf` (retried on EINTR); returns the bytes read, 0 at EOF. */
  readFd(fd: number, buf: Uint8Array): number;
  /**
   * Starts a FUSE reader: an OS thread that blocks in read(2) on `fd` and reads each request into a free slot of
   * `ring` (a whole number of `slotSize`-byte slots). `onEvent` runs on this thread, in the order the reader sent:
   * requests (`kind` REQUEST, with the slot and length: copy `ring[slot * slotSize ..][..length]` before returning,
   * the slot is read into again afterwards), then one of CLOSED (ENODEV or EOF), STOPPED (element 0 of the Int32
   * memory `control` was 1 after a request) or ERROR (`code`, `message` of the failed read), then EXITED, after
   * which the thread uses neither `fd` nor `ring`. ENOENT and EINTR are read again; EAGAIN (an fd with O_NONBLOCK)
   * is polled.
   */
  startFuseReader(fd: number, ring: Uint8Array, slotSize: number, control: Uint8Array, onEvent: (kind: FuseReaderEvent, slot: number, length: number, code?: string, message?: string) => void): void;
  /** One write(2) of `buf` (retried on EINTR); returns the bytes written. */
  writeFd(fd: number, buf: Uint8Array): number;
  /** sendmsg(2) of `data` with `fds` as SCM_RIGHTS (at most 253; `data` must not be empty then); returns bytes sent. */
  sendFds(socketFd: number, data: Uint8Array, fds: number[]): number;
  /** recvmsg(2) of up to `maxData` bytes plus any passed fds (received close-on-exec). Empty data and no fds = EOF. */
  recvFds(socketFd: number, maxData: number): { data: Buffer; fds: number[] };
  /** _exit(2): leaves at once, without joining the libuv pool (see nydusd's shutdown). Never returns. */
  exit(status: number): never;
  /** A connected AF_UNIX SOCK_STREAM pair, close-on-exec. */
  socketpair(): [number, number];
}

export const ADDON_FILE = 'nydus-native.linux-x64-gnu.node';

function findProjectRoot(start: string): string {
  let dir = start;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`nydus-native: no package.json above ${start}`);
    dir = up;
  }
  return dir;
}

/** Where the addon is expected; NYDUS_NATIVE_ADDON overrides it (for tests of a different build). */
export function addonPath(): string {
  const override = process.env.NYDUS_NATIVE_ADDON;
  if (override) return override;
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.join(findProjectRoot(here), 'native', ADDON_FILE);
}

function load(): { addon?: NativeAddon; error?: Error } {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return { error: new Error(`nydus-native: only linux-x64 is supported, not ${process.platform}-${process.arch}`) };
  }
  let file: string;
  try {
    file = addonPath();
  } catch (e) {
    return { error: e as Error };
  }
  if (!existsSync(file)) {
    return { error: new Error(`nydus-native: ${file} is missing; run \`npm run build:native\` (or scripts/setup.sh)`) };
  }
  try {
    return { addon: createRequire(import.meta.url)(file) as NativeAddon };
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    return {
      error: new Error(`nydus-native: cannot load ${file}: ${msg}; rebuild it with \`npm run build:native\``, { cause: e }),
    };
  }
}

const loaded = load();

/** Why the addon could not be loaded, or undefined when it is loaded. */
export const nativeLoadError: Error | undefined = loaded.error;

function unavailable(): NativeAddon {
  const fail = (): never => {
    throw loaded.error;
  };
  // Importing must not fail (gzip/sha256/none work without the addon); each native call throws instead.
  return new Proxy({} as NativeAddon, { get: () => fail });
}

export const native: NativeAddon = loaded.addon ?? unavailable();
