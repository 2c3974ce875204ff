// Turns one raw kernel request into a filesystem call and its reply. Every request runs as its own async task, so
// a handler waiting on a backend never delays the others; interrupts abort the task's signal and answer EINTR.
import {
  decodeAccess,
  decodeBatchForget,
  decodeForget,
  decodeGetxattr,
  decodeInHeader,
  decodeInit,
  decodeInterrupt,
  decodeListxattr,
  decodeFlush,
  decodeLseek,
  decodeName,
  decodeOpen,
  decodeRead,
  decodeRelease,
  direntType,
  DirentWriter,
  encodeAttrOut,
  encodeEntryOut,
  encodeError,
  encodeInitOut,
  encodeLseekOut,
  encodeOpenOut,
  encodeOutHeader,
  encodeStatfsOut,
  encodeXattrSizeOut,
  MUTATING_OPS,
  Op,
  OpenFlag,
  opName,
  ProtocolError,
  type InHeader,
} from './protocol.js';
import { errno, errnoOf, type FileSystem, type LeasedData, type OpenResult, type RequestContext } from './filesystem.js';
import { InitError, initOut, negotiate, type NegotiateOptions, type Negotiated } from './negotiate.js';
import type { Log } from '../log.js';


export interface DispatcherHooks {
  /**
   * Sends one message to the kernel on `fd` (the fd the request was read from). `written`, when given, is
   * called exactly once when the parts are no longer needed, whether the write succeeded, failed or threw.
   */
  write(fd: number, parts: Uint8Array[], written?: () => void): void;
  /** INIT was answered. */
  onInit(n: Negotiated): void;
  onDestroy(): void;
  log: Log;
}

/** A request being handled, as GET /api/v1/metrics/inflight reports it (spec nydusd-runtime.md 3.5.8). */
export interface InflightRequest {
  nodeId: bigint;
  opcode: number;
  unique: bigint;
  /** Unix seconds when it was picked up */
  startedSecs: number;
}

/** Reply parts, with what to do once they are written (release leased read data). */
type Reply = Uint8Array[] & { written?: () => void };

interface InFlight {
  fd: number;
  nodeId: bigint;
  opcode: number;
  /** wall-clock time (Unix seconds) when the request was picked up */
  startedSecs: number;
  abort: AbortController | undefined;
  /** Set once a reply went out (an interrupt answers early; the handler's late answer is then dropped). */
  answered: boolean;
}

const EINTR = errno('EINTR');
const ENOSYS = errno('ENOSYS');
const EROFS = errno('EROFS');
const EIO = errno('EIO');
const EINVAL = errno('EINVAL');
const ERANGE = errno('ERANGE');
const EPROTO = errno('EPROTO');
const O_ACCMODE = 3;
/** Interrupts that arrive before their request is dispatched (two readers race); bounded, oldest dropped. */
const EARLY_INTERRUPTS_MAX = 1024;
/** An EIO cause logged once is only counted when it recurs within this time (ms). */
const EIO_REPEAT_MS = 10_000;

export class Dispatcher {
  negotiated: Negotiated | undefined;
  private readonly inflight = new Map<bigint, InFlight>();
  private readonly earlyInterrupts = new Set<bigint>();
  private drainWaiters: (() => void)[] = [];
  /** Requests per opcode name, for diagnostics and tests. */
  readonly opCounts = new Map<string, number>();
  maxReadSize = 0;
  /** Root-directory names answered ENOENT without the filesystem (stop() uses them to wake reader threads). */
  wakeNamePrefix: string | undefined;
  /** EIO causes logged recently: when, and how often they recurred since */
  private readonly eioLogged = new Map<string, { at: number; repeats: number }>();

  constructor(
    private readonly fs: FileSystem,
    private readonly opts: NegotiateOptions & { readOnly: boolean },
    private readonly hooks: DispatcherHooks,
  ) {}

  get inflightCount(): number {
    return this.inflight.size;
  }

  /** The requests being handled now (answered ones whose handler still runs are not listed). */
  inflightRequests(): InflightRequest[] {
    const out: InflightRequest[] = [];
    for (const [unique, t] of this.inflight) {
      if (!t.answered) out.push({ nodeId: t.nodeId, opcode: t.opcode, unique, startedSecs: t.startedSecs });
    }
    return out;
  }

  /** Resolves once no request is being handled. */
  drained(): Promise<void> {
    if (this.inflight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** The connection is gone: nobody will take the replies, so stop waiting for the handlers and abort them. */
  abandonAll(): void {
    for (const [unique, task] of [...this.inflight]) {
      this.finish(unique, task, null);
      task.abort?.abort();
    }
  }

  handle(fd: number, req: Buffer): void {
    let h: InHeader;
    try {
      h = decodeInHeader(req);
    } catch (e) {
      // without a valid header there is no unique to answer to; the kernel never sends this
      this.hooks.log('error', `dropping malformed FUSE request: ${(e as Error).message}`);
      return;
    }
    const name = opName(h.opcode);
    this.opCounts.set(name, (this.opCounts.get(name) ?? 0) + 1);

    switch (h.opcode) {
      case Op.FORGET:
        this.safe(() => this.fs.forget?.(h.nodeId, decodeForget(req)));
        return;
      case Op.BATCH_FORGET:
        this.safe(() => {
          for (const f of decodeBatchForget(req)) this.fs.forget?.(f.nodeId, f.nlookup);
        });
        return;
      case Op.INTERRUPT:
        this.safe(() => this.interrupt(decodeInterrupt(req)));
        return;
    }

    const task: InFlight = { fd, nodeId: h.nodeId, opcode: h.opcode, startedSecs: Math.floor(Date.now() / 1000), abort: undefined, answered: false };
    this.inflight.set(h.unique, task);
    if (this.earlyInterrupts.delete(h.unique)) {
      this.finish(h.unique, task, [encodeError(h.unique, EINTR)]);
      return;
    }
    const ctx: RequestContext = {
      uid: h.uid,
      gid: h.gid,
      pid: h.pid,
      unique: h.unique,
      // created on first use: an AbortController per request showed up in the profile, and few handlers look
      get signal(): AbortSignal {
        task.abort ??= new AbortController();
        if (task.answered && !task.abort.signal.aborted) task.abort.abort();
        return task.abort.signal;
      },
    };
    this.run(h, req, ctx).then(
      (parts) => this.finish(h.unique, task, parts),
      (e) => {
        let no = errnoOf(e);
        if (no === undefined) {
          no = EIO;
          this.hooks.log('error', `${name} on node ${h.nodeId} failed: ${(e as Error)?.stack ?? String(e)}`);
        } else if (no === EIO) {
          // the reader only sees EIO: its cause (damaged image, failing backend) has to be in the log
          this.logEio(`${name} on node ${h.nodeId}: EIO (${(e as Error).message})`);
        }
        this.finish(h.unique, task, [encodeError(h.unique, no)]);
      },
    );
  }

  /** Logs an EIO's cause; the same text again within EIO_REPEAT_MS is only counted, so a broken image cannot flood the log. */
  private logEio(text: string): void {
    const now = performance.now();
    const last = this.eioLogged.get(text);
    if (last !== undefined && now - last.at < EIO_REPEAT_MS) {
      last.repeats++;
      return;
    }
    if (this.eioLogged.size >= 1024) this.eioLogged.clear();
    const again = last && last.repeats > 0 ? ` (and ${last.repeats} times more since it was last logged)` : '';
    this.eioLogged.set(text, { at: now, repeats: 0 });
    this.hooks.log('warn', text + again);
  }

  private safe(f: () => void): void {
    try {
      f();
    } catch (e) {
      this.hooks.log('warn', `ignoring a bad no-reply request: ${(e as Error).message}`);
    }
  }

  private interrupt(unique: bigint): void {
    const task = this.inflight.get(unique);
    if (!task) {
      if (this.earlyInterrupts.size >= EARLY_INTERRUPTS_MAX) {
        this.earlyInterrupts.delete(this.earlyInterrupts.values().next().value!);
      }
      this.earlyInterrupts.add(unique);
      return;
    }
    if (task.answered) return;
    this.hooks.log('debug', `request ${unique} interrupted`);
    this.finish(unique, task, [encodeError(unique, EINTR)]);
    task.abort?.abort();
  }

  private finish(unique: bigint, task: InFlight, parts: Reply | null): void {
    if (task.answered) {
      // a late answer (the request was interrupted or abandoned meanwhile) is dropped: its data is free at once
      parts?.written?.();
    } else {
      task.answered = true;
      if (parts) {
        try {
          this.hooks.write(task.fd, parts, parts.written);
        } catch (e) {
          const code = (e as { code?: string }).code;
          // ENOENT: the kernel already gave up on this request (interrupted or aborted); ENODEV: connection gone,
          // which the reader threads report on their own
          if (code !== 'ENOENT' && code !== 'ENODEV') this.hooks.log('warn', `reply to request ${unique} failed: ${(e as Error).message}`);
        }
      }
    }
    if (this.inflight.get(unique) === task) this.inflight.delete(unique);
    if (this.inflight.size === 0 && this.drainWaiters.length > 0) {
      const w = this.drainWaiters;
      this.drainWaiters = [];
      for (const f of w) f();
    }
  }

  /** The reply parts (header first) for one request; null for none. Throws errno errors. */
  private async run(h: InHeader, req: Buffer, ctx: RequestContext): Promise<Reply | null> {
    const fs = this.fs;
    const u = h.unique;
    const ok = (payload?: Buffer): Uint8Array[] => (payload ? [encodeOutHeader(u, 0, payload.length), payload] : [encodeOutHeader(u, 0, 0)]);
    const err = (no: number): Uint8Array[] => [encodeError(u, no)];
    try {
      switch (h.opcode) {
        case Op.INIT: {
          const n = negotiate(decodeInit(req), this.opts);
          this.negotiated = n;
          const parts = ok(encodeInitOut(initOut(n)));
          // the reply must precede the filesystem's init hook's own traffic (e.g. notifications)
          this.hooks.write(this.inflight.get(u)!.fd, parts);
          this.inflight.get(u)!.answered = true;
          this.hooks.onInit(n);
          await fs.init?.({ protoMajor: n.protoMajor, protoMinor: n.protoMinor, flags: n.flags, maxWrite: n.maxWrite, maxReadahead: n.maxReadahead, maxPages: n.maxPages });
          return null;
        }
        case Op.DESTROY:
          await fs.destroy?.();
          this.hooks.onDestroy();
          return ok();
        case Op.LOOKUP: {
          const name = decodeName(req);
          if (this.wakeNamePrefix && h.nodeId === 1n && name.toString().startsWith(this.wakeNamePrefix)) return err(errno('ENOENT'));
          return ok(encodeEntryOut(await fs.lookup(h.nodeId, name, ctx)));
        }
        case Op.GETATTR: {
          const { attr, timeout } = await fs.getattr(h.nodeId, ctx);
          return ok(encodeAttrOut(attr, timeout));
        }
        case Op.READLINK: {
          if (!fs.readlink) return err(ENOSYS);
          const t = await fs.readlink(h.nodeId, ctx);
          return ok(typeof t === 'string' ? Buffer.from(t) : t);
        }
        case Op.OPEN: {
          if (!fs.open) return err(ENOSYS);
          const { flags } = decodeOpen(req);
          if (this.opts.readOnly && (flags & O_ACCMODE) !== 0) return err(EROFS);
          return ok(openOut(await fs.open(h.nodeId, flags, ctx)));
        }
        case Op.OPENDIR: {
          if (!fs.opendir) return err(ENOSYS);
          return ok(openOut(await fs.opendir(h.nodeId, decodeOpen(req).flags, ctx)));
        }
        case Op.READ: {
          const r = decodeRead(req);
          if (r.size > this.maxReadSize) this.maxReadSize = r.size;
          const data = await fs.read(h.nodeId, r.fh, r.offset, r.size, ctx);
          if (Buffer.isBuffer(data) || Array.isArray(data)) return readReply(u, data, r.size);
          return leasedReply(u, data, r.size);
        }
        case Op.READDIR:
        case Op.READDIRPLUS: {
          const plus = h.opcode === Op.READDIRPLUS;
          const r = decodeRead(req);
          const w = new DirentWriter(r.size, plus);
          if (fs.readdirInto) {
            await fs.readdirInto(h.nodeId, r.fh, r.offset, w, ctx);
            return ok(w.finish());
          }
          if (!fs.readdir) return err(ENOSYS);
          const entries = await fs.readdir(h.nodeId, r.fh, r.offset, plus, ctx);
          for (const e of entries) {
            const name = typeof e.name === 'string' ? Buffer.from(e.name) : e.name;
            const type = direntType(e.mode);
            if (plus) {
              // check room before the lookup: an entry that is not sent must not take a lookup reference
              if (!w.fits(name.length)) break;
              const dots = name.length <= 2 && (name.toString() === '.' || name.toString() === '..');
              const entry = e.entry ?? (dots ? undefined : await fs.lookup(h.nodeId, name, ctx));
              w.add(name, e.ino, e.offset, type, entry);
            } else if (!w.add(name, e.ino, e.offset, type)) {
              break;
            }
          }
          return ok(w.finish());
        }
        case Op.RELEASE:
          await fs.release?.(h.nodeId, decodeRelease(req).fh);
          return ok();
        case Op.RELEASEDIR:
          await fs.releasedir?.(h.nodeId, decodeRelease(req).fh);
          return ok();
        case Op.FLUSH:
          if (!fs.flush) return err(ENOSYS);
          await fs.flush(h.nodeId, decodeFlush(req).fh, ctx);
          return ok();
        case Op.STATFS:
          return ok(encodeStatfsOut(await fs.statfs(h.nodeId, ctx)));
        case Op.GETXATTR: {
          if (!fs.getxattr) return err(ENOSYS);
          const { size, name } = decodeGetxattr(req);
          return sized(await fs.getxattr(h.nodeId, name, ctx), size);
        }
        case Op.LISTXATTR: {
          if (!fs.listxattr) return err(ENOSYS);
          const { size } = decodeListxattr(req);
          const names = await fs.listxattr(h.nodeId, ctx);
          return sized(Buffer.concat(names.flatMap((n) => [typeof n === 'string' ? Buffer.from(n) : n, Buffer.alloc(1)])), size);
        }
        case Op.ACCESS:
          if (!fs.access) return err(ENOSYS);
          await fs.access(h.nodeId, decodeAccess(req).mask, ctx);
          return ok();
        case Op.LSEEK: {
          if (!fs.lseek) return err(ENOSYS);
          const s = decodeLseek(req);
          return ok(encodeLseekOut(await fs.lseek(h.nodeId, s.fh, s.offset, s.whence, ctx)));
        }
        default:
          return err(MUTATING_OPS.has(h.opcode) && this.opts.readOnly ? EROFS : ENOSYS);
      }
    } catch (e) {
      if (e instanceof ProtocolError) {
        this.hooks.log('warn', `${opName(h.opcode)}: bad request (${(e as Error).message})`);
        return err(h.opcode === Op.INIT ? EPROTO : EINVAL);
      }
      if (e instanceof InitError) {
        this.hooks.log('error', (e as Error).message);
        return err(EPROTO);
      }
      throw e;
    }

    function sized(value: Buffer, size: number): Uint8Array[] {
      if (size === 0) return ok(encodeXattrSizeOut(value.length));
      if (value.length > size) return err(ERANGE);
      return ok(value);
    }
  }
}

function openOut(r: OpenResult): Buffer {
  let flags = 0;
  if (r.keepCache) flags |= OpenFlag.KEEP_CACHE;
  if (r.directIo) flags |= OpenFlag.DIRECT_IO;
  if (r.cacheDir) flags |= OpenFlag.CACHE_DIR;
  return encodeOpenOut(r.fh ?? 0n, flags);
}

/** readReply for data the filesystem recycles: released once the reply is written, or at once if it cannot be built. */
function leasedReply(unique: bigint, data: LeasedData, size: number): Reply {
  let parts: Reply;
  try {
    parts = readReply(unique, data.data, size);
  } catch (e) {
    data.release();
    throw e;
  }
  parts.written = () => data.release();
  return parts;
}

/** Header plus the data buffers as they are (no copy); anything past `size` is cut off. */
function readReply(unique: bigint, data: Buffer | Buffer[], size: number): Uint8Array[] {
  const list = Array.isArray(data) ? data : [data];
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const d of list) {
    if (total >= size) break;
    const piece = d.length > size - total ? d.subarray(0, size - total) : d;
    if (piece.length === 0) continue;
    parts.push(piece);
    total += piece.length;
  }
  return [encodeOutHeader(unique, 0, total), ...parts];
}
