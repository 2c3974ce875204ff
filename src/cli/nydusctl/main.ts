// nydusctl (spec nydusd-runtime.md 5): `nydusctl --sock <apisock> [--raw] <command> [args]`, one request to the
// daemon's management API per command, its answer printed as the reference's nydusctl prints it (format.ts) or,
// with --raw, as the JSON itself (keys sorted, as the reference re-serializes it). Usage errors exit 2; every other
// failure is one line `Error: ...` on stderr and exit 1; an API error answer is shown as the reference shows it
// (`Error: Request failed. Object {"code": String("UNDEFINED"), "message": String("...")}`).
import { parseArgv, UsageError, type OptionSpec } from '../../argv.js';
import { readInputFile } from '../../input-file.js';
import { versionText } from '../../service/version.js';
import { apiRequest, queryValue, type ApiAnswer } from '../api-client.js';
import {
  formatBackendInterval, formatBackendMetrics, formatCacheMetrics, formatFiles, formatFsStats, formatInflight, formatInfo, formatPattern,
  sortedJson, valueDebug,
} from './format.js';

export const USAGE = `Usage: nydusctl --sock <apisock> [--raw] <COMMAND> [ARGS]

Commands:
  info                                  version, state and mounted instances of the daemon
  set log-level <level>                 change the daemon's log level (trace|debug|info|warn|error|off)
  metrics backend [-I <secs>]           storage backend counters (-I: every <secs> seconds, the deltas)
  metrics cache                         blob cache counters (alias: metrics blobcache)
  metrics fsstats                       filesystem counters
  metrics inflight                      FUSE requests being served
  metrics files [--latest]              per-file counters (--latest: the inodes read since the last such call)
  metrics pattern                       access pattern
  backend, blobcache                    the same as metrics backend, metrics cache
  mount -s <bootstrap> -c <config file> -m <mountpoint> [-t rafs|passthrough_fs] [-p <prefetch list file>]
                                        attach an image at <mountpoint> inside the FUSE mount (shared daemon)
  umount -m <mountpoint>                detach the instance at <mountpoint>

Options:
  -S, --sock <apisock>                  the daemon's API socket (nydusd --apisock); before the command
  -r, --raw                             print the daemon's JSON instead of text (anywhere)
  -i, --id <id>                         (metrics) the instance or cache id to ask about; without it the daemon
                                        answers only when it has exactly one (an extension of nydus-ts)
  -h, --help                            print this help
  -V, --version                         print version information
`;

const RAW: OptionSpec = { long: 'raw', short: 'r', repeatable: true };
const HELP: OptionSpec = { long: 'help', short: 'h', repeatable: true };
const GLOBAL: OptionSpec[] = [{ long: 'sock', short: 'S', value: '<apisock>' }, RAW, HELP, { long: 'version', short: 'V', repeatable: true }];
const ID: OptionSpec = { long: 'id', short: 'i', value: '<id>' };
const COMMAND_OPTIONS: Record<string, OptionSpec[]> = {
  info: [],
  set: [],
  metrics: [ID, { long: 'interval', short: 'I', value: '<secs>' }, { long: 'latest' }],
  mount: [
    { long: 'source', short: 's', value: '<bootstrap>' },
    { long: 'config', short: 'c', value: '<file>' },
    { long: 'mountpoint', short: 'm', value: '<mountpoint>' },
    { long: 'type', short: 't', value: '<type>' },
    { long: 'prefetch-files', short: 'p', value: '<file>' },
  ],
  umount: [{ long: 'mountpoint', short: 'm', value: '<mountpoint>' }],
};

/** Metrics kinds: the route each asks, and how its answer is shown. */
const METRICS: Record<string, { path: string; format(json: unknown): string }> = {
  backend: { path: '/api/v1/metrics/backend', format: formatBackendMetrics },
  cache: { path: '/api/v1/metrics/blobcache', format: formatCacheMetrics },
  blobcache: { path: '/api/v1/metrics/blobcache', format: formatCacheMetrics },
  fsstats: { path: '/api/v1/metrics', format: formatFsStats },
  inflight: { path: '/api/v1/metrics/inflight', format: formatInflight },
  files: { path: '/api/v1/metrics/files', format: formatFiles },
  pattern: { path: '/api/v1/metrics/pattern', format: formatPattern },
};

/** The largest mount configuration sent (the API takes bodies of at most 51,200 bytes, spec 3.1). */
const MAX_CONFIG_BYTES = 51200;

/** An answer of status 400 or more, shown as the reference shows it (5.1). */
export class RequestFailed extends Error {
  constructor(answer: ApiAnswer) {
    super(`Request failed. ${answer.json === undefined ? `status ${answer.status}` : valueDebug(answer.json)}`);
    this.name = 'RequestFailed';
  }
}

export interface Output {
  stdout(text: string): void;
}

async function call(sock: string, method: string, path: string, body?: string): Promise<ApiAnswer> {
  const a = await apiRequest(sock, method, path, body);
  if (a.status >= 400) throw new RequestFailed(a);
  return a;
}

function one(options: Map<string, string[]>, name: string): string | undefined {
  return options.get(name)?.[0];
}

function need(options: Map<string, string[]>, name: string, command: string): string {
  const v = one(options, name);
  if (v === undefined) throw new UsageError(`${command}: '--${name}' is required`);
  return v;
}

function withId(path: string, id: string | undefined, extra: string[] = []): string {
  const q = [...(id !== undefined ? [`id=${queryValue(id)}`] : []), ...extra];
  return q.length ? `${path}?${q.join('&')}` : path;
}

/** Runs one nydusctl command line; resolves to the exit status (or never, for `metrics backend --interval`). */
export async function run(argv: string[], out: Output): Promise<number> {
  const top = parseArgv(argv, GLOBAL, { stopAtPositional: true });
  if (top.options.has('help')) {
    out.stdout(USAGE);
    return 0;
  }
  if (top.options.has('version')) {
    out.stdout(versionText('nydusctl'));
    return 0;
  }
  const [command, ...rest] = top.rest;
  if (command === undefined) throw new UsageError('a command is required');
  // `backend` and `blobcache` are `metrics backend` and `metrics cache`
  const [name, args] = command === 'backend' || command === 'blobcache' ? ['metrics', [command, ...rest]] : [command, rest];
  const specs = COMMAND_OPTIONS[name];
  if (!specs) throw new UsageError(`unknown command '${command}' (expected info, set, metrics, backend, blobcache, mount or umount)`);
  const p = parseArgv(args, [...specs, RAW, HELP]);
  if (p.options.has('help')) {
    out.stdout(USAGE);
    return 0;
  }
  const raw = top.options.has('raw') || p.options.has('raw');
  const sock = one(top.options, 'sock');
  if (sock === undefined) throw new UsageError("'--sock <apisock>' is required (before the command)");
  const positionals = (count: number, what: string) => {
    if (p.positionals.length !== count) throw new UsageError(`${name}: expected ${what}, got ${p.positionals.length ? p.positionals.map((x) => `'${x}'`).join(' ') : 'nothing'}`);
    return p.positionals;
  };
  const show = (a: ApiAnswer, format: (json: unknown) => string) => {
    if (raw) {
      if (a.json !== undefined) out.stdout(`${sortedJson(a.json)}\n`);
    } else {
      out.stdout(format(a.json));
    }
  };

  switch (name) {
    case 'info': {
      positionals(0, 'no arguments');
      show(await call(sock, 'GET', '/api/v1/daemon'), formatInfo);
      return 0;
    }
    case 'set': {
      const [kind, value] = positionals(2, 'KIND VALUE (log-level <level>)');
      if (kind !== 'log-level') throw new UsageError(`set: unknown kind '${kind}' (expected log-level)`);
      await call(sock, 'PUT', '/api/v1/daemon', JSON.stringify({ log_level: value }));
      return 0;
    }
    case 'metrics': {
      const [kind] = positionals(1, `a metrics kind (${Object.keys(METRICS).join(', ')})`);
      const m = METRICS[kind!];
      if (!m) throw new UsageError(`metrics: unknown kind '${kind}' (expected ${Object.keys(METRICS).join(', ')})`);
      const id = one(p.options, 'id');
      if (p.options.has('latest') && kind !== 'files') throw new UsageError("metrics: '--latest' applies to metrics files only");
      const interval = one(p.options, 'interval');
      if (interval !== undefined && kind !== 'backend') throw new UsageError("metrics: '--interval' applies to metrics backend only");
      if (kind === 'inflight' && id !== undefined) throw new UsageError("metrics inflight: takes no '--id' (one list for the whole daemon)");
      const path = withId(m.path, id, p.options.has('latest') ? ['latest=true'] : []);
      if (interval === undefined) {
        show(await call(sock, 'GET', path), m.format);
        return 0;
      }
      if (!/^[1-9]\d{0,5}$/.test(interval)) throw new UsageError(`metrics: invalid interval '${interval}': a whole number of seconds from 1`);
      const secs = Number(interval);
      let before = (await call(sock, 'GET', path)).json;
      for (;;) {
        await new Promise((r) => setTimeout(r, secs * 1000));
        const now = await call(sock, 'GET', path);
        show(now, (json) => formatBackendInterval(before, json, secs));
        before = now.json;
      }
    }
    case 'mount': {
      positionals(0, 'no positional arguments');
      const source = need(p.options, 'source', 'mount');
      const mountpoint = need(p.options, 'mountpoint', 'mount');
      const configFile = need(p.options, 'config', 'mount');
      const type = one(p.options, 'type') ?? 'rafs';
      // MountCmd (spec 3.5.6): the configuration travels as a string; keys in the reference's (sorted) order
      const body: Record<string, unknown> = {
        config: readInputFile(configFile, 'configuration file', MAX_CONFIG_BYTES).toString('utf8'),
        fs_type: type,
      };
      const list = one(p.options, 'prefetch-files');
      if (list !== undefined) {
        body.prefetch_files = readInputFile(list, 'prefetch file list', MAX_CONFIG_BYTES).toString('utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '');
      }
      body.source = source;
      await call(sock, 'POST', `/api/v1/mount?mountpoint=${queryValue(mountpoint)}`, JSON.stringify(body));
      return 0;
    }
    default: {
      positionals(0, 'no positional arguments');
      const mountpoint = need(p.options, 'mountpoint', 'umount');
      await call(sock, 'DELETE', `/api/v1/mount?mountpoint=${queryValue(mountpoint)}`);
      return 0;
    }
  }
}
