// Build information in the reference's shape. The snapshotter compares `Git Commit:` of `nydusd --version`
// with `version.git_commit` of the API, so both come from here.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BuildInfo {
  package_ver: string;
  git_commit: string;
  build_time: string;
  profile: string;
  rustc: string;
}

/** The directory of package.json above this module: where api/ and .git are. */
export function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
  return dir;
}

/**
 * Reads HEAD without running git: `.git/HEAD`, then the ref it names (loose or packed). In a linked worktree `.git`
 * is a file naming the worktree's git directory (`gitdir: ...`), whose HEAD is its own while its refs live in the
 * repository's common directory (named by its `commondir` file).
 */
export function gitCommit(root: string): string {
  try {
    let gitDir = path.join(root, '.git');
    if (fs.statSync(gitDir).isFile()) {
      const link = fs.readFileSync(gitDir, 'utf8').trim();
      if (!link.startsWith('gitdir: ')) return 'unknown';
      gitDir = path.resolve(root, link.slice('gitdir: '.length));
    }
    const commonFile = path.join(gitDir, 'commondir');
    const commonDir = fs.existsSync(commonFile) ? path.resolve(gitDir, fs.readFileSync(commonFile, 'utf8').trim()) : gitDir;
    const head = fs.readFileSync(path.join(gitDir, 'HEAD'), 'utf8').trim();
    if (!head.startsWith('ref: ')) return head;
    const ref = head.slice(5);
    for (const dir of [gitDir, commonDir]) {
      const loose = path.join(dir, ref);
      if (fs.existsSync(loose)) return fs.readFileSync(loose, 'utf8').trim();
    }
    const packed = fs.readFileSync(path.join(commonDir, 'packed-refs'), 'utf8');
    const line = packed.split('\n').find((l) => l.endsWith(` ${ref}`));
    if (line) return line.split(' ')[0]!;
  } catch {
    // not a checkout
  }
  return 'unknown';
}

let cached: BuildInfo | undefined;

export function buildInfo(): BuildInfo {
  if (cached) return cached;
  const root = projectRoot();
  let version = '0.0.0';
  let built = new Date(0);
  try {
    version = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version;
    built = fs.statSync(fileURLToPath(import.meta.url)).mtime;
  } catch {
    // keep defaults
  }
  cached = { package_ver: `v${version}`, git_commit: gitCommit(root), build_time: built.toISOString(), profile: 'release', rustc: `node ${process.version}` };
  return cached;
}

/** `nydusd --version` output, as the reference prints it (the block starts with a carriage return). */
export function versionText(program: string): string {
  const b = buildInfo();
  return `${program} \rVersion: \t${b.package_ver}\nGit Commit: \t${b.git_commit}\nBuild Time: \t${b.build_time}\nProfile: \t${b.profile}\nRustc: \t\t${b.rustc}\n`;
}
