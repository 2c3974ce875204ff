// nydusify (the reference's contrib/nydusify, anchors.md 5.3): `convert`, `check` and `mount`, with the reference's
// flag names, and `preheat` (Dragonfly, p2p-seeds.md 1-2; our extension). Usage errors exit 2; every other failure is one line `Error: ...` on stderr (the check's list of
// problems follows it) and exit 1.
import { parseArgv, UsageError, type OptionSpec, type ParsedArgv } from '../../argv.js';
import type { Log } from '../../log.js';
import { Logger } from '../../service/logger.js';
import type { LogLevel } from '../../service/args.js';
import { runCheck } from './check.js';
import { runConvert } from './convert.js';
import { runMount } from './mount.js';
import { runPreheat } from './preheat.js';

export const USAGE = `Usage: nydusify <COMMAND> [OPTIONS]

Commands:
  convert --source REF --target REF   pull an OCI/Docker image, convert it to a Nydus image, push it
  check --target REF [--source REF]   validate a Nydus image (and compare its files with the source's)
  mount --target REF --mount-path DIR mount a Nydus image with nydusd until SIGINT/SIGTERM
  preheat --target REF --dragonfly-manager URL
                                      warm a Nydus image's blobs on a Dragonfly P2P network

References: registry references (host[:port]/repo[:tag][@digest]) or oci:DIR[:TAG] for an OCI image layout.

Options (convert):
  --source REF, --target REF          source and target images
  --source-insecure, --target-insecure  allow plain-HTTP / unverified-TLS registries
  --platform OS/ARCH                  platform to pick from a manifest list (default: this machine's)
  --fs-version 5|6                    RAFS version (default 6)
  --compressor zstd|lz4_block|none    chunk compressor (default zstd)
  --chunk-size 0x100000               chunk size, a power of two from 0x1000 to 0x1000000
  --work-dir DIR                      scratch directory (default: the system's temp directory)
  --log-level LEVEL                   trace, debug, info, warn or error (default info)
  --preheat                           preheat the pushed image through Dragonfly (with the options of preheat)

Options (check): --source, --target, --source-insecure, --target-insecure, --platform, --work-dir, --log-level
Options (mount): --target, --target-insecure, --mount-path (default ./image-fs), --backend-type, --backend-config,
  --backend-config-file, --platform, --work-dir, --log-level
Options (preheat): --target, --target-insecure, --platform, --log-level and
  --dragonfly-manager URL             the Dragonfly manager (http://host:port)
  --dragonfly-token TOKEN             personal access token for the manager's Open API
  --dragonfly-api oapi|legacy         Open API jobs (/oapi/v1/jobs, default) or SuperNode-style preheats (alias --api)
  --dragonfly-scope SCOPE             single_seed_peer, all_seed_peers or all_peers (Open API)
  --dragonfly-cluster-id ID           a scheduler cluster to preheat in, repeatable (default: all; Open API)
  --preheat-type file|image           one job per blob (default) or one job for the manifest
  --preheat-timeout DURATION          bound of the whole preheat: 90, 90s, 500ms, 10m (default 10m; alias --timeout)
Registry credentials come from $DOCKER_CONFIG/config.json or ~/.docker/config.json (auths.<host>.auth).
`;

export const COMMON: OptionSpec[] = [
  { long: 'log-level', value: '<level>' },
  { long: 'work-dir', value: '<dir>' },
  { long: 'platform', value: '<os/arch>' },
  { long: 'help', short: 'h', repeatable: true },
];

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;

/** Parses a command's options; `--help` prints the usage. */
export function parseCommand(argv: string[], specs: OptionSpec[], command: string): ParsedArgv {
  const p = parseArgv(argv, [...COMMON, ...specs]);
  if (p.positionals.length > 0) throw new UsageError(`${command}: unexpected argument '${p.positionals[0]}'`);
  return p;
}

export function opt(p: ParsedArgv, name: string): string | undefined {
  return p.options.get(name)?.[0];
}

export function required(p: ParsedArgv, name: string, command: string): string {
  const v = opt(p, name);
  if (v === undefined || v === '') throw new UsageError(`${command}: the option '--${name}' is required`);
  return v;
}

export function flag(p: ParsedArgv, name: string): boolean {
  return p.options.has(name);
}

export function makeLog(p: ParsedArgv): Log {
  const level = opt(p, 'log-level') ?? 'info';
  if (!(LEVELS as readonly string[]).includes(level)) throw new UsageError(`invalid log level '${level}' (expected one of: ${LEVELS.join(', ')})`);
  const logger = new Logger(level as LogLevel);
  return (l, m) => logger.log(l, m);
}

export async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  switch (command) {
    case 'convert':
      return runConvert(rest);
    case 'check':
      return runCheck(rest);
    case 'mount':
      return runMount(rest);
    case 'preheat':
      return runPreheat(rest);
    default:
      throw new UsageError(`unknown command '${command}' (expected convert, check, mount or preheat)`);
  }
}
