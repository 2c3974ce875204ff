// Acceptance 5: bad input gets a clear message, the documented exit code and never a hang; broken blobs
// fail reads with EIO while the metadata keeps working; signals, --version and --log-file behave.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, truncateSync, writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fixture, projectRoot } from '../helpers/paths.js';
import { loadImageFile } from '../image/helpers.js';
import { cleanupDaemons, Daemon, daemonMetrics, isMounted, mountImage, readChunkMap, removeDir, requireEnv, runNydusd, startHungBlobServer, tempDir, waitFor, writeConfig } from './helpers.js';

const SAMPLES = path.join(projectRoot, 'bootstrap-samples');

/**
 * Reads a file of the mount in a child process (a read that hangs must fail the test, not freeze it: after 10 s,
 * far above any answer expected here, it is killed and reported as 'HANG'), returning 'ok', the errno name it
 * failed with, or 'HANG', and how long it took.
 */
function tryRead(file: string): { result: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync('cat', [file], { encoding: 'buffer', timeout: 10_000, maxBuffer: 1 << 26 });
  const ms = Date.now() - t0;
  if (r.signal) return { result: 'HANG', ms };
  if (r.status === 0) return { result: 'ok', ms };
  const err = r.stderr.toString();
  return { result: /Input\/output error/.test(err) ? 'EIO' : err.trim(), ms };
}


/** Metadata of the sample tree is served without any blob. */
function checkMetadata(mnt: string): void {
  assert.deepEqual(readdirSync(path.join(mnt, 'data')).sort(), ['big.bin', 'dangling-link', 'empty', 'nested', 'numbers.txt', 'readme-hardlink', 'readme-link']);
  assert.equal(statSync(path.join(mnt, 'data/big.bin')).size, 0x100000 + 1000);
  assert.equal(readlinkSync(path.join(mnt, 'hello')), 'bin/hello.sh');
  assert.equal(lstatSync(path.join(mnt, 'docs/readme.txt')).mode, 0o100644);
}

describe('nydusd with bad input', () => {
  let work: string;
  let n = 0;
  const fresh = (name: string) => {
    const dir = path.join(work, `${n++}-${name}`);
    mkdirSync(dir, { recursive: true });
    return dir;
  };
  const sample = (name: string) => ({ bootstrap: path.join(SAMPLES, name, 'bootstrap'), blobDir: path.join(SAMPLES, name, 'blobs') });

  before(() => {
    requireEnv(['mkfifo']);
    work = tempDir('bad');
  });
  after(async () => {
    await cleanupDaemons();
    removeDir(work);
  });

  async function refuses(args: string[], code: number, message: RegExp, mnt?: string): Promise<void> {
    const r = await runNydusd(args, 10_000, mnt);
    assert.equal(r.code, code, `exit status (stderr: ${r.stderr})`);
    assert.match(r.stderr, message);
    if (mnt) assert.equal(isMounted(mnt), false, 'nothing may stay mounted');
  }

  it('a missing bootstrap refuses to start (exit 1)', async () => {
    const dir = fresh('nobootstrap');
    const mnt = path.join(dir, 'mnt');
    mkdirSync(mnt);
    const cfg = writeConfig(path.join(dir, 'cfg.json'), { blobDir: dir, workDir: path.join(dir, 'cache') });
    await refuses(['fuse', '--config', cfg, '--bootstrap', path.join(dir, 'absent.boot'), '--mountpoint', mnt], 1, /^Error: .*absent\.boot/m, mnt);
  });

  for (const [what, make] of [
    ['random bytes', (f: string) => writeFileSync(f, Buffer.alloc(20480, 0xa5))],
    ['a truncated v6 bootstrap', (f: string) => writeFileSync(f, readFileSync(sample('v6-zstd').bootstrap).subarray(0, 2000))],
    ['a truncated v5 bootstrap', (f: string) => writeFileSync(f, readFileSync(sample('v5-zstd').bootstrap).subarray(0, 3000))],
    ['an empty file', (f: string) => writeFileSync(f, '')],
    ['a v5 bootstrap with foreign inode records', (f: string) => copyFileSync(fixture('nydus', 'tests', 'texture', 'bootstrap', 'nydusd_daemon_test_bootstrap'), f)],
  ] as const) {
    it(`a corrupt bootstrap (${what}) refuses to start (exit 1)`, async () => {
      const dir = fresh('corrupt');
      const mnt = path.join(dir, 'mnt');
      mkdirSync(mnt);
      const boot = path.join(dir, 'boot');
      make(boot);
      const cfg = writeConfig(path.join(dir, 'cfg.json'), { blobDir: dir, workDir: path.join(dir, 'cache') });
      await refuses(['fuse', '--config', cfg, '--bootstrap', boot, '--mountpoint', mnt], 1, /^Error: cannot load bootstrap .*boot: \S/m, mnt);
    });
  }

  for (const name of ['v5-zstd', 'v6-zstd']) {
    it(`${name}: a missing blob keeps metadata working and fails reads with EIO`, async () => {
      const dir = fresh('noblob');
      const mnt = path.join(dir, 'mnt');
      const empty = path.join(dir, 'blobs');
      mkdirSync(empty);
      const cfg = writeConfig(path.join(dir, 'cfg.json'), { blobDir: empty, workDir: path.join(dir, 'cache') });
      const d = await mountImage(['fuse', '--config', cfg, '--bootstrap', sample(name).bootstrap, '--mountpoint', mnt], mnt);
      checkMetadata(mnt);
      assert.equal(tryRead(path.join(mnt, 'docs/readme.txt')).result, 'EIO');
      assert.equal(tryRead(path.join(mnt, 'data/big.bin')).result, 'EIO');
      // an empty file needs no blob
      assert.equal(tryRead(path.join(mnt, 'data/empty')).result, 'ok');
      assert.ok(d.running);
      // the blob appearing later is picked up by the next read
      const blob = readdirSync(sample(name).blobDir)[0]!;
      copyFileSync(path.join(sample(name).blobDir, blob), path.join(empty, blob));
      assert.equal(readFileSync(path.join(mnt, 'docs/notes.md'), 'utf8'), readFileSync(path.join(SAMPLES, 'tree/docs/notes.md'), 'utf8'));
      const r = await d.stop();
      assert.equal(r.code, 0);
      assert.match(r.stderr, /not found/);
    });
  }

  for (const name of ['v5-none', 'v6-none']) {
    it(`${name}: a truncated blob fails the reads past its end with EIO`, async () => {
      const dir = fresh('truncated');
      const mnt = path.join(dir, 'mnt');
      const blobs = path.join(dir, 'blobs');
      mkdirSync(blobs);
      const { bootstrap, blobDir } = sample(name);
      const blobId = readdirSync(blobDir)[0]!;
      copyFileSync(path.join(blobDir, blobId), path.join(blobs, blobId));
      const bs = loadImageFile(bootstrap);
      // cut the blob in the middle of big.bin's first chunk (v6 then also loses its CI table at the tail)
      const big = bs.chunks(bs.lookup(bs.lookup(bs.superblock.rootIno, Buffer.from('data'))!.ino, Buffer.from('big.bin'))!.ino)[0]!;
      truncateSync(path.join(blobs, blobId), big.compressedOffset + 100);
      const cfg = writeConfig(path.join(dir, 'cfg.json'), { blobDir: blobs, workDir: path.join(dir, 'cache') });
      const d = await mountImage(['fuse', '--config', cfg, '--bootstrap', bootstrap, '--mountpoint', mnt], mnt);
      checkMetadata(mnt);
      assert.equal(tryRead(path.join(mnt, 'data/big.bin')).result, 'EIO');
      assert.ok(d.running);
      const r = await d.stop();
      assert.equal(r.code, 0);
      assert.match(r.stderr, /truncated|ends at|short/);
    });
  }

  for (const [what, text, reason] of [
    ['not JSON at all', '{ this is not json', /Error: .*(parse|JSON|configuration)/i],
    ['v1 without device', JSON.stringify({ mode: 'direct' }), /Error: .*device/],
    ['an unknown backend type', JSON.stringify({ device: { backend: { type: 'ftp', config: {} }, cache: { type: 'blobcache', config: { work_dir: '/tmp' } } }, mode: 'direct' }), /Error: .*ftp/],
    ['a bad mode', JSON.stringify({ device: { backend: { type: 'localfs', config: { dir: '/tmp' } }, cache: { type: 'blobcache', config: { work_dir: '/tmp' } } }, mode: 'fast' }), /Error: .*mode/],
    ['digest_validate on a v6 image', JSON.stringify({ device: { backend: { type: 'localfs', config: { dir: '/tmp' } }, cache: { type: 'blobcache', config: { work_dir: '/tmp' } } }, mode: 'direct', digest_validate: true }), /Error: .*v6 .*digest validation/],
    ['no blob cache for a v6 image', JSON.stringify({ device: { backend: { type: 'localfs', config: { dir: '/tmp' } } }, mode: 'direct' }), /Error: .*(cache|blobcache)/],
  ] as const) {
    it(`a bad config (${what}) refuses to start with the reason (exit 1)`, async () => {
      const dir = fresh('badcfg');
      const mnt = path.join(dir, 'mnt');
      mkdirSync(mnt);
      writeFileSync(path.join(dir, 'cfg'), text);
      await refuses(['fuse', '--config', path.join(dir, 'cfg'), '--bootstrap', sample('v6-zstd').bootstrap, '--mountpoint', mnt], 1, reason, mnt);
    });
  }

  it('a missing config file, and a missing mountpoint, refuse to start (exit 1)', async () => {
    const dir = fresh('missing');
    const mnt = path.join(dir, 'mnt');
    mkdirSync(mnt);
    await refuses(['fuse', '--config', path.join(dir, 'nope.json'), '--bootstrap', sample('v6-zstd').bootstrap, '--mountpoint', mnt], 1, /^Error: .*nope\.json/m, mnt);
    const cfg = writeConfig(path.join(dir, 'cfg.json'), { ...sample('v6-zstd'), workDir: path.join(dir, 'cache') });
    await refuses(['fuse', '--config', cfg, '--bootstrap', sample('v6-zstd').bootstrap, '--mountpoint', path.join(dir, 'absent')], 1, /^Error: mountpoint .*absent does not exist/m);
    await refuses(['fuse', '--config', cfg, '--bootstrap', sample('v6-zstd').bootstrap], 1, /^Error: .*--mountpoint/m);
  });

  it('a takeover start (--upgrade) is refused without mounting, since takeover is not implemented (exit 1)', async () => {
    const dir = fresh('upgrade');
    const mnt = path.join(dir, 'mnt');
    mkdirSync(mnt);
    const cfg = writeConfig(path.join(dir, 'cfg.json'), { ...sample('v6-zstd'), workDir: path.join(dir, 'cache') });
    await refuses(['fuse', '--upgrade', '--config', cfg, '--bootstrap', sample('v6-zstd').bootstrap, '--mountpoint', mnt], 1, /^Error: --upgrade .*not supported/m, mnt);
  });

  it('a mountpoint that is already mounted is refused (exit 1) and the first mount keeps working', async () => {
    const dir = fresh('twice');
    const mnt = path.join(dir, 'mnt');
    const cfg = writeConfig(path.join(dir, 'cfg.json'), { blobDir: sample('v6-zstd').blobDir, workDir: path.join(dir, 'cache') });
    const args = ['fuse', '--config', cfg, '--bootstrap', sample('v6-zstd').bootstrap, '--mountpoint', mnt];
    const d = await mountImage(args, mnt);
    const r = await runNydusd(args, 10_000);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^Error: mountpoint .*mnt is already mounted/m);
    assert.equal(readFileSync(path.join(mnt, 'docs/notes.md'), 'utf8'), readFileSync(path.join(SAMPLES, 'tree/docs/notes.md'), 'utf8'));
    assert.equal((await d.stop()).code, 0);
  });

  for (const name of ['v5-none', 'v6-none']) {
    it(`${name}: a backend read that hangs fails with EIO after the configured timeout; the daemon stays healthy`, async () => {
      const dir = fresh('timeout');
      const mnt = path.join(dir, 'mnt');
      const workDir = path.join(dir, 'cache');
      const { bootstrap, blobDir } = sample(name);
      const blobId = readdirSync(blobDir)[0]!;
      // warm the cache for one file with the real blob (a fetch pulls some neighbours along, at most 128 KiB)
      const warmCfg = writeConfig(path.join(dir, 'warm.json'), { blobDir, workDir, amplifyIo: 0 });
      const w = await mountImage(['fuse', '--config', warmCfg, '--bootstrap', bootstrap, '--mountpoint', mnt], mnt);
      readFileSync(path.join(mnt, 'docs/readme.txt'));
      assert.equal((await w.stop()).code, 0);
      const cached = (rel: string) => {
        const bs = loadImageFile(bootstrap);
        let ino = bs.superblock.rootIno;
        for (const part of rel.split('/')) ino = bs.lookup(ino, Buffer.from(part))!.ino;
        const map = readChunkMap(path.join(workDir, `${blobId}.blob.data.chunk_map`), bs.blobs[0]!.chunkCount);
        return bs.chunks(ino).every((c) => map.ready(c.index));
      };
      const files = ['data/big.bin', 'docs/readme.txt', 'docs/notes.md', 'data/numbers.txt', 'bin/hello.sh'];
      const hot = files.filter(cached);
      const cold = files.filter((f) => !cached(f)).slice(0, 3);
      assert.ok(hot.includes('docs/readme.txt') && cold.includes('data/big.bin'), `cached: ${hot.join(', ')}`);

      // then serve the blob from a filesystem whose reads never answer
      const blobs = path.join(dir, 'hung');
      mkdirSync(blobs);
      const server = await startHungBlobServer(blobs, blobId, statSync(path.join(blobDir, blobId)).size);
      try {
        const cfg = writeConfig(path.join(dir, 'cfg.json'), { blobDir: blobs, workDir, timeout: 1 });
        const d = await mountImage(['fuse', '--config', cfg, '--bootstrap', bootstrap, '--mountpoint', mnt], mnt);
        for (const f of cold) {
          const r = tryRead(path.join(mnt, f));
          assert.equal(r.result, 'EIO', f);
          // not before the configured timeout (a timer that fires early fails reads that would have worked); how
          // long after it is left to the 10 s hang guard of tryRead, not asserted
          assert.ok(r.ms >= 900, `${f}: failed after ${r.ms} ms, before the 1 s timeout`);
        }
        // healthy: metadata, cached data and empty files are still served
        checkMetadata(mnt);
        for (const f of hot) assert.ok(readFileSync(path.join(mnt, f)).equals(readFileSync(path.join(SAMPLES, 'tree', f))), f);
        assert.equal(tryRead(path.join(mnt, 'data/empty')).result, 'ok');
        assert.ok(d.running);
        // the timed-out reads are still stuck in the kernel: the daemon must leave all the same (a daemon waiting for
        // them would never exit: stop() fails it after 5 s)
        const r = await d.stop(5_000);
        assert.equal(r.code, 0);
        assert.match(r.stderr, /timed out after 1 s/);
        assert.match(r.stderr, /still stuck in the kernel; exiting without waiting/);
        assert.equal(isMounted(mnt), false);
      } finally {
        // SIGKILL: a FUSE server cannot unmount cleanly while a client still holds its files open
        server.kill('SIGKILL');
        await new Promise((res) => (server.exitCode !== null || server.signalCode !== null ? res(undefined) : server.once('close', res)));
        if (isMounted(blobs)) spawnSync('umount', ['-l', blobs]);
      }
    });
  }

  it('a FIFO named as the blob is refused at once (EIO), without pinning the daemon', async () => {
    const dir = fresh('fifo');
    const mnt = path.join(dir, 'mnt');
    const blobs = path.join(dir, 'blobs');
    mkdirSync(blobs);
    const blobId = readdirSync(sample('v5-none').blobDir)[0]!;
    assert.equal(spawnSync('mkfifo', [path.join(blobs, blobId)]).status, 0);
    const cfg = writeConfig(path.join(dir, 'cfg.json'), { blobDir: blobs, workDir: path.join(dir, 'cache'), timeout: 30 });
    const d = await mountImage(['fuse', '--config', cfg, '--bootstrap', sample('v5-none').bootstrap, '--mountpoint', mnt], mnt);
    // a read waiting on the FIFO would take the 30 s backend timeout: tryRead reports HANG after 10 s
    for (let i = 0; i < 6; i++) assert.equal(tryRead(path.join(mnt, 'docs/readme.txt')).result, 'EIO');
    // a pool thread pinned in open() of the FIFO would keep the daemon from exiting: stop() fails it after 5 s
    const r = await d.stop();
    assert.equal(r.code, 0);
    assert.match(r.stderr, /is not a regular file/);
  });

  for (const [args, message] of [
    [['--no-such-flag'], /unexpected argument '--no-such-flag'/],
    [['fuse', '--thread-num', '0'], /--thread-num/],
    [['fuse', '--failover-policy', 'Resend'], /failover-policy/],
    [['fuse', '--mountpoint'], /a value is required/],
    [['--log-level', 'loud'], /log-level/],
    [['fuse', '--id', 'x'], /--supervisor/],
  ] as const) {
    it(`bad flags exit 2: ${args.join(' ')}`, async () => {
      await refuses([...args], 2, message);
    });
  }

  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    it(`${sig} unmounts and exits 0`, async () => {
      const dir = fresh(sig);
      const mnt = path.join(dir, 'mnt');
      const cfg = writeConfig(path.join(dir, 'cfg.json'), { blobDir: sample('v6-zstd').blobDir, workDir: path.join(dir, 'cache') });
      const d = await mountImage(['--config', cfg, '--bootstrap', sample('v6-zstd').bootstrap, '--mountpoint', mnt], mnt);
      readFileSync(path.join(mnt, 'data/big.bin'));
      d.signal(sig);
      const r = await d.waitExit(5_000);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`received ${sig}, unmounting`));
      assert.equal(isMounted(mnt), false);
    });
  }

  it('SIGTERM at any moment of start-up leaves no mount behind', async () => {
    const dir = fresh('early');
    const mnt = path.join(dir, 'mnt');
    mkdirSync(mnt);
    const cfg = writeConfig(path.join(dir, 'cfg.json'), { blobDir: sample('v6-zstd').blobDir, workDir: path.join(dir, 'cache') });
    // each stage of start-up, recognised as it happens (not by a guess of how long it takes): the signal lands
    // at that stage or a little later
    const stages: Array<[string, (d: Daemon) => boolean]> = [
      ['at once', () => true],
      ['once the process runs', (d) => existsSync(`/proc/${d.pid}/status`) && /^Threads:\s*([2-9]|\d\d)/m.test(readFileSync(`/proc/${d.pid}/status`, 'utf8'))],
      ['once the bootstrap is loaded', (d) => /loaded RAFS v6 bootstrap/.test(d.stderr)],
      ['once the kernel lists the mount', () => isMounted(mnt)],
      ['once FUSE is negotiated', (d) => /negotiated FUSE/.test(d.stderr)],
      ['once it is RUNNING', (d) => /state RUNNING/.test(d.stderr)],
    ];
    for (const [stage, reached] of stages) {
      const d = new Daemon(['fuse', '--config', cfg, '--bootstrap', sample('v6-zstd').bootstrap, '--mountpoint', mnt], mnt);
      await waitFor(() => reached(d) || !d.running, 10_000, `nydusd to get ${stage}`);
      assert.ok(d.running, `nydusd exited before getting ${stage}: ${d.stderr}`);
      d.signal('SIGTERM');
      const r = await d.waitExit(5_000);
      // before its handlers exist the signal simply ends the process; after, it exits 0
      assert.ok(r.code === 0 || r.signal === 'SIGTERM', `${stage}: ${r.code}/${r.signal}: ${r.stderr}`);
      assert.equal(isMounted(mnt), false, `a mount was left behind by a SIGTERM ${stage}`);
    }
  });

  it('SIGTERM with files open on the mount still detaches it and exits 0', async () => {
    const dir = fresh('busy');
    const mnt = path.join(dir, 'mnt');
    const cfg = writeConfig(path.join(dir, 'cfg.json'), { blobDir: sample('v5-zstd').blobDir, workDir: path.join(dir, 'cache') });
    const d = await mountImage(['fuse', '--config', cfg, '--bootstrap', sample('v5-zstd').bootstrap, '--mountpoint', mnt], mnt);
    // a process with its working directory and an open file inside the mount makes umount(2) say EBUSY
    const holder = spawn('sh', ['-c', 'exec 3<docs/readme.txt; sleep 30'], { cwd: mnt, stdio: 'ignore' });
    try {
      const holds = () => {
        try {
          return readlinkSync(`/proc/${holder.pid}/fd/3`) === path.join(mnt, 'docs/readme.txt');
        } catch {
          return false;
        }
      };
      await waitFor(holds, 10_000, 'the holder to open docs/readme.txt in the mount');
      const r = await d.stop(5_000);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(isMounted(mnt), false);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('an external umount ends the daemon with status 0', async () => {
    const dir = fresh('external');
    const mnt = path.join(dir, 'mnt');
    const cfg = writeConfig(path.join(dir, 'cfg.json'), { blobDir: sample('v6-zstd').blobDir, workDir: path.join(dir, 'cache') });
    const d = await mountImage(['fuse', '--config', cfg, '--bootstrap', sample('v6-zstd').bootstrap, '--mountpoint', mnt], mnt);
    readFileSync(path.join(mnt, 'docs/readme.txt'));
    assert.equal(spawnSync('umount', [mnt]).status, 0);
    const r = await d.waitExit(5_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /closed from outside/);
  });

  it('--localfs-dir: blobs and cache in one directory, no config', async () => {
    const dir = fresh('localfs-dir');
    const mnt = path.join(dir, 'mnt');
    const blobs = path.join(dir, 'blobs');
    mkdirSync(blobs);
    const blobId = readdirSync(sample('v6-zstd').blobDir)[0]!;
    copyFileSync(path.join(sample('v6-zstd').blobDir, blobId), path.join(blobs, blobId));
    const d = await mountImage(['--bootstrap', sample('v6-zstd').bootstrap, '--localfs-dir', blobs, '--mountpoint', mnt], mnt);
    assert.equal(readFileSync(path.join(mnt, 'docs/notes.md'), 'utf8'), readFileSync(path.join(SAMPLES, 'tree/docs/notes.md'), 'utf8'));
    assert.equal((await d.stop()).code, 0);
    assert.ok(existsSync(path.join(blobs, `${blobId}.blob.data.chunk_map`)));
    await refuses(['--bootstrap', sample('v6-zstd').bootstrap, '--mountpoint', mnt], 1, /both --config and --localfs-dir are missing/, mnt);
    await refuses(['--bootstrap', sample('v6-zstd').bootstrap, '--localfs-dir', blobs, '--config', '/x', '--mountpoint', mnt], 2, /cannot be used with/, mnt);
  });

  it('SIGUSR2 logs the backend and cache counters at any log level', async () => {
    const dir = fresh('usr2');
    const mnt = path.join(dir, 'mnt');
    const log = path.join(dir, 'logs', 'nydusd.log');
    const cfg = writeConfig(path.join(dir, 'cfg.json'), { blobDir: sample('v5-lz4_block').blobDir, workDir: path.join(dir, 'cache') });
    const d = await mountImage(['fuse', '--config', cfg, '--bootstrap', sample('v5-lz4_block').bootstrap, '--mountpoint', mnt, '--log-level', 'error', '--log-file', log], mnt);
    assert.deepEqual((await daemonMetrics(d, log)).backend, { type: 'localfs', reads: 0, bytes: 0, errors: 0 });
    readFileSync(path.join(mnt, 'data/big.bin'));
    const m = await daemonMetrics(d, log);
    assert.ok(m.backend.reads >= 1 && m.backend.bytes > 0 && m.cache.chunksFetched === 2, JSON.stringify(m));
    assert.equal((await d.stop()).code, 0);
    assert.doesNotMatch(readFileSync(log, 'utf8'), /INFO mounted at/);
  });

  it('--version prints a Git Commit: line (exit 0)', async () => {
    for (const flag of ['--version', '-V']) {
      const r = await runNydusd([flag]);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^Version: \tv\d+\.\d+\.\d+$/m);
      const commit = /^Git Commit: \t(\S+)$/m.exec(r.stdout)?.[1];
      assert.ok(commit, r.stdout);
      const git = spawnSync('git', ['-C', projectRoot, 'rev-parse', 'HEAD'], { encoding: 'utf8' });
      if (git.status === 0) assert.equal(commit, git.stdout.trim());
      else assert.match(commit, /^([0-9a-f]{40}|unknown)$/);
    }
  });

  it('--log-file in a missing directory creates it (and adds .log)', async () => {
    const dir = fresh('logfile');
    const mnt = path.join(dir, 'mnt');
    const logDir = path.join(dir, 'not', 'yet', 'there');
    const cfg = writeConfig(path.join(dir, 'cfg.json'), { blobDir: sample('v6-zstd').blobDir, workDir: path.join(dir, 'cache') });
    const d = await mountImage(['fuse', '--config', cfg, '--bootstrap', sample('v6-zstd').bootstrap, '--mountpoint', mnt, '--log-file', path.join(logDir, 'nydusd')], mnt);
    // the kernel lists the mount before the daemon has answered INIT and logged it
    await waitFor(() => /mounted at/.test(readFileSync(path.join(logDir, 'nydusd.log'), 'utf8')), 10_000, "the log file's 'mounted at' line");
    assert.equal((await d.stop()).code, 0);
    const log = readFileSync(path.join(logDir, 'nydusd.log'), 'utf8');
    assert.match(log, /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} [+-]\d\d:\d\d\] INFO mounted at /m);
    assert.match(log, /INFO received SIGTERM/);
    // a start-up error goes to the log file too, and still to stderr
    const bad = path.join(dir, 'bad-logs');
    await refuses(['fuse', '--config', cfg, '--bootstrap', path.join(dir, 'absent.boot'), '--mountpoint', mnt, '--log-file', path.join(bad, 'd.log')], 1, /^Error: /m);
    assert.ok(existsSync(path.join(bad, 'd.log')));
    assert.match(readFileSync(path.join(bad, 'd.log'), 'utf8'), /ERROR .*absent\.boot/);
  });
});
