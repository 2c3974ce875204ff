// Every file or directory named on a command line of nydusd and nydus-image, given as something hostile: a FIFO,
// a node of /dev/zero's device, a directory where a file is meant (a file where a directory is meant), a symlink loop, something
// unreadable, and a file that grows while it is read. Each run must end within a generous bound with a one-line
// error naming the file and what is wrong with it (a growing file may also succeed), keep its memory bounded, and
// nydusd must honour SIGTERM while it is starting (issue 8, item 3; spec nydusd-runtime.md, command line).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../helpers/paths.js';
import { isMounted, NYDUS_IMAGE, NYDUSD, removeDir, requireEnv, sleep, tempDir } from '../nydusd/helpers.js';

/** Generous bounds against hangs, not benchmarks. */
const EXIT_BOUND_MS = 20_000;
/** A run whose resident set passes this is killed and fails (Node itself starts at some 50 MiB). */
const RSS_LIMIT_KIB = 400 * 1024;
/** Root reads anything; unreadable cases run without the capabilities that bypass file permissions. */
const NO_DAC = ['setpriv', '--bounding-set', '-dac_override,-dac_read_search', '--inh-caps=-dac_override,-dac_read_search'];

const SAMPLE = path.join(projectRoot, 'bootstrap-samples', 'v6-zstd');
const SAMPLE_BOOT = path.join(SAMPLE, 'bootstrap');
const SAMPLE_BLOB_ID = '658a9ddec51da29f8557ffe2a8d8dbe3d02eaf12f679a342e7fde271e0c77571';

type Kind = 'fifo' | 'devzero' | 'dir' | 'file' | 'loop' | 'unreadable' | 'growing';
/** file: an input read whole; dir: an input directory; output: a file written; outdir: a directory written into */
type Role = 'file' | 'dir' | 'output' | 'outdir';

const KINDS: Record<Role, Kind[]> = {
  file: ['fifo', 'devzero', 'dir', 'loop', 'unreadable', 'growing'],
  // a directory does not "grow while read" the way a stream does: that kind does not apply
  dir: ['fifo', 'devzero', 'file', 'loop', 'unreadable'],
  output: ['fifo', 'devzero', 'dir', 'loop', 'unreadable', 'growing'],
  outdir: ['fifo', 'devzero', 'file', 'loop', 'unreadable'],
};

/** What the one-line error must say for each kind. */
const SAYS: Record<Kind, RegExp> = {
  fifo: /is a FIFO, not a (regular file|directory)/,
  devzero: /is a character device, not a (regular file|directory)/,
  dir: /is a directory, not a regular file/,
  file: /is a regular file, not a directory/,
  loop: /too many levels of symbolic links \(a symlink loop\?\) \(ELOOP\)/,
  unreadable: /permission denied \(EACCES\)/,
  growing: /./,
};

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  /** peak resident set (VmHWM) seen, KiB */
  peakKib: number;
  overLimit: boolean;
  /** nydusd only: it mounted (a growing input may legitimately be accepted) */
  mounted: boolean;
}

/** Peak memory of a running child, from /proc/<pid>/status; kills it when it passes the limit. */
function watchMemory(child: ChildProcess, out: { peakKib: number; overLimit: boolean }): () => void {
  const timer = setInterval(() => {
    let status: string;
    try {
      status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    } catch {
      return; // gone
    }
    const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
    const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    out.peakKib = Math.max(out.peakKib, hwm, rss);
    if (rss > RSS_LIMIT_KIB && !out.overLimit) {
      out.overLimit = true;
      child.kill('SIGKILL');
    }
  }, 20);
  return () => clearInterval(timer);
}

/**
 * Runs a command to its end (or EXIT_BOUND_MS, then SIGKILL and a failure). With `sigterm`, SIGTERM is sent as soon
 * as the process has installed its handler, i.e. while it is starting. A nydusd that mounts is stopped with SIGTERM.
 */
async function runBounded(argv: string[], opts: { noDac?: boolean; sigterm?: boolean; mountpoint?: string }): Promise<Outcome & { elapsed: number; hung: boolean }> {
  const cmd = opts.noDac ? [...NO_DAC, process.execPath, ...argv] : [process.execPath, ...argv];
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d.length + stderr.length > 1 << 20 ? '' : d));
  const mem = { peakKib: 0, overLimit: false };
  const stopWatching = watchMemory(child, mem);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  let done: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void exited.then((r) => (done = r));
  const t0 = Date.now();
  let mounted = false;
  let hung = false;
  try {
    let deadline = t0 + EXIT_BOUND_MS;
    if (opts.sigterm) {
      // nydusd logs its version once its SIGTERM handler is installed (before that, Node's default action would
      // end it and prove nothing); a start-up that hangs before that line gets the signal at the bound
      while (!done && !/ INFO Program Version: /.test(stderr) && Date.now() < deadline) await sleep(5);
      child.kill('SIGTERM');
      deadline = Date.now() + EXIT_BOUND_MS;
    }
    while (!done && Date.now() < deadline) {
      if (opts.mountpoint && !mounted && isMounted(opts.mountpoint)) {
        mounted = true;
        child.kill('SIGTERM'); // accepted: it must still stop cleanly
      }
      await sleep(10);
    }
    if (!done) {
      hung = true;
      child.kill('SIGKILL');
    }
    const r = await exited;
    return { ...r, stderr, ...mem, mounted, elapsed: Date.now() - t0, hung };
  } finally {
    stopWatching();
    if (opts.mountpoint && isMounted(opts.mountpoint)) spawnSync('umount', ['-l', opts.mountpoint]);
  }
}

/** A writer appending 4 KiB of `unit` to `file` every few milliseconds (under 1 MB/s), until stopped. */
function startGrowing(file: string, unit: string): ChildProcess {
  const script = `const fs=require('fs');const fd=fs.openSync(process.argv[1],'a');const b=Buffer.from(process.argv[2],'hex');` +
    `const chunk=Buffer.alloc(4096,b);setInterval(()=>fs.writeSync(fd,chunk),5);`;
  return spawn(process.execPath, ['-e', script, file, Buffer.from(unit).toString('hex')], { stdio: 'ignore' });
}

interface Case {
  tool: 'nydusd' | 'nydus-image';
  /** the input, as the user would name it */
  name: string;
  role: Role;
  /** the command line with `x` as the hostile path; `mnt` a fresh mountpoint, `dir` a fresh scratch dir */
  argv(x: string, env: { mnt: string; dir: string }): string[];
  /** what a valid input holds (for the unreadable and growing kinds of a file input), and what is appended */
  valid?: (dir: string) => string;
  grow?: string;
  /** `x` is the mountpoint */
  isMountpoint?: boolean;
  /** the kinds tried, when not all of the role's (a directory is a valid source where a tar is too) */
  kinds?: Kind[];
}

describe('every CLI input that names a file, given something hostile', () => {
  let work: string;
  let n = 0;
  let cfg: string;
  let srcDir: string;
  let tarFile: string;
  let blobDir: string;
  before(() => {
    requireEnv(['mkfifo', 'mknod', 'setpriv', 'tar']);
    work = tempDir('hostile');
    blobDir = path.join(work, 'blobs');
    mkdirSync(blobDir);
    copyFileSync(path.join(SAMPLE, 'blobs', SAMPLE_BLOB_ID), path.join(blobDir, SAMPLE_BLOB_ID));
    cfg = path.join(work, 'config.json');
    writeFileSync(cfg, configText(path.join(work, 'cache')));
    srcDir = path.join(work, 'src');
    mkdirSync(srcDir);
    writeFileSync(path.join(srcDir, 'hello'), 'hello\n');
    tarFile = path.join(work, 'src.tar');
    assert.equal(spawnSync('tar', ['-cf', tarFile, '-C', srcDir, '.']).status, 0);
  });
  after(() => removeDir(work));

  function configText(workDir: string): string {
    return JSON.stringify({
      device: { backend: { type: 'localfs', config: { dir: blobDir } }, cache: { type: 'blobcache', config: { work_dir: workDir } } },
      mode: 'direct',
    });
  }

  /** a copy of `file` (a thunk for paths only known once `before` has run) */
  const copyOf = (file: string | (() => string)) => (dir: string) => {
    const from = typeof file === 'string' ? file : file();
    const p = path.join(dir, path.basename(from));
    copyFileSync(from, p);
    return p;
  };
  const nydusd = (...rest: string[]) => [NYDUSD, 'fuse', ...rest];
  const image = (...rest: string[]) => [NYDUS_IMAGE, ...rest];
  const out = (dir: string, name: string) => path.join(dir, 'out', name);

  const CASES: Case[] = [
    // nydusd
    { tool: 'nydusd', name: '--config', role: 'file', argv: (x, e) => nydusd('--config', x, '--bootstrap', SAMPLE_BOOT, '--mountpoint', e.mnt), valid: (d) => writeAndReturn(path.join(d, 'c.json'), configText(path.join(d, 'cache'))), grow: ' ' },
    { tool: 'nydusd', name: '--bootstrap', role: 'file', argv: (x, e) => nydusd('--config', cfg, '--bootstrap', x, '--mountpoint', e.mnt), valid: copyOf(SAMPLE_BOOT), grow: '\0' },
    { tool: 'nydusd', name: '--prefetch-files', role: 'file', argv: (x, e) => nydusd('--config', cfg, '--bootstrap', SAMPLE_BOOT, '--prefetch-files', x, '--mountpoint', e.mnt), valid: (d) => writeAndReturn(path.join(d, 'list'), '/data/big.bin\n'), grow: '/hello\n' },
    { tool: 'nydusd', name: '--log-file', role: 'output', argv: (x, e) => nydusd('--config', cfg, '--bootstrap', SAMPLE_BOOT, '--log-file', x, '--mountpoint', e.mnt), grow: 'line\n' },
    { tool: 'nydusd', name: '--localfs-dir', role: 'dir', argv: (x, e) => nydusd('--localfs-dir', x, '--bootstrap', SAMPLE_BOOT, '--mountpoint', e.mnt) },
    { tool: 'nydusd', name: '--mountpoint', role: 'dir', argv: (x) => nydusd('--config', cfg, '--bootstrap', SAMPLE_BOOT, '--mountpoint', x), isMountpoint: true },
    // nydus-image create
    { tool: 'nydus-image', name: 'create SOURCE (directory or tar)', role: 'file', kinds: ['fifo', 'devzero', 'loop', 'unreadable', 'growing'], argv: (x, e) => image('create', '-B', out(e.dir, 'boot'), '-D', out(e.dir, 'blobs'), x), valid: copyOf(() => tarFile), grow: '\0' },
    { tool: 'nydus-image', name: 'create SOURCE (directory)', role: 'dir', argv: (x, e) => image('create', '-t', 'dir-rafs', '-B', out(e.dir, 'boot'), '-D', out(e.dir, 'blobs'), x) },
    { tool: 'nydus-image', name: 'create --bootstrap', role: 'output', argv: (x, e) => image('create', '-B', x, '-D', out(e.dir, 'blobs'), srcDir), grow: '\0' },
    { tool: 'nydus-image', name: 'create --blob', role: 'output', argv: (x, e) => image('create', '-B', out(e.dir, 'boot'), '--blob', x, srcDir), grow: '\0' },
    { tool: 'nydus-image', name: 'create --blob-dir', role: 'outdir', argv: (x, e) => image('create', '-B', out(e.dir, 'boot'), '-D', x, srcDir) },
    { tool: 'nydus-image', name: 'create --parent-bootstrap', role: 'file', argv: (x, e) => image('create', '-p', x, '-B', out(e.dir, 'boot'), '-D', out(e.dir, 'blobs'), srcDir), valid: copyOf(SAMPLE_BOOT), grow: '\0' },
    { tool: 'nydus-image', name: 'create --output-json', role: 'output', argv: (x, e) => image('create', '-J', x, '-B', out(e.dir, 'boot'), '-D', out(e.dir, 'blobs'), srcDir), grow: ' ' },
    // inspect, check
    { tool: 'nydus-image', name: 'inspect -B', role: 'file', argv: (x) => image('inspect', '-B', x), valid: copyOf(SAMPLE_BOOT), grow: '\0' },
    { tool: 'nydus-image', name: 'check -B', role: 'file', argv: (x) => image('check', '-B', x), valid: copyOf(SAMPLE_BOOT), grow: '\0' },
    { tool: 'nydus-image', name: 'check --blob', role: 'file', argv: (x) => image('check', '-B', SAMPLE_BOOT, '--blob', x), valid: copyOf(path.join(SAMPLE, 'blobs', SAMPLE_BLOB_ID)), grow: '\0' },
    { tool: 'nydus-image', name: 'check --blob-dir', role: 'dir', argv: (x) => image('check', '-B', SAMPLE_BOOT, '-D', x) },
    { tool: 'nydus-image', name: 'check --output-json', role: 'output', argv: (x) => image('check', '-B', SAMPLE_BOOT, '-J', x), grow: ' ' },
    // merge
    { tool: 'nydus-image', name: 'merge SOURCE', role: 'file', argv: (x, e) => image('merge', '-B', out(e.dir, 'merged'), x), valid: copyOf(SAMPLE_BOOT), grow: '\0' },
    { tool: 'nydus-image', name: 'merge --parent-bootstrap', role: 'file', argv: (x, e) => image('merge', '-p', x, '-B', out(e.dir, 'merged'), SAMPLE_BOOT), valid: copyOf(SAMPLE_BOOT), grow: '\0' },
    { tool: 'nydus-image', name: 'merge --bootstrap (output)', role: 'output', argv: (x) => image('merge', '-B', x, SAMPLE_BOOT), grow: '\0' },
    // unpack
    { tool: 'nydus-image', name: 'unpack -B', role: 'file', argv: (x, e) => image('unpack', '-B', x, '-D', blobDir, '--output', out(e.dir, 'o.tar')), valid: copyOf(SAMPLE_BOOT), grow: '\0' },
    { tool: 'nydus-image', name: 'unpack --blob', role: 'file', argv: (x, e) => image('unpack', '-B', SAMPLE_BOOT, '--blob', x, '--output', out(e.dir, 'o.tar')), valid: copyOf(path.join(SAMPLE, 'blobs', SAMPLE_BLOB_ID)), grow: '\0' },
    { tool: 'nydus-image', name: 'unpack --blob-dir', role: 'dir', argv: (x, e) => image('unpack', '-B', SAMPLE_BOOT, '-D', x, '--output', out(e.dir, 'o.tar')) },
    { tool: 'nydus-image', name: 'unpack --output', role: 'output', argv: (x) => image('unpack', '-B', SAMPLE_BOOT, '-D', blobDir, '--output', x), grow: '\0' },
  ];

  function writeAndReturn(file: string, text: string): string {
    writeFileSync(file, text);
    return file;
  }

  /** Makes the hostile path of `kind` for `c` in `dir`. */
  function hostile(c: Case, kind: Kind, dir: string): string {
    switch (kind) {
      case 'fifo': {
        const p = path.join(dir, 'fifo');
        assert.equal(spawnSync('mkfifo', [p]).status, 0);
        return p;
      }
      case 'devzero': {
        // a private node of /dev/zero's device (1:5), never /dev/zero itself: a broken build renaming its output
        // over the path (as `create --blob` did) must not replace the machine's /dev/zero
        const p = path.join(dir, 'zero');
        assert.equal(spawnSync('mknod', ['-m', '666', p, 'c', '1', '5']).status, 0, 'mknod');
        return p;
      }
      case 'dir': {
        const p = path.join(dir, 'a-directory');
        mkdirSync(p);
        return p;
      }
      case 'file':
        return writeAndReturn(path.join(dir, 'a-file'), 'not a directory\n');
      case 'loop': {
        symlinkSync('loop-b', path.join(dir, 'loop-a'));
        symlinkSync('loop-a', path.join(dir, 'loop-b'));
        return path.join(dir, 'loop-a');
      }
      case 'unreadable': {
        if (c.role === 'file') {
          const p = c.valid!(dir);
          chmodSync(p, 0);
          return p;
        }
        if (c.role === 'dir' && !c.isMountpoint) {
          const p = path.join(dir, 'locked-dir');
          mkdirSync(p);
          if (c.name === '--localfs-dir') cpSync(blobDir, p, { recursive: true });
          chmodSync(p, 0);
          return p;
        }
        // a mountpoint or an output below a directory that cannot be searched (root may mount on a mode-0 dir)
        const locked = path.join(dir, 'locked');
        mkdirSync(path.join(locked, 'inner'), { recursive: true });
        chmodSync(locked, 0);
        return path.join(locked, 'inner');
      }
      case 'growing': {
        if (c.role === 'file') return c.valid!(dir);
        return writeAndReturn(path.join(dir, 'existing'), '');
      }
    }
  }

  for (const c of CASES) {
    for (const kind of c.kinds ?? KINDS[c.role]) {
      it(`${c.tool} ${c.name}: ${kind}`, async (t) => {
        const dir = path.join(work, `${n++}`);
        const mnt = path.join(dir, 'mnt');
        mkdirSync(mnt, { recursive: true });
        mkdirSync(path.join(dir, 'out'));
        const x = hostile(c, kind, dir);
        const argv = c.argv(x, { mnt, dir });
        const mountpoint = c.tool === 'nydusd' ? (c.isMountpoint ? x : mnt) : undefined;
        const writer = kind === 'growing' ? startGrowing(x, c.grow!) : undefined;
        try {
          const noDac = kind === 'unreadable';
          const r = await runBounded(argv, { noDac, mountpoint });
          const what = `${c.tool} ${argv.slice(1).join(' ')} -> ${r.code}/${r.signal}: ${r.stderr}`;
          t.diagnostic(`exit ${r.code}/${r.signal}${r.mounted ? ' (mounted)' : ''} after ${r.elapsed} ms, peak RSS ${r.peakKib} KiB`);
          assert.equal(r.hung, false, `did not end within ${EXIT_BOUND_MS} ms: ${what}`);
          assert.equal(r.overLimit, false, `resident set passed ${RSS_LIMIT_KIB} KiB: ${what}`);
          assert.ok(r.peakKib < RSS_LIMIT_KIB, `peak ${r.peakKib} KiB: ${what}`);
          assert.doesNotMatch(r.stderr, /\n\s+at .*\.js:\d+/, `no stack trace: ${what}`);
          if (kind === 'growing' && (r.code === 0 || r.mounted)) {
            // accepted: the part read ended where the file was when opened; a mounted nydusd stopped cleanly on SIGTERM
            assert.equal(r.code, 0, what);
          } else {
            assert.equal(r.code, 1, `exit status: ${what}`);
            const line = (c.tool === 'nydusd' ? /^Error: (.*)$/m : /^error: (.*)$/m).exec(r.stderr)?.[1];
            assert.ok(line, `an error line: ${what}`);
            assert.ok(line.includes(x), `the error names ${x}: ${line}`);
            assert.match(line, SAYS[kind], what);
          }
          if (c.tool === 'nydusd' && kind !== 'growing') {
            // the same start-up, with SIGTERM as soon as the handler is in place: it must end promptly either way
            const t = await runBounded(argv, { noDac, sigterm: true, mountpoint });
            assert.equal(t.hung, false, `ignored SIGTERM while starting: ${t.stderr}`);
            assert.ok(t.code === 0 || t.code === 1, `exit after SIGTERM: ${t.code}/${t.signal}: ${t.stderr}`);
            assert.ok(!mountpoint || !isMounted(mountpoint), 'no mount left behind');
          }
        } finally {
          writer?.kill('SIGKILL');
          if (existsSync(path.join(dir, 'locked'))) chmodSync(path.join(dir, 'locked'), 0o700);
        }
      });
    }
  }
});
