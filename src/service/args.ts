// nydusd's command line, in the reference's forms: `nydusd fuse [flags]`, `nydusd singleton [flags]`, or the
// legacy top-level form with the fuse flags. Values come as separate words (`--flag value`, as the
// snapshotter passes them) or joined (`--flag=value`, `-Mvalue`). The words are read by the one argv parser
// (src/argv.ts); the table below says which flags there are. Argument errors exit with status 2.

import path from 'node:path';
import { parseArgv, UsageError, type OptionSpec } from '../argv.js';

export { UsageError };

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'off';
export type FailoverPolicy = 'none' | 'resend' | 'flush';

export interface DaemonArgs {
  mode: 'fuse' | 'singleton';
  version: boolean;
  help: boolean;
  apisock?: string;
  /** permission bits of the API socket (our extension; default 0600, owner only) */
  apisockMode: number;
  /** `host:port` of the Prometheus endpoint (our extension), e.g. 127.0.0.1:9110 */
  metricsAddress?: string;
  config?: string;
  id?: string;
  supervisor?: string;
  upgrade: boolean;
  logLevel: LogLevel;
  logFile?: string;
  logRotationSize: number;
  rlimitNofile: number;
  mountpoint?: string;
  bootstrap?: string;
  localfsDir?: string;
  sharedDir?: string;
  prefetchFiles?: string;
  virtualMountpoint: string;
  failoverPolicy: FailoverPolicy;
  threads: number;
  writable: boolean;
  fscache?: string;
  fscacheTag?: string;
  fscacheThreads: number;
  /** flags accepted for compatibility and ignored (logged at debug level) */
  ignored: string[];
}

type Scope = 'global' | 'fuse' | 'singleton';
interface FlagSpec {
  names: string[];
  scope: Scope;
  takesValue: boolean;
  /** how the value is named in messages (`<dir>`), as in USAGE */
  valueName?: string;
  apply(a: DaemonArgs, v: string): void;
}

function int(name: string, v: string, min: number, max: number): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`invalid value '${v}' for '${name}': not an integer`);
  const n = Number(v);
  if (n < min || n > max) throw new UsageError(`invalid value '${v}' for '${name}': must be in ${min}..=${max}`);
  return n;
}

const LEVELS: Record<string, LogLevel> = {
  trace: 'trace', debug: 'debug', info: 'info', warn: 'warn', error: 'error',
  // logrus spellings the snapshotter may forward; the reference rejects them, we map them
  warning: 'warn', fatal: 'error', panic: 'error',
};

const FLAGS: FlagSpec[] = [
  { names: ['--apisock', '-A'], scope: 'global', takesValue: true, valueName: '<path>', apply: (a, v) => (a.apisock = v) },
  {
    // our extension: the API mounts images and reads as root, so by default nobody else may connect
    names: ['--apisock-mode'], scope: 'global', takesValue: true, valueName: '<mode>',
    apply: (a, v) => {
      if (!/^0?[0-7]{3}$/.test(v)) throw new UsageError(`invalid value '${v}' for '--apisock-mode': expected an octal mode such as 0600 or 0660`);
      a.apisockMode = parseInt(v, 8);
    },
  },
  {
    names: ['--metrics-address'], scope: 'global', takesValue: true, valueName: '<host:port>',
    apply: (a, v) => {
      if (!/^(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+):\d{1,5}$/.test(v) || Number(v.slice(v.lastIndexOf(':') + 1)) > 65535) {
        throw new UsageError(`invalid value '${v}' for '--metrics-address': expected host:port, e.g. 127.0.0.1:9110`);
      }
      a.metricsAddress = v;
    },
  },
  { names: ['--config', '-C'], scope: 'global', takesValue: true, valueName: '<file>', apply: (a, v) => (a.config = v) },
  { names: ['--id'], scope: 'global', takesValue: true, valueName: '<id>', apply: (a, v) => (a.id = v) },
  { names: ['--supervisor'], scope: 'global', takesValue: true, valueName: '<path>', apply: (a, v) => (a.supervisor = v) },
  { names: ['--upgrade'], scope: 'global', takesValue: false, apply: (a) => (a.upgrade = true) },
  {
    names: ['--log-level', '-l'], scope: 'global', takesValue: true, valueName: '<level>',
    apply: (a, v) => {
      const l = LEVELS[v];
      if (!l) throw new UsageError(`invalid value '${v}' for '--log-level': expected one of trace, debug, info, warn, error`);
      a.logLevel = l;
    },
  },
  { names: ['--log-file', '-L'], scope: 'global', takesValue: true, valueName: '<path>', apply: (a, v) => (a.logFile = v) },
  { names: ['--log-rotation-size'], scope: 'global', takesValue: true, valueName: '<MiB>', apply: (a, v) => (a.logRotationSize = int('--log-rotation-size', v, 0, 2 ** 31)) },
  { names: ['--rlimit-nofile'], scope: 'global', takesValue: true, valueName: '<n>', apply: (a, v) => (a.rlimitNofile = int('--rlimit-nofile', v, 0, 2 ** 31)) },
  { names: ['--mountpoint', '-M'], scope: 'fuse', takesValue: true, valueName: '<dir>', apply: (a, v) => (a.mountpoint = v) },
  { names: ['--bootstrap', '-B'], scope: 'fuse', takesValue: true, valueName: '<file>', apply: (a, v) => (a.bootstrap = v) },
  { names: ['--localfs-dir', '-D'], scope: 'fuse', takesValue: true, valueName: '<dir>', apply: (a, v) => (a.localfsDir = v) },
  { names: ['--shared-dir', '-s'], scope: 'fuse', takesValue: true, valueName: '<dir>', apply: (a, v) => (a.sharedDir = v) },
  { names: ['--prefetch-files'], scope: 'fuse', takesValue: true, valueName: '<file>', apply: (a, v) => (a.prefetchFiles = v) },
  {
    names: ['--virtual-mountpoint', '-m'], scope: 'fuse', takesValue: true, valueName: '<path>',
    apply: (a, v) => {
      // the path inside the FUSE mount where the image is attached
      if (!v.startsWith('/')) throw new UsageError(`invalid value '${v}' for '--virtual-mountpoint': must be an absolute path`);
      a.virtualMountpoint = path.posix.normalize(v).replace(/(.)\/$/, '$1');
    },
  },
  {
    names: ['--failover-policy'], scope: 'fuse', takesValue: true, valueName: '<p>',
    apply: (a, v) => {
      if (v !== 'none' && v !== 'resend' && v !== 'flush') {
        throw new UsageError(`invalid value '${v}' for '--failover-policy': expected one of none, resend, flush`);
      }
      a.failoverPolicy = v;
    },
  },
  { names: ['--thread-num', '--fuse-threads'], scope: 'fuse', takesValue: true, valueName: '<n>', apply: (a, v) => (a.threads = int('--thread-num', v, 1, 1024)) },
  { names: ['--writable'], scope: 'fuse', takesValue: false, apply: (a) => (a.writable = true) },
  { names: ['--dedup-db'], scope: 'fuse', takesValue: true, valueName: '<file>', apply: (a) => a.ignored.push('--dedup-db') },
  // nydus-snapshotter passes this with enable_backend_source; the reference has no such flag
  { names: ['--backend-source'], scope: 'fuse', takesValue: true, valueName: '<source>', apply: (a) => a.ignored.push('--backend-source') },
  { names: ['--fscache', '-F'], scope: 'singleton', takesValue: true, valueName: '<dir>', apply: (a, v) => (a.fscache = v) },
  { names: ['--fscache-tag'], scope: 'singleton', takesValue: true, valueName: '<tag>', apply: (a, v) => (a.fscacheTag = v) },
  { names: ['--fscache-threads'], scope: 'singleton', takesValue: true, valueName: '<n>', apply: (a, v) => (a.fscacheThreads = int('--fscache-threads', v, 1, 1024)) },
];

export const USAGE = `Usage: nydusd [fuse|singleton] [OPTIONS]

Global options:
  -A, --apisock <path>         management API socket (HTTP/1.1; created once the daemon is RUNNING)
      --apisock-mode <mode>    permissions of the API socket [default: 0600, owner only]; e.g. 0660 to let
                               the owner's group in (an extension of nydus-ts)
  -C, --config <file>          RAFS configuration (v1/v2 JSON, v2 TOML, YAML)
      --metrics-address <host:port>  serve Prometheus metrics at http://<host:port>/metrics (an extension of
                               nydus-ts; give a loopback address such as 127.0.0.1:9110)
      --id <id>                daemon id (requires --supervisor)
      --supervisor <path>      supervisor socket for failover (requires --id)
      --upgrade                start in takeover mode (requires --apisock)
  -l, --log-level <level>      trace|debug|info|warn|error [default: info]
  -L, --log-file <path>        log file (default: stderr)
      --log-rotation-size <MiB>
      --rlimit-nofile <n>      [default: 1000000]
  -V, --version                print version information

fuse options:
  -M, --mountpoint <dir>       where to mount (required)
  -B, --bootstrap <file>       RAFS bootstrap to mount
  -D, --localfs-dir <dir>      localfs backend and blob cache in <dir> (instead of --config)
      --prefetch-files <file>  list of paths to prefetch
  -m, --virtual-mountpoint <p> [default: /]
      --failover-policy <p>    none|resend|flush [default: resend]
      --thread-num <n>         FUSE worker threads, alias --fuse-threads [default: 4]
      --writable               mount read-write (unsupported)

Signals:
  SIGTERM, SIGINT              unmount and exit 0
  SIGUSR2                      log the backend and blob-cache counters as one line \`metrics: {json}\`
                               (each backend read is also logged at debug level)
`;

/** A FLAGS entry as the argv parser's option (`--thread-num` with its alias `--fuse-threads`, `-M`, ...). */
interface FlagOption extends OptionSpec {
  flag?: FlagSpec;
}

function optionOf(f: FlagSpec): FlagOption {
  const longs = f.names.filter((n) => n.startsWith('--')).map((n) => n.slice(2));
  const short = f.names.find((n) => !n.startsWith('--'))?.slice(1);
  return {
    long: longs[0]!, aliases: longs.slice(1), short, flag: f,
    // clap names a value `<VALUE>` when USAGE gives it no name
    value: f.takesValue ? (f.valueName ?? '<VALUE>') : undefined,
  };
}

const OPTIONS: FlagOption[] = [
  // anywhere, any number of times
  { long: 'version', short: 'V', repeatable: true },
  { long: 'help', short: 'h', repeatable: true },
  ...FLAGS.map(optionOf),
];

export function parseArgs(argv: string[]): DaemonArgs {
  const a: DaemonArgs = {
    mode: 'fuse', version: false, help: false, upgrade: false, apisockMode: 0o600, logLevel: 'info', logRotationSize: 0, rlimitNofile: 1000000,
    virtualMountpoint: '/', failoverPolicy: 'resend', threads: 4, writable: false, fscacheThreads: 4, ignored: [],
  };
  let sub: 'fuse' | 'singleton' | undefined;
  if (argv[0] === 'fuse' || argv[0] === 'singleton') {
    sub = argv[0];
    a.mode = sub;
  }
  // every flag at most once, as clap has it: a second --mountpoint silently winning hides a mistake
  parseArgv(sub ? argv.slice(1) : argv, OPTIONS, {
    endOfOptions: false,
    admit: (o, name) => {
      const scope = o.flag?.scope;
      if (scope === 'singleton' && a.mode !== 'singleton') throw new UsageError(`'${name}' is only valid with the singleton subcommand`);
      if (scope === 'fuse' && a.mode === 'singleton') throw new UsageError(`'${name}' is not valid with the singleton subcommand`);
    },
    onItem: (item) => {
      if (item.kind === 'positional') {
        const word = item.value;
        if (word === 'fuse' || word === 'singleton') {
          if (sub) throw new UsageError(`unexpected subcommand '${word}' after '${sub}'`);
          throw new UsageError(`the subcommand '${word}' must come first`);
        }
        throw new UsageError(`unexpected argument '${word}'`);
      }
      if (item.spec.long === 'version') a.version = true;
      else if (item.spec.long === 'help') a.help = true;
      else item.spec.flag!.apply(a, item.value);
    },
  });
  if ((a.id === undefined) !== (a.supervisor === undefined)) throw new UsageError('--id and --supervisor must be given together');
  if (a.bootstrap && a.sharedDir) throw new UsageError("'--bootstrap' cannot be used with '--shared-dir'");
  if (a.localfsDir && a.config) throw new UsageError("'--localfs-dir' cannot be used with '--config'");
  if (a.prefetchFiles && !a.bootstrap) throw new UsageError("'--prefetch-files' requires '--bootstrap'");
  if (a.fscacheTag && !a.fscache) throw new UsageError("'--fscache-tag' requires '--fscache'");
  return a;
}
