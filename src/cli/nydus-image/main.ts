// The nydus-image command dispatcher, separate from the executable so tests can run it in-process.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from './args.js';
import { io } from './io.js';
import { createUsage, runCreate } from './create.js';
import { mergeUsage, runMerge } from './merge.js';
import { inspectUsage, runInspect } from './inspect.js';
import { checkUsage, runCheck } from './check.js';
import { runUnpack, unpackUsage } from './unpack.js';

const MAIN_USAGE = `Usage: nydus-image <COMMAND> [OPTIONS]

Build, analyze, inspect or validate RAFS filesystems/Nydus accelerated container images

Commands:
  create   Create RAFS filesystems from directories, tar files or OCI image layers
  merge    Merge multiple bootstraps into an overlaid bootstrap
  inspect  Inspect RAFS filesystem metadata (superblock, blobs, tree)
  stat     Alias of inspect
  check    Validate RAFS filesystem metadata, and the data blobs when given
  unpack   Unpack a RAFS filesystem to a tar file

Options:
  -h, --help     Print help
  -V, --version  Print version
`;

const USAGES: Record<string, () => string> = {
  create: createUsage,
  merge: mergeUsage,
  inspect: () => inspectUsage('inspect'),
  stat: () => inspectUsage('stat'),
  check: checkUsage,
  unpack: unpackUsage,
};

function projectRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
}

function versionText(): string {
  let version = '0.0.0';
  try {
    version = JSON.parse(readFileSync(path.join(projectRoot(), 'package.json'), 'utf8')).version;
  } catch {
    // keep the placeholder: the version text must never fail
  }
  let commit = process.env.NYDUS_GIT_COMMIT ?? '';
  if (!commit) {
    try {
      commit = execFileSync('git', ['-C', projectRoot(), 'rev-parse', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    } catch {
      commit = 'unknown';
    }
  }
  return [
    `Version: \tv${version}`,
    `Git Commit: \t${commit}`,
    `Build Time: \tunknown`,
    `Profile: \trelease`,
    `Runtime: \tnode ${process.version}`,
    '',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '-h' || cmd === '--help' || cmd === 'help') {
    io.stdout(MAIN_USAGE);
    return cmd === undefined ? 1 : 0;
  }
  if (cmd === '-V' || cmd === '--version') {
    io.stdout(versionText());
    return 0;
  }
  const help = USAGES[cmd];
  if (!help) throw new UsageError(`unknown command '${cmd}' (expected create, merge, inspect, stat, check or unpack)`);
  if (rest.includes('-h') || rest.includes('--help')) {
    io.stdout(help());
    return 0;
  }
  switch (cmd) {
    case 'create': return runCreate(rest);
    case 'merge': return runMerge(rest);
    case 'inspect': return runInspect(rest, 'inspect');
    case 'stat': return runInspect(rest, 'stat');
    case 'check': return runCheck(rest);
    default: return runUnpack(rest);
  }
}

/** The message a failed command prints: usage errors point at --help, others are one clear line. */
export function errorText(e: unknown): string {
  if (e instanceof UsageError) return `error: ${e.message}\n\nRun 'nydus-image --help' for usage.\n`;
  let text = `error: ${e instanceof Error ? e.message : String(e)}\n`;
  if (process.env.NYDUS_DEBUG && e instanceof Error) text += `${e.stack}\n`;
  return text;
}
