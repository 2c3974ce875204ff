// FUSE session on the real kernel (/dev/fuse, as root): mount, the read-only operations, paging, concurrency,
// interrupts, unmount detection and resume on an inherited fd. Every command that touches the mount runs in a
// child process asynchronously: the filesystem is served by this process's event loop.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { abortConnection, MNT_DETACH, umount } from '../../src/fuse/device.js';
import { InitFlag } from '../../src/fuse/protocol.js';
import { Session } from '../../src/fuse/session.js';
import { buildTestFs, content, FILE_SIZES, type MemFs } from './memfs.js';

const here = path.dirname(fileURLToPath(import.meta.url));

interface RunResult { code: number; stdout: string; stderr: string }
function run(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: opts.timeoutMs ?? 20_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function ok(cmd: string, ...args: string[]): Promise<string> {
  const r = await run(cmd, args);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

function isMounted(mnt: string): boolean {
  return fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === mnt);
}

/**
 * Last-resort cleanup: abort the connection (wakes anything blocked on it), then a lazy umount2, which never talks
 * to the daemon, so neither can hang on a dead or busy server.
 */
function forceUnmount(mnt: string): void {
  if (isMounted(mnt)) {
    try {
      abortConnection(mnt);
    } catch (e) {
      process.stderr.write(`cannot abort the FUSE connection at ${mnt}: ${(e as Error).message}\n`);
    }
  }
  while (isMounted(mnt)) {
    try {
      umount(mnt, MNT_DETACH);
    } catch {
      break;
    }
  }
}

/** The kernel's id of the mount at `mnt` (/proc/self/mountinfo), and how many mounts sit there. */
function mountIds(mnt: string): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === mnt).map((l) => l.split(' ')[0]!);
}

function tempMountpoint(): string {
  return fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'nydus-fuse-')));
}

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

before(() => {
  // a missing device is a broken test machine, not a reason to skip
  assert.ok(fs.existsSync('/dev/fuse'), '/dev/fuse is missing: the FUSE tests need the fuse kernel module');
  assert.equal(process.getuid?.(), 0, 'the FUSE tests mount filesystems and must run as root');
});

describe('FUSE session on a mounted in-memory filesystem', () => {
  let mnt: string;
  let memfs: MemFs;
  let session: Session;

  before(async () => {
    mnt = tempMountpoint();
    // the slow file's reads end only when interrupted (the delay is a mere backstop)
    memfs = buildTestFs({ withOpen: true, slowDelayMs: 600_000 });
    session = await Session.mount(memfs, { mountpoint: mnt, readAheadKb: 1024 });
  });

  after(async () => {
    try {
      if (session && !session.isClosed) await session.unmount({ lazy: true });
    } finally {
      forceUnmount(mnt);
      fs.rmdirSync(mnt);
    }
  });

  it('is mounted read-only with the options nydusd uses, and negotiated 1 MiB requests', () => {
    const line = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === mnt);
    assert.ok(line, 'mount missing from /proc/self/mounts');
    const [source, , type, options] = line.split(' ');
    assert.equal(source, 'rafs');
    assert.equal(type, 'fuse');
    for (const o of ['ro', 'nosuid', 'nodev', 'noatime', 'user_id=0', 'group_id=0', 'default_permissions', 'allow_other', 'max_read=1052672']) {
      assert.ok(options!.split(',').includes(o), `${o} missing from ${options}`);
    }
    const n = session.negotiated!;
    assert.equal(n.protoMajor, 7);
    assert.ok(n.protoMinor >= 23);
    assert.equal(n.maxPages, 256);
    assert.equal(n.maxWrite, 1 << 20);
    for (const f of [InitFlag.ASYNC_READ, InitFlag.PARALLEL_DIROPS, InitFlag.MAX_PAGES, InitFlag.DO_READDIRPLUS, InitFlag.READDIRPLUS_AUTO, InitFlag.CACHE_SYMLINKS]) {
      assert.ok(n.flags & f, `flag ${f} not negotiated`);
    }
  });

  it('stat, ls -la and readlink', async () => {
    const s = (await ok('stat', '-c', '%s %f %h %u %g %Y %F', path.join(mnt, 'one'))).trim();
    assert.equal(s, '1 81a4 1 0 0 1700000000 regular file');
    const root = (await ok('stat', '-c', '%f %a', mnt)).trim();
    assert.equal(root, '41ed 755');
    const ls = await ok('ls', '-la', mnt);
    for (const name of [...Object.keys(FILE_SIZES), 'tagged', 'big', 'parallel', 'slow', 'sub']) assert.match(ls, new RegExp(` ${name.replace('+', '\\+')}\\n`));
    assert.match(ls, / link -> mib\+1\n/);
    assert.equal((await ok('readlink', path.join(mnt, 'link'))).trim(), 'mib+1');
    assert.equal((await ok('cat', path.join(mnt, 'sub', 'nested'))), 'nested file\n');
    const missing = await run('stat', [path.join(mnt, 'does-not-exist')]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /No such file or directory/);
  });

  it('caches a negative entry (node id 0) like RAFS', async () => {
    const lookups = session.opCounts.get('LOOKUP') ?? 0;
    for (let i = 0; i < 2; i++) {
      const r = await run('stat', [path.join(mnt, 'neg-missing')]);
      assert.match(r.stderr, /No such file or directory/);
    }
    assert.equal(session.opCounts.get('LOOKUP') ?? 0, lookups + 1);
  });

  it('getxattr and listxattr', async () => {
    const py = `import os,sys\np=sys.argv[1]\nprint(sorted(os.listxattr(p)))\nprint(os.getxattr(p,'user.color').decode())\nprint(len(os.getxattr(p,'user.empty')))\ntry:\n  os.getxattr(p,'user.none')\nexcept OSError as e:\n  print(e.errno)`;
    const out = (await ok('python3', '-c', py, path.join(mnt, 'tagged'))).trim().split('\n');
    assert.deepEqual(out, ["['user.color', 'user.empty']", 'blue', '0', String(os.constants.errno.ENODATA)]);
  });

  it('reads files of 0, 1, 4095, 1 MiB + 1 and 8 MiB bytes intact (md5)', async () => {
    for (const [name, size] of Object.entries(FILE_SIZES)) {
      const sum = (await ok('md5sum', path.join(mnt, name))).split(' ')[0];
      assert.equal(sum, md5(content(name, size)), `${name} content differs`);
    }
    // through the symlink too, and once more from the page cache
    assert.equal((await ok('md5sum', path.join(mnt, 'link'))).split(' ')[0], md5(content('mib+1', FILE_SIZES['mib+1']!)));
    assert.ok(session.maxReadSize > 128 * 1024, `largest READ was ${session.maxReadSize} bytes; max_pages should allow 1 MiB`);
  });

  it('lists a 3000-entry directory over several pages', async () => {
    const before = session.opCounts.get('READDIRPLUS') ?? 0;
    const names = (await ok('ls', '-f', path.join(mnt, 'big'))).trim().split('\n');
    assert.equal(names.length, 3002);
    assert.deepEqual(names.slice(0, 3), ['.', '..', 'entry-0000-with-a-longer-name']);
    assert.equal(names[3001], 'entry-2999-with-a-longer-name');
    const pages = (session.opCounts.get('READDIRPLUS') ?? 0) + (session.opCounts.get('READDIR') ?? 0) - before;
    assert.ok(pages > 1, `expected paging, saw ${pages} readdir requests`);
    const ls = (await ok('ls', '-l', path.join(mnt, 'big'))).trim().split('\n');
    assert.equal(ls.length, 3001); // "total" line + entries
  });

  it('statfs', async () => {
    const out = (await ok('stat', '-f', '-c', '%b %f %a %c %S %l', mnt)).trim();
    assert.equal(out, `1000 0 0 ${memfs.nodes.size} 512 255`);
  });

  it('refuses writes with EROFS', async () => {
    for (const args of [['touch', path.join(mnt, 'new')], ['mkdir', path.join(mnt, 'dir')], ['sh', '-c', `echo x >> ${path.join(mnt, 'one')}`], ['rm', path.join(mnt, 'one')]]) {
      const r = await run(args[0]!, args.slice(1));
      assert.notEqual(r.code, 0, `${args.join(' ')} succeeded`);
      assert.match(r.stderr, /Read-only file system/, args.join(' '));
    }
  });

  it('serves 8 reads concurrently: each waits in the filesystem until all 8 are there', async () => {
    // served one at a time, each READ would give up after 10 s: 120 s lets that show as the failure below
    const runs = await Promise.all([...Array(8).keys()].map((i) => run('md5sum', [path.join(mnt, 'parallel', `p${i}`)], { timeoutMs: 120_000 })));
    runs.forEach((r, i) => assert.equal(r.stdout.split(' ')[0], md5(content(`p${i}`, 4096)), `p${i}: ${r.stderr}`));
    // served one at a time, the first READ would have waited for the others in vain (memfs gives up after 10 s)
    assert.equal(memfs.barrierGaveUp, 0, 'READs gave up waiting for the others: they were not served concurrently');
    assert.equal(memfs.barrierPeak, 8);
  });

  it('an interrupted slow read (reader killed) leaves the session healthy', async () => {
    const aborted = memfs.abortedReads;
    const child = spawn('cat', [path.join(mnt, 'slow')], { stdio: 'ignore' });
    let gone = false;
    child.on('exit', () => (gone = true));
    await waitFor(() => memfs.pendingReads > 0, 5000, 'the slow READ to arrive');
    child.kill('SIGKILL');
    // the killed reader stays in the kernel until its READ is answered, and the handler alone would answer after
    // 600 s: it goes away only because the kernel's INTERRUPT made the session answer EINTR (30 s: a hang guard)
    await waitFor(() => gone, 30_000, 'the killed reader to go away (its READ was not interrupted)');
    await waitFor(() => memfs.abortedReads > aborted, 5000, 'the read handler to see the interrupt');
    assert.ok((session.opCounts.get('INTERRUPT') ?? 0) >= 1);
    assert.equal((await ok('cat', path.join(mnt, 'sub', 'nested'))), 'nested file\n');
    assert.equal((await ok('md5sum', path.join(mnt, 'page-1'))).split(' ')[0], md5(content('page-1', 4095)));
  });

  it('invalidation notifications make the kernel ask again', async () => {
    await ok('stat', path.join(mnt, 'one'));
    const lookups = session.opCounts.get('LOOKUP') ?? 0;
    await ok('stat', path.join(mnt, 'one'));
    assert.equal(session.opCounts.get('LOOKUP') ?? 0, lookups, 'the dentry should be cached');
    await session.notifyInvalEntry(1n, 'one');
    await ok('stat', path.join(mnt, 'one'));
    assert.equal(session.opCounts.get('LOOKUP') ?? 0, lookups + 1);
    const ino = (await memfs.lookup(1n, Buffer.from('one'))).nodeId;
    const getattrs = session.opCounts.get('GETATTR') ?? 0;
    await session.notifyInvalInode(ino, -1n, 0n);
    await ok('stat', path.join(mnt, 'one'));
    assert.equal(session.opCounts.get('GETATTR') ?? 0, getattrs + 1);
    await assert.rejects(session.notifyInvalEntry(1n, 'never-looked-up'), { code: 'ENOENT' });
  });

  it('unmount() closes the session', async () => {
    const closed = new Promise<void>((r) => session.once('closed', r));
    await session.unmount();
    await closed;
    assert.ok(!isMounted(mnt));
    assert.ok(session.isClosed);
  });
});

describe('READDIR and READDIRPLUS paging, zero-message open', () => {
  for (const mode of ['never', 'always'] as const) {
    it(`readdirplus=${mode}: 3000 entries via ls, files readable without OPEN`, async () => {
      const mnt = tempMountpoint();
      let session: Session | undefined;
      try {
        session = await Session.mount(buildTestFs(), { mountpoint: mnt, readdirplus: mode });
        const names = (await ok('ls', '-f', path.join(mnt, 'big'))).trim().split('\n');
        assert.equal(names.length, 3002);
        assert.equal(new Set(names).size, 3002);
        const op = mode === 'never' ? 'READDIR' : 'READDIRPLUS';
        assert.ok((session.opCounts.get(op) ?? 0) > 1, `${op} count ${session.opCounts.get(op)}`);
        if (mode === 'never') assert.equal(session.opCounts.get('READDIRPLUS') ?? 0, 0);
        const ls = (await ok('ls', '-l', path.join(mnt, 'big'))).trim().split('\n');
        assert.equal(ls.length, 3001);
        assert.match(ls[1]!, /^-rw-r--r-- 1 root root 2 .* entry-0000-with-a-longer-name$/);
        assert.equal((await ok('md5sum', path.join(mnt, 'mib+1'))).split(' ')[0], md5(content('mib+1', FILE_SIZES['mib+1']!)));
        // the filesystem has no open(): the first OPEN got ENOSYS and the kernel stopped sending them
        assert.ok((session.opCounts.get('OPEN') ?? 0) <= 1);
        await session.unmount();
      } finally {
        forceUnmount(mnt);
        fs.rmdirSync(mnt);
      }
    });
  }
});

describe('stop, resume on an inherited fd in a child process, external umount', () => {
  it('a child resumes the same mount without INIT, then exits cleanly when it is unmounted', async () => {
    const mnt = tempMountpoint();
    let child: ReturnType<typeof spawn> | undefined;
    try {
      const session = await Session.mount(buildTestFs({ withOpen: true }), { mountpoint: mnt });
      // cache some dentries and attributes in the kernel: the successor must honour their node ids
      assert.equal((await ok('cat', path.join(mnt, 'sub', 'nested'))), 'nested file\n');
      assert.equal((await ok('stat', '-c', '%s', path.join(mnt, '8mib'))).trim(), String(8 << 20));
      const mountBefore = mountIds(mnt);
      assert.equal(mountBefore.length, 1);
      await session.stop();
      assert.ok(isMounted(mnt), 'stop() must not unmount');
      const state = session.state();
      assert.equal(JSON.parse(JSON.stringify(state)).maxPages, 256);

      // requests made while nobody serves wait in the kernel and are answered by the successor
      const waiting = run('md5sum', [path.join(mnt, 'page-1')]);
      child = spawn(process.execPath, [path.join(here, 'serve-child.js'), 'resume'], {
        stdio: ['ignore', 'pipe', 'pipe', session.fd],
        env: { ...process.env, FUSE_STATE: JSON.stringify(state) },
      });
      fs.closeSync(session.fd); // the child holds the connection now
      let out = '';
      let err = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const exit = new Promise<number | null>((r) => child!.on('exit', (code) => r(code)));
      await waitFor(() => out.includes('\n') || child!.exitCode !== null, 10_000, 'the child to resume');
      assert.match(out, /^ready /, `child failed: ${err}`);
      // without INIT: the child got none, and serves the very mount the parent made (no new mount on top)
      assert.equal(JSON.parse(out.slice('ready '.length, out.indexOf('\n'))).inits, 0, 'the resumed session received an INIT');
      assert.deepEqual(mountIds(mnt), mountBefore, 'the child serves another mount than the one it resumed');

      const w = await waiting;
      assert.equal(w.code, 0, w.stderr);
      assert.equal(w.stdout.split(' ')[0], md5(content('page-1', 4095)));
      assert.equal((await ok('cat', path.join(mnt, 'sub', 'nested'))), 'nested file\n');
      assert.equal((await ok('md5sum', path.join(mnt, '8mib'))).split(' ')[0], md5(content('8mib', 8 << 20)));
      assert.equal((await ok('ls', '-f', path.join(mnt, 'big'))).trim().split('\n').length, 3002);

      // external umount: the child sees ENODEV, reports 'closed' and exits by itself with status 0
      await ok('umount', mnt);
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([exit, new Promise<string>((r) => (timer = setTimeout(() => r('timeout'), 10_000)))]);
      clearTimeout(timer);
      assert.equal(code, 0, `child exit: ${String(code)} ${err}`);
      const counts = JSON.parse(/\nclosed (.*)\n/.exec(out)?.[1] ?? 'null') as Record<string, number> | null;
      assert.ok(counts, `no 'closed' line: ${out}`);
      assert.equal(counts.INIT, undefined, 'the resumed session received an INIT');
      assert.ok((counts.READ ?? 0) > 0 && (counts.LOOKUP ?? 0) + (counts.READDIRPLUS ?? 0) > 0, JSON.stringify(counts));
    } finally {
      if (child && child.exitCode === null) child.kill('SIGKILL');
      forceUnmount(mnt);
      fs.rmdirSync(mnt);
    }
  });
});
