// FUSE INIT: what we ask for and how it combines with what the kernel offers. The result is also the part of the
// session state a successor needs, since the kernel never sends INIT twice on one connection.
import {
  FUSE_KERNEL_VERSION,
  FUSE_MAX_MINOR,
  FUSE_MIN_MINOR,
  InitFlag,
  initFlagNames,
  type InitIn,
  type InitOut,
} from './protocol.js';

export interface NegotiateOptions {
  /** Largest WRITE the kernel may send (also sizes the read buffer). Default 1 MiB like the reference. */
  maxWrite?: number;
  /** Upper bound on the kernel's readahead window in bytes; default: whatever the kernel offers. */
  maxReadahead?: number;
  /** READDIRPLUS: 'auto' lets the kernel choose per listing (the reference's setting). */
  readdirplus?: 'auto' | 'always' | 'never';
  /** Asynchronous requests (readahead) the kernel keeps in flight. */
  maxBackground?: number;
}

export interface Negotiated {
  protoMajor: number;
  protoMinor: number;
  /** Granted INIT flags (intersection of offered and wanted). */
  flags: number;
  /** What the kernel offered, kept for the record. */
  kernelFlags: number;
  kernelMinor: number;
  maxWrite: number;
  maxReadahead: number;
  maxPages: number;
  maxBackground: number;
  congestionThreshold: number;
  timeGran: number;
}

const PAGE_SIZE = 4096;
/** The kernel's default cap on pages per request (fs.fuse.max_pages_limit): 1 MiB requests. */
const MAX_PAGES = 256;

export const DEFAULT_MAX_WRITE = 1 << 20;

export class InitError extends Error {}

export function negotiate(init: InitIn, opts: NegotiateOptions = {}): Negotiated {
  if (init.major !== FUSE_KERNEL_VERSION) {
    throw new InitError(`kernel speaks FUSE ${init.major}.${init.minor}; only major version ${FUSE_KERNEL_VERSION} is supported`);
  }
  if (init.minor < FUSE_MIN_MINOR) {
    throw new InitError(`kernel FUSE protocol 7.${init.minor} is older than the minimum 7.${FUSE_MIN_MINOR}`);
  }
  const rdp = opts.readdirplus ?? 'auto';
  let wanted =
    InitFlag.ASYNC_READ |
    InitFlag.PARALLEL_DIROPS |
    InitFlag.BIG_WRITES |
    InitFlag.ASYNC_DIO |
    InitFlag.AUTO_INVAL_DATA |
    InitFlag.ATOMIC_O_TRUNC |
    InitFlag.MAX_PAGES |
    InitFlag.CACHE_SYMLINKS |
    // only tells the kernel an ENOSYS answer to OPEN/OPENDIR is understood; a filesystem opts in by not implementing them
    InitFlag.NO_OPEN_SUPPORT |
    InitFlag.NO_OPENDIR_SUPPORT;
  if (rdp !== 'never') wanted |= InitFlag.DO_READDIRPLUS;
  if (rdp === 'auto') wanted |= InitFlag.READDIRPLUS_AUTO;
  const flags = (init.flags & wanted) >>> 0;

  const maxPages = flags & InitFlag.MAX_PAGES ? MAX_PAGES : 32;
  const maxWrite = Math.min(opts.maxWrite ?? DEFAULT_MAX_WRITE, maxPages * PAGE_SIZE);
  const maxBackground = Math.min(opts.maxBackground ?? 64, 0xffff);
  return {
    protoMajor: FUSE_KERNEL_VERSION,
    protoMinor: Math.min(init.minor, FUSE_MAX_MINOR),
    flags,
    kernelFlags: init.flags >>> 0,
    kernelMinor: init.minor,
    maxWrite,
    maxReadahead: Math.min(init.maxReadahead, opts.maxReadahead ?? init.maxReadahead),
    maxPages,
    maxBackground,
    congestionThreshold: Math.floor((maxBackground * 3) / 4),
    timeGran: 1,
  };
}

export function initOut(n: Negotiated): InitOut {
  return {
    major: n.protoMajor,
    minor: n.protoMinor,
    maxReadahead: n.maxReadahead,
    flags: n.flags,
    maxBackground: n.maxBackground,
    congestionThreshold: n.congestionThreshold,
    maxWrite: n.maxWrite,
    timeGran: n.timeGran,
    maxPages: n.maxPages,
  };
}

/** Human-readable summary for logs and reports. */
export function describeNegotiated(n: Negotiated): string {
  return `FUSE 7.${n.protoMinor} (kernel 7.${n.kernelMinor}) max_write=${n.maxWrite} max_pages=${n.maxPages} ` +
    `max_readahead=${n.maxReadahead} flags=${initFlagNames(n.flags).join('|')}`;
}

/** The read buffer must hold the largest request: a WRITE of max_write plus its headers. */
export function requestBufferSize(n: { maxWrite: number }): number {
  return Math.max(8192, n.maxWrite + PAGE_SIZE);
}
