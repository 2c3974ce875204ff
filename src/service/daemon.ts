// The FUSE daemon's life: load the image, mount, serve, and unmount on SIGTERM/SIGINT. It stays in the
// foreground as the spawned pid (the snapshotter waits on it and reads /proc/<pid>/stat).
import { abortConnection, MNT_DETACH, umount } from '../fuse/device.js';
import { Session } from '../fuse/session.js';
import { native } from '../native/index.js';
import type { DaemonArgs } from './args.js';
import type { ConfigV2 } from '../config/model.js';
import { localfsDirConfig, parseConfig } from '../config/parse.js';
import type { Logger } from './logger.js';
import { checkMountpoint } from './mountpoint.js';
import { checkInputDirectory, readInputFile } from '../input-file.js';
import type { RafsInstance } from './rafs-instance.js';
import { InstancePathError, Vfs } from './vfs.js';
import { DaemonStateMachine } from './state-machine.js';
import { reclaimMemory } from './memory.js';
import { ErrorEvents } from './events.js';
import type { FileSystem } from '../fuse/filesystem.js';

/** One filesystem instance attached in the FUSE mount, as the API reports it (spec nydusd-runtime.md 3.5.1). */
export interface MountedInstance {
  /** the path inside the FUSE mount: `/` for the instance of the command line */
  mountpoint: string;
  /** wall-clock time of the mount, nanoseconds since the epoch */
  mountedAtNs: bigint;
  bootstrapPath: string;
  instance: RafsInstance;
}

/** The largest configuration file read (a real one is a few KiB). */
const MAX_CONFIG_BYTES = 4 << 20;
/** The largest --prefetch-files list read (one path a line; 16 MiB is some 100,000 long paths). */
const MAX_PREFETCH_LIST_BYTES = 16 << 20;

/** Reads the --prefetch-files list: one absolute path per line, blanks ignored. */
export function readPrefetchList(file: string): string[] {
  const text = readInputFile(file, 'prefetch file list', MAX_PREFETCH_LIST_BYTES).toString('utf8');
  const paths = text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  const bad = paths.find((p) => !p.startsWith('/'));
  if (bad) throw new Error(`invalid prefetch file list: "${bad}" is not an absolute path`);
  return paths;
}

function loadConfig(args: DaemonArgs, log: Logger): ConfigV2 {
  if (args.localfsDir) {
    checkInputDirectory(args.localfsDir, 'localfs directory');
    return localfsDirConfig(args.localfsDir);
  }
  if (!args.config) throw new Error('both --config and --localfs-dir are missing');
  const text = readInputFile(args.config, 'configuration file', MAX_CONFIG_BYTES).toString('utf8');
  return parseConfig(text, (m) => log.warn(`configuration ${args.config}: ${m}`));
}

/** Wall-clock time in nanoseconds (sub-millisecond digits from the monotonic clock). */
function nowNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
}

/**
 * What the layers above the daemon core (metrics) attach to it; each hook is optional and, when absent, the daemon
 * serves exactly as without it.
 */
export interface DaemonHooks {
  /**
   * Wraps an instance's filesystem when it is attached (metrics count its requests there, with the instance's own
   * inode numbers). Absent: the instance's filesystem is served as it is.
   */
  instrument?(fs: FileSystem, mounted: MountedInstance): FileSystem;
  /** The instance was detached (DELETE /api/v1/mount, or remounted: then `attached` follows for its successor). */
  detached?(mounted: MountedInstance): void;
}

export class FuseDaemon {
  private session: Session | undefined;
  private stopping: Promise<void> | undefined;
  private starting: Promise<void> | undefined;
  readonly startTime = Date.now() / 1000;
  /** the one state of this daemon (nydusd-runtime.md 1.10), read by the CLI, metrics and the API */
  readonly state = new DaemonStateMachine();
  /** final backend read failures, for GET /api/v1/daemon/events */
  readonly events = new ErrorEvents();
  /** every instance this daemon serves, under one FUSE session (dedicated: one at `/`) */
  readonly vfs: Vfs<MountedInstance>;
  /** instances detached but still held by the kernel, and live ones: all closed at shutdown */
  private readonly open = new Set<MountedInstance>();
  /** exitKeepingMount ran: the FUSE readers are still blocked in the kernel */
  private keptMount = false;

  constructor(
    readonly args: DaemonArgs,
    readonly log: Logger,
    readonly hooks: DaemonHooks = {},
  ) {
    this.vfs = new Vfs<MountedInstance>({
      uid: process.geteuid?.() ?? 0,
      gid: process.getegid?.() ?? 0,
      startTime: this.startTime,
      released: (m) => this.release(m),
    });
  }

  /** The FUSE session, once mounted (metrics read its requests in flight). */
  get fuseSession(): Session | undefined {
    return this.session;
  }

  /** The instances attached in the FUSE mount, in slot order. */
  instances(): MountedInstance[] {
    return this.vfs.attached().map((a) => a.owner);
  }

  /** Everything that can fail before the mount exists fails here, and nothing is left mounted. */
  start(): Promise<void> {
    this.starting ??= this.mountInitial();
    return this.starting;
  }

  private async mountInitial(): Promise<void> {
    const a = this.args;
    if (!a.mountpoint) throw new Error('the --mountpoint argument is required in FUSE mode');
    const mountpoint = checkMountpoint(a.mountpoint);
    if (a.sharedDir) throw new Error('--shared-dir (passthrough) is not supported by this nydusd');
    if (a.writable) throw new Error('--writable is not supported: images are served read-only');
    // a takeover start must not mount: failing is safer than mounting a second time over the live mount
    if (a.upgrade) throw new Error('--upgrade (takeover from a running daemon) is not supported by this nydusd yet');
    for (const flag of a.ignored) this.log.debug(`ignoring ${flag}: accepted for compatibility only`);
    if (a.supervisor) this.log.warn(`--supervisor ${a.supervisor}: failover is not implemented yet; the daemon runs without it`);

    // with --bootstrap, the image of the command line at --virtual-mountpoint (dedicated: `/`); without, a shared
    // daemon whose images all come through POST /api/v1/mount (nydusd-runtime.md 1.9)
    let initial: MountedInstance | undefined;
    if (a.bootstrap) {
      const config = loadConfig(a, this.log);
      const prefetch = a.prefetchFiles ? readPrefetchList(a.prefetchFiles) : [];
      if (prefetch.length) this.log.info(`prefetch list of ${prefetch.length} paths accepted (prefetch is not implemented yet)`);
      initial = await this.attach(a.virtualMountpoint, a.bootstrap, config);
    } else if (!a.apisock) {
      throw new Error('--bootstrap is required unless --apisock is given (a shared daemon gets its images through the API)');
    }

    const log = this.log;
    try {
      this.session = await Session.mount(this.vfs, {
        mountpoint,
        readers: Math.min(a.threads, 2),
        // sequential reads arrive as 1 MiB requests (max_pages), four of them in flight: cold reads measured 11 %
        // faster than with a 1 MiB window, whose requests waited for their chunk one by one (BENCHMARKS.md, run H)
        readAheadKb: 4096,
        // attributes with every listing: a tree walk then needs no LOOKUP per entry (measured: `find` over
        // 54,668 entries 5.6-7.0 s with 'auto', 2.1-2.7 s with 'always'; rechecked with huge directories in BENCHMARKS.md run O)
        readdirplus: 'always',
        // READ replies of 64 KiB or more are written from the libuv pool (the session's default): copying 1 MiB
        // replies into the kernel was the main thread's largest item under 4 streaming readers, and API requests
        // waited behind it (p99 of GET /api/v1/daemon 5.5 -> 3.9 ms, cold reads unchanged within noise, BENCHMARKS.md
        // run AA; with worker readers it had cost 5-10 % of cold read speed)
        log: (level, msg) => log.log(level, msg),
      });
    } catch (err) {
      if (initial) this.vfs.detach(initial.mountpoint);
      throw err;
    }
    const session = this.session;
    this.vfs.notifier = {
      invalEntry: (parent, name) => session.notifyInvalEntry(parent, name),
      invalInode: (node) => session.notifyInvalInode(node),
    };
    session.once('closed', () => {
      // someone unmounted us (umount, fusermount -u, abort): release everything and leave with 0
      if (!this.stopping) {
        this.log.info(`FUSE connection at ${mountpoint} closed from outside; exiting`);
        void this.shutdown().then(() => this.exit(0));
      }
    });
    // nydusd-runtime.md 1.9: Mount once the kernel mount exists, Start once requests are served (the session serves from its mount)
    await this.state.fire('Mount');
    await this.state.fire('Start');
    if (initial) this.prepareInBackground(initial);
    this.log.info(`mounted at ${mountpoint}${initial ? '' : ' (shared daemon: images come through the API)'}, state ${this.state.state}`);
  }

  /**
   * nydusd-runtime.md 1.9 step 6.1: blob metas arrive in the background after the mount; so do the bootstrap's indexes,
   * so that the first read of a huge layer finds them ready (issue 8: they were most of its cost).
   */
  private prepareInBackground(m: MountedInstance): void {
    // the blob metas' requests go out at once, the indexes are built a turn of the loop later: on a registry the metas
    // are the longer wait, and a shared daemon's first read of a small file waited 8 ms more for its blob meta with
    // the indexes built before (issue 11, --cpu-prof)
    void m.instance.device.openAll();
    setImmediate(() => {
      try {
        m.instance.bootstrap.prepare?.();
      } catch (err) {
        this.log.debug(`preparing the bootstrap's indexes: ${(err as Error).message} (left to the reads that need them)`);
      }
    });
  }

  /**
   * A shared daemon imports what its first image will need (RAFS, the blob cache, the registry backend) once it is
   * RUNNING and idle, rather than inside the snapshotter's first POST /api/v1/mount: from the request to a small file's
   * bytes took 0.11 s with the imports in it (BENCHMARKS.md run AC). An import a mount also asks for is the same one.
   * `alsoWhileIdle` runs in the same moment, before the garbage is collected (the API's schema compiles, from the CLI).
   */
  preloadImageModules(alsoWhileIdle?: () => void): void {
    setImmediate(() => {
      Promise.all([
        import('./rafs-instance.js'),
        import('../storage/cache/share.js'),
        import('../storage/backend/factory.js').then((f) => f.preloadRegistryBackend()),
        Promise.resolve().then(alsoWhileIdle),
      ]).then(
        // what loading left behind is collected now, while idle, rather than by the collections it would trigger
        // during the first mount (three of 5-6 ms each in that profile)
        () => reclaimMemory(),
        (err: unknown) => this.log.warn(`loading the image modules ahead of the first mount: ${(err as Error).message}`),
      );
    });
  }

  /**
   * Builds an instance (bootstrap, backend, blob device, filesystem) without attaching it. What an image needs (RAFS,
   * the blob cache, the backends) is imported with the first one: a shared daemon answers RUNNING without it.
   */
  private async build(path: string, bootstrapPath: string, config: ConfigV2): Promise<MountedInstance> {
    const [{ createRafsInstance }, { processStorage }] = await Promise.all([import('./rafs-instance.js'), import('../storage/cache/share.js')]);
    // the daemon owns the process: once reads pause, what they left goes back to the kernel
    processStorage.onQuiet = reclaimMemory;
    const instance = await createRafsInstance(
      bootstrapPath,
      config,
      this.startTime,
      (level, msg) => this.log.log(level, msg),
      (msg) => this.events.record(msg),
      { backendId: path },
    );
    const sb = instance.bootstrap.superblock;
    this.log.info(`loaded RAFS v${sb.version} bootstrap ${bootstrapPath} for ${path}: ${sb.inodeCount} inodes, ${instance.bootstrap.blobs.length} blobs`);
    return { mountpoint: path, mountedAtNs: nowNs(), bootstrapPath, instance };
  }

  /** Builds and attaches; the VFS refuses a taken or malformed `path` (callers check it first when building costs). */
  private async attach(path: string, bootstrapPath: string, config: ConfigV2, api = false): Promise<MountedInstance> {
    const m = await this.build(path, bootstrapPath, config);
    this.open.add(m);
    try {
      // through the API: the daemon may have begun to stop while the instance was built
      if (api) this.checkServing();
      this.vfs.attach(path, this.hooks.instrument?.(m.instance.fs, m) ?? m.instance.fs, m);
    } catch (err) {
      this.open.delete(m);
      void m.instance.device.close().catch(() => undefined);
      throw err;
    }
    return m;
  }

  /** POST /api/v1/mount (nydusd-runtime.md 3.5.6): a new instance at `path` inside the FUSE mount, visible at once. */
  async mountInstance(path: string, bootstrapPath: string, configText: string, prefetch: string[] = []): Promise<MountedInstance> {
    this.checkServing();
    // the place first: a taken or malformed path is the answer before anything is parsed or loaded
    this.vfs.checkAttach(path);
    const config = parseConfig(configText, (m) => this.log.warn(`configuration of ${path}: ${m}`));
    const bad = prefetch.find((p) => typeof p !== 'string' || !p.startsWith('/'));
    if (bad !== undefined) throw new Error(`invalid prefetch file list: ${JSON.stringify(bad)} is not an absolute path`);
    const m = await this.attach(path, bootstrapPath, config, true);
    this.prepareInBackground(m);
    this.log.info(`attached ${bootstrapPath} at ${path}`);
    await this.vfs.notified();
    return m;
  }

  /**
   * PUT /api/v1/mount: the instance at `path` is replaced by one built from `bootstrapPath` and `configText`. Nothing
   * changes if that fails. Files opened before keep reading the old image until closed (the old instance lives on
   * while the kernel holds its nodes); new lookups see the new one.
   */
  async remountInstance(path: string, bootstrapPath: string, configText: string): Promise<MountedInstance> {
    this.checkServing();
    if (!this.vfs.find(path)) throw new InstancePathError(`object or filesystem doesn't exist at ${path}`);
    const config = parseConfig(configText, (m) => this.log.warn(`configuration of ${path}: ${m}`));
    const m = await this.build(path, bootstrapPath, config);
    this.open.add(m);
    let old: MountedInstance;
    try {
      // the daemon may have begun to stop while the instance was built
      this.checkServing();
      old = this.vfs.replace(path, this.hooks.instrument?.(m.instance.fs, m) ?? m.instance.fs, m).old.owner;
    } catch (err) {
      this.open.delete(m);
      void m.instance.device.close().catch(() => undefined);
      throw err;
    }
    this.hooks.detached?.(old);
    this.prepareInBackground(m);
    this.log.info(`remounted ${path} with ${bootstrapPath}`);
    await this.vfs.notified();
    return m;
  }

  /** DELETE /api/v1/mount: detaches the instance at `path`; its cache files stay on disk. */
  async umountInstance(path: string): Promise<void> {
    this.checkServing();
    const old = this.vfs.detach(path).owner;
    this.hooks.detached?.(old);
    this.log.info(`detached ${old.bootstrapPath} from ${path}`);
    // the reply waits for the kernel to have dropped the instance's dentries
    await this.vfs.notified();
  }

  private checkServing(): void {
    if (!this.session || this.stopping) throw new Error(`the daemon is not serving (state ${this.state.state})`);
  }

  /** The kernel holds nothing of a detached instance any more: close its blob device (shared caches stay for others). */
  private release(m: MountedInstance): void {
    if (this.stopping || !this.open.delete(m)) return;
    m.instance.device.close().catch((err) => this.log.warn(`closing blob device of ${m.mountpoint}: ${(err as Error).message}`));
  }

  /** At shutdown; `open` keeps them, for exit() to see backend reads still stuck in the kernel. */
  private closeAll(): Promise<unknown> {
    const all = [...this.open];
    return Promise.all(all.map((m) => m.instance.device.close().catch((err) => this.log.warn(`closing blob device: ${(err as Error).message}`))));
  }

  /**
   * The counters an operator asks for with SIGUSR2 (until the metrics API exists): backend reads, bytes
   * and errors, the blob caches' hits and fetched chunks, and FUSE requests per opcode, as one line of JSON.
   */
  async metrics(): Promise<string> {
    const instances = await Promise.all(
      this.instances().map(async (m) => {
        const device = m.instance.device;
        const b = device.backend;
        return {
          mountpoint: m.mountpoint,
          backend: { type: b.kind, reads: b.stats.reads, bytes: b.stats.bytes, errors: b.stats.errors },
          cache: await device.stats(),
        };
      }),
    );
    const only = instances.length === 1 && instances[0]!.mountpoint === '/' ? instances[0]! : undefined;
    return JSON.stringify({
      ...(only ? { backend: only.backend, cache: only.cache } : { state: this.state.state, instances }),
      // requests per FUSE opcode since the mount: shows what the kernel asks, e.g. per-entry round trips
      fuse: Object.fromEntries(this.session?.opCounts ?? []),
    });
  }

  /**
   * Ends the process after shutdown. Node's exit waits for the libuv pool, and a pool thread stuck in a
   * read the kernel never finishes (a blob on a dead network filesystem) would hold the daemon forever:
   * then it leaves with _exit. Otherwise the normal exit runs (exit hooks, --cpu-prof output).
   */
  exit(code: number): never {
    const backends = [...this.open].map((m) => m.instance.device.backend);
    // after exitKeepingMount the FUSE reader threads still sit in reads of /dev/fuse that only an unmount would
    // end, and the normal exit would wait for them forever
    if (this.keptMount) {
      native.exit(code);
    }
    if (backends.some((b) => b.pending > 0 || b.abandoned > 0)) {
      this.log.warn('backend reads are still stuck in the kernel; exiting without waiting for them');
      native.exit(code);
    }
    process.exit(code);
  }

  /**
   * PUT /api/v1/daemon/exit (spec nydusd-runtime.md 1.10, 1.11): stop serving and go to STOPPED without unmounting,
   * so that a successor holding the /dev/fuse fd keeps the mount; the cache state is flushed. The caller exits 0.
   */
  exitKeepingMount(): Promise<void> {
    this.keptMount = !this.stopping;
    this.stopping ??= (async () => {
      await this.starting?.catch(() => undefined);
      try {
        const s = this.state.state;
        if (s === 'RUNNING') await this.state.fire('Stop');
        if (this.state.state === 'READY') await this.state.fire('Exit');
        else if (this.state.state === 'INIT') await this.state.fire('Stop');
      } finally {
        await this.closeAll();
      }
    })();
    return this.stopping;
  }

  /** Unmounts (if mounted), flushes the cache state and closes the backend. Idempotent. */
  shutdown(): Promise<void> {
    this.stopping ??= (async () => {
      // a signal during start-up: let the mount finish (bounded by the INIT timeout), then undo it, so
      // that no dead mount is left behind
      await this.starting?.catch(() => undefined);
      try {
        // nydusd-runtime.md 1.10: RUNNING stops its workers (READY), READY and INIT stop (STOPPED), unmounting whatever is mounted
        if (this.state.state === 'RUNNING') await this.state.fire('Stop');
        if (this.state.state !== 'STOPPED') await this.state.fire('Stop', () => this.unmount());
      } finally {
        await this.closeAll();
      }
    })();
    return this.stopping;
  }

  /** Unmounts the session, if any; a busy mount is detached and its connection aborted. */
  private async unmount(): Promise<void> {
    const s = this.session;
    await s?.unmount().catch(async (err) => {
      // busy (open files, a cwd inside): detach it, and end the connection, so that its users get
      // ENOTCONN rather than a mount whose server is gone (the reference's connection ends with its fd)
      this.log.warn(`${(err as Error).message}; detaching lazily and aborting the connection`);
      try {
        abortConnection(s.mountpoint);
      } catch (e) {
        this.log.warn(`cannot abort the FUSE connection of ${s.mountpoint}: ${(e as Error).message}`);
      }
      try {
        umount(s.mountpoint, MNT_DETACH);
      } catch (e) {
        if ((e as { code?: string }).code !== 'EINVAL') this.log.warn(`lazy unmount of ${s.mountpoint}: ${(e as Error).message}`);
      }
      await s.unmount({ lazy: true });
    });
  }
}
