// The input trees of the benchmarks, generated once into the work directory and reused (a `.done` marker
// says a tree is complete). All come from this machine's own files, so the content is realistic
// (ELF libraries, docs, text) and nothing is downloaded.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { sh } from './common.js';

const MiB = 1024 * 1024;

/** Copies `src` into `dst` in sorted depth-first order; regular files stop being copied once `budget` bytes are used. */
function copyTree(src: string, dst: string, budget: { left: number; maxFile: number }): void {
  fs.mkdirSync(dst, { recursive: true });
  const names = fs.readdirSync(src).sort();
  for (const name of names) {
    const s = path.join(src, name);
    const d = path.join(dst, name);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(s);
    } catch {
      continue;
    }
    if (st.isDirectory()) copyTree(s, d, budget);
    else if (st.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(s), d);
    else if (st.isFile()) {
      if (budget.left <= 0) continue;
      if (st.size <= budget.maxFile) {
        fs.copyFileSync(s, d);
      } else {
        // keep the head only: the metadata tree wants many entries, not bytes
        const fd = fs.openSync(s, 'r');
        const buf = Buffer.alloc(budget.maxFile);
        const n = fs.readSync(fd, buf, 0, buf.length, 0);
        fs.closeSync(fd);
        fs.writeFileSync(d, buf.subarray(0, n));
      }
      budget.left -= Math.min(st.size, budget.maxFile);
    }
  }
}

function ready(dir: string): boolean {
  return fs.existsSync(path.join(dir, '..', `${path.basename(dir)}.done`));
}

function markReady(dir: string): void {
  fs.writeFileSync(path.join(dir, '..', `${path.basename(dir)}.done`), new Date().toISOString());
}

/**
 * "mixed": ~500 MB of container-like content: all of /usr/share/doc, then /usr/lib/x86_64-linux-gnu
 * (libraries, in sorted order) until the budget is used; symlinks and directories are always kept.
 */
export function mixedTree(work: string, mb = 500): string {
  const dir = path.join(work, 'trees', 'mixed');
  if (ready(dir)) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  const budget = { left: mb * 1e6, maxFile: Infinity };
  copyTree('/usr/share/doc', path.join(dir, 'usr/share/doc'), budget);
  copyTree('/usr/lib/x86_64-linux-gnu', path.join(dir, 'usr/lib/x86_64-linux-gnu'), budget);
  markReady(dir);
  return dir;
}

/**
 * "meta": a copy of the structure of /usr/share (≈55,000 entries: directories, files, symlinks with
 * their real names and depths), every regular file cut to its first 4 KiB so the tree stays small.
 */
export function metaTree(work: string): string {
  const dir = path.join(work, 'trees', 'meta');
  if (ready(dir)) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  copyTree('/usr/share', path.join(dir, 'usr/share'), { left: Infinity, maxFile: 4096 });
  markReady(dir);
  return dir;
}

/**
 * "big": `count` files of `sizeMiB` each, cut from one tar stream of /usr/lib (ELF, Python, Perl ...):
 * large, realistic, compressible. Default 6 × 192 MiB = 1.125 GiB.
 */
export function bigTree(work: string, count = 6, sizeMiB = 192): string {
  const dir = path.join(work, 'trees', 'big');
  if (ready(dir)) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const total = count * sizeMiB;
  sh(`tar cf - --sort=name /usr/lib 2>/dev/null | head -c ${total * MiB} | split -d -a 2 -b ${sizeMiB}M - ${dir}/part-`);
  const parts = fs.readdirSync(dir);
  if (parts.length !== count || parts.some((p) => fs.statSync(path.join(dir, p)).size !== sizeMiB * MiB)) {
    throw new Error(`big tree: expected ${count} files of ${sizeMiB} MiB in ${dir}, got ${parts.length} (is /usr/lib large enough?)`);
  }
  markReady(dir);
  return dir;
}

/** Writes `files` (path relative to `dir` -> content) below `dir`, directories as needed. */
function writeFiles(dir: string, files: Iterable<[string, string]>): void {
  const made = new Set<string>();
  for (const [rel, content] of files) {
    const parent = path.dirname(path.join(dir, rel));
    if (!made.has(parent)) {
      fs.mkdirSync(parent, { recursive: true });
      made.add(parent);
    }
    fs.writeFileSync(path.join(dir, rel), content);
  }
}

/** "flat": one directory `big/` of `count` files of a few bytes (`f000000` holds "0\n"): the shape of issue 8 item 2. */
export function flatTree(work: string, count = 200_000): string {
  const dir = path.join(work, 'trees', 'flat');
  if (ready(dir)) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  writeFiles(dir, (function* () {
    for (let i = 0; i < count; i++) yield [`big/f${String(i).padStart(6, '0')}`, `${i}\n`] as [string, string];
  })());
  markReady(dir);
  return dir;
}

/**
 * "tiny": a node_modules-like layer of `packages` × `perPackage` files of a few bytes: each package
 * `node_modules/pkgNNNN/` has a package.json and `lib/mNN.js` modules.
 */
export function tinyTree(work: string, packages = 1000, perPackage = 100): string {
  const dir = path.join(work, 'trees', 'tiny');
  if (ready(dir)) return dir;
  fs.rmSync(dir, { recursive: true, force: true });
  writeFiles(dir, (function* () {
    for (let p = 0; p < packages; p++) {
      const pkg = `node_modules/pkg${String(p).padStart(4, '0')}`;
      yield [`${pkg}/package.json`, `{"name":"pkg${p}"}\n`] as [string, string];
      for (let m = 1; m < perPackage; m++) yield [`${pkg}/lib/m${String(m).padStart(2, '0')}.js`, `x=${p * perPackage + m}\n`] as [string, string];
    }
  })());
  markReady(dir);
  return dir;
}

/**
 * "python3 minbase": the tar of a Debian root filesystem made by `mmdebstrap --variant=minbase --include=python3
 * bookworm` (Debian's mirror, the only tree fetched from the network; built once into --work). Issue 11's image for
 * "bytes fetched to start python3" and for the OCI-image comparisons.
 */
export function pythonRootfsTar(work: string): string {
  const tar = path.join(work, 'trees', 'python3-minbase.tar');
  if (fs.existsSync(`${tar}.done`)) return tar;
  if (spawnSync('mmdebstrap', ['--version']).status !== 0) throw new Error('mmdebstrap is missing (scripts/setup.sh installs it)');
  fs.mkdirSync(path.dirname(tar), { recursive: true });
  console.log('building the python3 minbase root filesystem with mmdebstrap (once)...');
  sh(`mmdebstrap --quiet --variant=minbase --include=python3 bookworm ${tar}`);
  fs.writeFileSync(`${tar}.done`, new Date().toISOString());
  return tar;
}
