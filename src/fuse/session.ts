// A FUSE session: the kernel mount, the reader threads, INIT, the request loop, stop/resume and unmount.
//
// Where the filesystem runs. Measured with bench/fuse-layout/session.ts on the 2-vCPU project machine while four
// other engineers' builds kept the load average at 7-9, so only the interleaved comparison means much: fresh mount per
// run, in-memory filesystem, dd bs=1M of a 1 GiB file (cold), then python os.stat of 50,000 distinct files; medians
// of 3-5 runs.
//
//   layout                                           read, 128 KiB requests   read, 1 MiB requests   stat (cold)
//   A. 2 reader threads, filesystem on main thread    504-628 MB/s             876 MB/s              122-177 us
//   B. the filesystem inside each of 2 threads        667-733 MB/s             855 MB/s               74-125 us
//   A before moving big reply writes off the main thread: 409 MB/s vs B 842 MB/s (profile: writev of the data was
//   0.62 s of the main thread's 1.2 s per GiB; now replies >= 64 KiB are written from the libuv pool).
//
// Choice: A. B is faster per request (one thread wake-up less per request) but it cannot serve an async filesystem:
// a reader thread blocks in read(2), so a handler waiting on a backend fetch or a timer in that thread stalls until
// the next request happens to arrive, and the filesystem's state (bootstraps, blob caches, chunk maps) would have to
// be rebuilt or shared in every thread. A keeps one filesystem instance with ordinary async code, serves requests
// concurrently, and with 1 MiB requests (readAheadKb: 1024) its read throughput equals B's.
//
// Reader threads block in read(2) on /dev/fuse (each on its own cloned fd where FUSE_DEV_IOC_CLONE works) and pass
// every request to the main thread; the main thread runs the filesystem and writes each reply with one writev(2) to
// the fd the request came from (from the libuv pool for replies of 64 KiB or more). The readers are native OS threads
// (native/src/reader.rs), not Node workers: a worker carried a V8 isolate of its own, about 9.5 MiB resident each,
// only to sit in that read (BENCHMARKS.md run AA).
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import {
  closeDevice,
  cloneDevice,
  deviceNumbers,
  FuseReaderEvent,
  mountFuse,
  mountWithFusermount,
  MNT_DETACH,
  MS_NOATIME,
  MS_NODEV,
  MS_NOSUID,
  MS_RDONLY,
  openDevice,
  startReader,
  umount,
  unmountWithFusermount,
  usersMayAllowOther,
  writeMessage,
  writeMessageAsync,
} from './device.js';
import { Dispatcher, type InflightRequest } from './dispatcher.js';
import type { Log } from '../log.js';
import type { FileSystem } from './filesystem.js';
import { DEFAULT_MAX_WRITE, describeNegotiated, requestBufferSize, type NegotiateOptions, type Negotiated } from './negotiate.js';
import { encodeNotifyInvalEntry, encodeNotifyInvalInode, encodeNotifyResend } from './protocol.js';

export interface SessionOptions extends NegotiateOptions {
  /** Reader threads (default 2: one per core of the project machine). */
  readers?: number;
  /** Give each reader its own cloned /dev/fuse fd (default true). */
  cloneFd?: boolean;
  /** Refuse writes with EROFS (default true; also mounts MS_RDONLY). */
  readOnly?: boolean;
  /**
   * Write large replies (READ data) from the libuv pool (default true). Worth it when the main thread is the
   * busy part (an in-memory filesystem); a filesystem whose work is already on the pool is better off writing
   * at once, since a pool hop per reply then costs more than the copy it moves.
   */
  poolReplies?: boolean;
  log?: Log;
}

export interface MountOptions extends SessionOptions {
  mountpoint: string;
  /** mount(2) source; shows in /proc/mounts (default "rafs", like nydusd). */
  source?: string;
  /** Default "fuse" (no subtype, like nydusd). */
  fstype?: string;
  allowOther?: boolean;
  defaultPermissions?: boolean;
  /** Largest read the kernel sends; default 256 pages + 4096 as nydusd passes. */
  maxRead?: number;
  /** Raise the mount's bdi read_ahead_kb (128 by default) so sequential reads arrive as larger requests. */
  readAheadKb?: number;
  /** How long to wait for the kernel's INIT after mounting (ms). */
  initTimeoutMs?: number;
}

/** What a successor needs to serve the same connection without INIT. Plain JSON. */
export interface SessionState extends Negotiated {
  version: 1;
  mountpoint: string;
  /** The filesystem's own record (FileSystem.saveState). */
  fs?: unknown;
}

const defaultLog: Log = (level, msg) => {
  if (level === 'warn' || level === 'error') process.stderr.write(`fuse ${level}: ${msg}\n`);
};

interface Reader {
  fd: number;
  ownFd: boolean;
  running: boolean;
  /** resolves when the thread has ended (it uses neither its fd nor its ring any more) */
  exited: Promise<void>;
}

/**
 * Request slots per reader thread. A slot is busy from the thread's read until the main thread has copied the request
 * out (at once, in the event callback), so this bounds how far a thread reads ahead of a busy main thread; the
 * kernel queues the rest. Untouched slot memory is never resident (only a request's own pages are written).
 */
const READER_SLOTS = 8;

let wakeCounter = 0;
/**
 * Replies at least this large (READ data) are written from the libuv pool: the kernel's copy of 128 KiB-1 MiB
 * then runs on the other core instead of the main thread (measured: 1 GiB of writev took 0.62 s of main-thread
 * time, the largest item of its profile). Smaller replies are written at once, which is cheaper than a pool hop.
 */
const ASYNC_REPLY_MIN = 64 * 1024;

export declare interface Session {
  on(event: 'closed', listener: () => void): this;
  on(event: 'error', listener: (e: Error) => void): this;
  once(event: 'closed', listener: () => void): this;
}

export class Session extends EventEmitter {
  private readers: Reader[] = [];
  private readonly dispatcher: Dispatcher;
  private readonly control = new SharedArrayBuffer(4);
  private readonly log: Log;
  private initWaiter: { resolve: (n: Negotiated) => void } | undefined;
  private closed = false;
  private stopping = false;
  private readonly readOnly: boolean;
  private pendingWrites = 0;
  private writeWaiters: (() => void)[] = [];

  private constructor(
    /** The session's /dev/fuse fd (the one passed to mount, or the inherited one). */
    readonly fd: number,
    readonly mountpoint: string,
    private readonly fs: FileSystem,
    private readonly opts: SessionOptions,
  ) {
    super();
    this.log = opts.log ?? defaultLog;
    this.readOnly = opts.readOnly ?? true;
    this.dispatcher = new Dispatcher(fs, { ...opts, readOnly: this.readOnly }, {
      write: (fd, parts, written) => this.writeReply(fd, parts, written),
      onInit: (n) => {
        this.log('info', `negotiated ${describeNegotiated(n)}`);
        this.initWaiter?.resolve(n);
      },
      onDestroy: () => this.log('debug', 'kernel sent DESTROY'),
      log: this.log,
    });
  }

  /** `written` is called once the parts are no longer needed, also when the write fails or throws. */
  private writeReply(fd: number, parts: Uint8Array[], written?: () => void): void {
    let total = 0;
    for (const p of parts) total += p.length;
    if (total < ASYNC_REPLY_MIN || this.opts.poolReplies === false) {
      try {
        writeMessage(fd, parts);
      } finally {
        written?.();
      }
      return;
    }
    this.pendingWrites++;
    writeMessageAsync(fd, parts, (err) => {
      written?.();
      // ENOENT: the kernel gave up on the request (interrupted); ENODEV: the connection is gone (readers report it)
      if (err && err.code !== 'ENOENT' && err.code !== 'ENODEV') this.log('warn', `reply write failed: ${err.message}`);
      if (--this.pendingWrites === 0) {
        const w = this.writeWaiters;
        this.writeWaiters = [];
        for (const f of w) f();
      }
    });
  }

  /** Requests answered and their replies written: only then may an fd be closed or handed on. */
  private async quiesce(): Promise<void> {
    await this.dispatcher.drained();
    if (this.pendingWrites > 0) await new Promise<void>((r) => this.writeWaiters.push(r));
  }

  /** Mounts a new FUSE filesystem at `opts.mountpoint`, serves it and resolves once INIT is answered. */
  static async mount(filesystem: FileSystem, opts: MountOptions): Promise<Session> {
    const target = fs.realpathSync(opts.mountpoint);
    const rootMode = fs.statSync(target).mode & 0o170000;
    const ro = opts.readOnly ?? true;
    const options = [
      `rootmode=${rootMode.toString(8)}`,
      `user_id=${process.getuid?.() ?? 0}`,
      `group_id=${process.getgid?.() ?? 0}`,
      `max_read=${opts.maxRead ?? 256 * 4096 + 4096}`,
      ...(opts.defaultPermissions ?? true ? ['default_permissions'] : []),
      ...(opts.allowOther ?? true ? ['allow_other'] : []),
    ];
    let fd: number | undefined;
    if (process.getuid?.() === 0) {
      fd = openDevice();
      try {
        const flags = MS_NOSUID | MS_NODEV | MS_NOATIME | (ro ? MS_RDONLY : 0);
        mountFuse(opts.source ?? 'rafs', target, opts.fstype ?? 'fuse', flags, [`fd=${fd}`, ...options].join(','));
      } catch (e) {
        closeDevice(fd);
        fd = undefined;
        // like nydusd: EPERM (e.g. a user namespace) falls back to fusermount3
        if ((e as { code?: string }).code !== 'EPERM') throw new Error(`cannot mount FUSE at ${target}: ${(e as Error).message}`, { cause: e });
      }
    }
    if (fd === undefined) {
      let fmOptions = options.filter((o) => !o.startsWith('rootmode') && !o.startsWith('user_id') && !o.startsWith('group_id'));
      if (fmOptions.includes('allow_other') && !usersMayAllowOther()) {
        // fusermount3 would refuse the whole mount; a mount only its owner can read beats none
        (opts.log ?? defaultLog)('warn', `mounting ${target} without allow_other: /etc/fuse.conf has no user_allow_other, so only uid ${process.getuid?.()} can read it`);
        fmOptions = fmOptions.filter((o) => o !== 'allow_other');
      }
      const fmOpts = ['nosuid', 'nodev', 'noatime', ...(ro ? ['ro'] : []), `fsname=${opts.source ?? 'rafs'}`, ...fmOptions];
      fd = await mountWithFusermount(target, fmOpts.join(','));
    }

    const s = new Session(fd, target, filesystem, opts);
    const init = new Promise<Negotiated>((resolve) => (s.initWaiter = { resolve }));
    s.start();
    const timeoutMs = opts.initTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    const closedEarly = new Promise<never>((_, reject) => s.once('closed', () => reject(new Error(`FUSE connection at ${target} closed before INIT`))));
    closedEarly.catch(() => undefined); // it also fires at the normal end of the session, when nobody waits
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no FUSE INIT from the kernel within ${timeoutMs} ms at ${target}`)), timeoutMs);
    });
    try {
      await Promise.race([init, closedEarly, timeout]);
    } catch (e) {
      await s.unmount({ lazy: true }).catch(() => undefined);
      throw e;
    } finally {
      clearTimeout(timer);
    }
    if (opts.readAheadKb !== undefined) s.setReadAhead(opts.readAheadKb);
    return s;
  }

  /**
   * Serves an existing connection (an fd inherited from a predecessor or a supervisor) without INIT, using the
   * parameters the predecessor negotiated. The session takes ownership of `fd`.
   */
  static async resume(fd: number, state: SessionState, filesystem: FileSystem, opts: SessionOptions = {}): Promise<Session> {
    if (state?.version !== 1) throw new Error(`unsupported FUSE session state version ${String(state?.version)}`);
    for (const k of ['protoMinor', 'flags', 'maxWrite', 'maxPages'] as const) {
      if (typeof state[k] !== 'number') throw new Error(`FUSE session state lacks ${k}`);
    }
    const s = new Session(fd, state.mountpoint, filesystem, opts);
    const { version: _v, mountpoint: _m, fs: _fs, ...n } = state;
    s.dispatcher.negotiated = n;
    s.start();
    return s;
  }

  /** Negotiated parameters, once INIT was answered (or restored by resume). */
  get negotiated(): Negotiated | undefined {
    return this.dispatcher.negotiated;
  }

  get opCounts(): ReadonlyMap<string, number> {
    return this.dispatcher.opCounts;
  }

  /** The requests being handled now (GET /api/v1/metrics/inflight). */
  inflight(): InflightRequest[] {
    return this.dispatcher.inflightRequests();
  }

  get maxReadSize(): number {
    return this.dispatcher.maxReadSize;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  state(): SessionState {
    const n = this.dispatcher.negotiated;
    if (!n) throw new Error('FUSE session has not been initialised yet (no INIT answered)');
    return { version: 1, mountpoint: this.mountpoint, ...n, fs: this.fs.saveState?.() };
  }

  private start(): void {
    const count = Math.max(1, this.opts.readers ?? 2);
    const slotSize = requestBufferSize({ maxWrite: Math.max(this.dispatcher.negotiated?.maxWrite ?? 0, DEFAULT_MAX_WRITE) });
    Atomics.store(new Int32Array(this.control), 0, 0);
    for (let i = 0; i < count; i++) {
      let fd = this.fd;
      let ownFd = false;
      if (i > 0 && (this.opts.cloneFd ?? true)) {
        try {
          fd = cloneDevice(this.fd);
          ownFd = true;
        } catch (e) {
          this.log('warn', `FUSE_DEV_IOC_CLONE failed, readers share one fd: ${(e as Error).message}`);
        }
      }
      const ring = Buffer.alloc(READER_SLOTS * slotSize);
      let exit!: () => void;
      const reader: Reader = { fd, ownFd, running: true, exited: new Promise<void>((res) => (exit = res)) };
      this.readers.push(reader);
      startReader(fd, ring, slotSize, this.control, (kind, slot, length, code, message) => {
        switch (kind) {
          case FuseReaderEvent.REQUEST: {
            // a copy of its own (from Buffer's pool for the usual small requests): the slot is read into again next
            const req = Buffer.allocUnsafe(length);
            ring.copy(req, 0, slot * slotSize, slot * slotSize + length);
            this.dispatcher.handle(fd, req);
            break;
          }
          case FuseReaderEvent.CLOSED:
            this.log('debug', 'FUSE connection closed (ENODEV)');
            break;
          case FuseReaderEvent.STOPPED:
            break;
          case FuseReaderEvent.ERROR:
            this.log('error', `FUSE device read failed: ${message}`);
            if (this.listenerCount('error') > 0) this.emit('error', Object.assign(new Error(`FUSE device read failed: ${message}`), { code }));
            break;
          case FuseReaderEvent.EXITED:
            exit();
            this.onReaderExit(reader);
            break;
        }
      });
    }
  }

  private onReaderExit(r: Reader): void {
    r.running = false;
    if (this.readers.some((x) => x.running)) return;
    if (this.stopping) return; // stop() collects the readers itself
    this.dispatcher.abandonAll();
    void this.quiesce().then(() => this.finishClosed());
  }

  private finishClosed(): void {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.readers) if (r.ownFd) closeDevice(r.fd);
    this.readers = [];
    closeDevice(this.fd);
    Promise.resolve(this.fs.destroy?.())
      .catch((e) => this.log('warn', `filesystem destroy failed: ${(e as Error).message}`))
      .finally(() => this.emit('closed'));
  }

  /**
   * Stops serving without unmounting: readers finish, requests in progress are answered, the session fd stays open
   * (pass it to a successor, which calls Session.resume). Requests arriving meanwhile wait in the kernel.
   */
  async stop(): Promise<void> {
    if (this.closed || this.readers.length === 0) return;
    this.stopping = true;
    Atomics.store(new Int32Array(this.control), 0, 1);
    // readers sit in a blocking read(2) that nothing can cancel; each exits after its next request, so send
    // requests that only this session answers (ENOENT lookups of unique names) until all have gone
    const prefix = `.nydus-ts-wake-${process.pid}-`;
    this.dispatcher.wakeNamePrefix = prefix;
    const exited = Promise.all(this.readers.map((r) => r.exited));
    while (this.readers.some((r) => r.running)) {
      const wake = fs.promises.stat(path.join(this.mountpoint, `${prefix}${wakeCounter++}`)).then(
        () => undefined,
        async (e: { code?: string; message?: string }) => {
          // ENOENT is our own answer; anything else (mountpoint not reachable from here) must not become a busy loop
          if (e.code !== 'ENOENT') {
            this.log('warn', `cannot wake FUSE readers through ${this.mountpoint}: ${e.message}; waiting for requests`);
            await new Promise((r) => setTimeout(r, 200));
          }
        },
      );
      await Promise.race([wake, exited]);
    }
    await exited;
    await this.quiesce();
    this.dispatcher.wakeNamePrefix = undefined;
    for (const r of this.readers) if (r.ownFd) closeDevice(r.fd);
    this.readers = [];
    this.stopping = false;
  }

  /**
   * Unmounts (umount2, lazily if asked), waits for the connection to close and releases the fds. After stop()
   * there are no readers, so the fd is closed directly.
   */
  async unmount(opts: { lazy?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    const closed = new Promise<void>((res) => this.once('closed', res));
    try {
      if (process.getuid?.() === 0) umount(this.mountpoint, opts.lazy ? MNT_DETACH : 0);
      else unmountWithFusermount(this.mountpoint, opts.lazy ?? false);
    } catch (e) {
      const code = (e as { code?: string }).code;
      // EINVAL: not mounted any more (someone else unmounted it); the connection closes on its own
      if (code !== 'EINVAL' && code !== 'ENOENT') throw new Error(`cannot unmount ${this.mountpoint}: ${(e as Error).message}`, { cause: e });
    }
    if (this.readers.length === 0) this.finishClosed();
    await closed;
  }

  /**
   * Notifications go out from the libuv pool, never from the main thread: the kernel may hold them until a
   * directory lock is free, and the request holding that lock can only be answered by the main thread.
   */
  private notify(msg: Buffer): Promise<void> {
    if (this.closed) return Promise.reject(new Error('FUSE session is closed'));
    return new Promise((resolve, reject) =>
      writeMessageAsync(this.fd, [msg], (err) => (err ? reject(Object.assign(new Error(`FUSE notification failed: ${err.message}`), { code: err.code })) : resolve())),
    );
  }

  /** Drops the kernel's cached data of a node (offset/length in bytes, length 0 = to the end; offset -1 = attributes only). */
  notifyInvalInode(nodeId: bigint, offset = 0n, length = 0n): Promise<void> {
    return this.notify(encodeNotifyInvalInode(nodeId, offset, length));
  }

  /** Drops the kernel's dentry for `name` under `parent`. ENOENT when the kernel has no such dentry cached. */
  notifyInvalEntry(parent: bigint, name: Buffer | string): Promise<void> {
    return this.notify(encodeNotifyInvalEntry(parent, name));
  }

  /** Asks the kernel to requeue requests a dead predecessor had read (FUSE 7.40, Linux >= 6.9). */
  notifyResend(): Promise<void> {
    return this.notify(encodeNotifyResend());
  }

  /** Sets the mount's readahead window (read_ahead_kb of its bdi); larger windows give larger READ requests. */
  setReadAhead(kb: number): void {
    const { major, minor } = deviceNumbers(this.mountpoint);
    try {
      fs.writeFileSync(`/sys/class/bdi/${major}:${minor}/read_ahead_kb`, String(kb));
    } catch (e) {
      this.log('warn', `cannot set read_ahead_kb of ${this.mountpoint}: ${(e as Error).message}`);
    }
  }
}
