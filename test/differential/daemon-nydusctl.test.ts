// Differential conformance for the reference nydusctl (issue 10, scope 3, part 3): the REAL nydusctl pointed at our
// socket prints every command it has (`nydusctl --help`: info, set, metrics backend|cache|fsstats, the interval
// form, mount, umount; each also with --raw) without error and with the same fields as against the reference
// daemon: exit status, empty stderr, the same line labels in the same order (values masked), and for --raw the same
// JSON key/type shape.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REF_NYDUSCTL, requirePeers } from '../helpers/peers.js';
import { cleanupDaemons, removeDir, requireEnv, tempDir, waitFor, writeConfig } from '../nydusd/helpers.js';
import { shape } from './api-shape.js';
import { sample } from './images.js';
import { isV24ConfigKey } from './v24-keys.js';
import { BOTH, mountImage, sharedDaemon, type Side } from './peer-daemons.js';

const IMAGE = sample('v6-zstd');

interface CtlRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

function nydusctl(sock: string, args: string[]): CtlRun {
  const r = spawnSync(REF_NYDUSCTL, ['--sock', sock, ...args], { encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The fields of a text output: the label of each line (before its first ':'), or the line with numbers masked. */
export function labels(text: string): string[] {
  return text.split('\n').map((l) => (l.includes(':') ? l.slice(0, l.indexOf(':')).trimEnd() : l.replace(/[\d.]+|NaN|inf/g, '#').replace(/\s+/g, ' ').trim()));
}

/** The same command against both daemons: both succeed quietly, with the same labels (or JSON shape with --raw). */
function sameOutput(args: string[], ref: Side, ours: Side): { ref: CtlRun; ours: CtlRun } {
  const [a, b] = [nydusctl(ref.sock, args), nydusctl(ours.sock, args)];
  const what = `nydusctl ${args.join(' ')}`;
  assert.equal(a.status, 0, `${what} against the reference: ${a.stderr}`);
  assert.deepEqual({ status: b.status, stderr: b.stderr }, { status: 0, stderr: '' }, `${what} against ours`);
  if (args.includes('--raw')) {
    // KNOWN DIFFERENCE: our extra v2.4 config keys in `info --raw` (v24-keys.ts); nothing else may differ
    const keys = (s: string) =>
      [...shape(s.trim() ? JSON.parse(s) : null)].filter(([k]) => !isV24ConfigKey(k)).map(([k, t]) => `${k}: ${[...t].sort().join('|')}`);
    assert.deepEqual(keys(b.stdout), keys(a.stdout), `${what}: JSON shape`);
  } else {
    assert.deepEqual(labels(b.stdout), labels(a.stdout), `${what}: fields`);
  }
  return { ref: a, ours: b };
}

describe('the reference nydusctl against our socket prints what it prints against the reference daemon', () => {
  const dirs: string[] = [];
  before(() => {
    requireEnv();
    requirePeers();
  });
  after(async () => {
    await cleanupDaemons();
    for (const d of dirs) removeDir(d);
  });

  test('nydusctl --help lists exactly the commands this test runs', () => {
    const help = spawnSync(REF_NYDUSCTL, ['--help'], { encoding: 'utf8' }).stdout;
    const commands = [...help.slice(help.indexOf('Commands:')).matchAll(/^ {2}(\w+) /gm)].map((m) => m[1]);
    assert.deepEqual(commands, ['info', 'set', 'metrics', 'mount', 'umount', 'help']);
    const metrics = spawnSync(REF_NYDUSCTL, ['--sock', '/nonexistent', 'metrics', '--help'], { encoding: 'utf8' }).stdout;
    assert.match(metrics, /\[possible values: backend, cache, fsstats\]/);
  });

  test('a dedicated daemon: info, set log-level, metrics backend|cache|fsstats, with and without --raw', async () => {
    const dir = tempDir('diff-ctl');
    dirs.push(dir);
    const sides: Side[] = [];
    for (const which of BOTH) sides.push(await mountImage(which, path.join(dir, which), IMAGE));
    const [ref, ours] = sides as [Side, Side];
    for (const s of sides) assert.equal(readFileSync(path.join(s.mountpoint, 'data', 'big.bin')).length, 1049576);
    for (const raw of [[], ['--raw']]) {
      const info = sameOutput(['info', ...raw], ref, ours);
      if (raw.length === 0) assert.match(info.ours.stdout, /^\tInstance Mountpoint: {2}\/$/m);
      sameOutput(['metrics', 'backend', ...raw], ref, ours);
      sameOutput(['metrics', 'cache', ...raw], ref, ours);
      sameOutput(['metrics', 'fsstats', ...raw], ref, ours);
      for (const level of ['debug', 'info']) sameOutput(['set', 'log-level', level, ...raw], ref, ours);
    }
    // an error is an error on both: exit 1 and one "Error: ..." line
    const bad = sides.map((s) => nydusctl(s.sock, ['set', 'log-level', 'loud']));
    assert.deepEqual(bad.map((r) => [r.status, r.stdout, r.stderr.startsWith('Error: ')]), [[1, '', true], [1, '', true]], bad.map((r) => r.stderr).join(' / '));
  });

  test('metrics backend --interval: the first report of the loop has the same fields', async () => {
    const dir = tempDir('diff-ctl-interval');
    dirs.push(dir);
    const sides: Side[] = [];
    for (const which of BOTH) sides.push(await mountImage(which, path.join(dir, which), IMAGE));
    const outputs = await Promise.all(
      sides.map(async (s) => {
        // the loop never ends by itself: read until its first report is complete, then stop it
        const child = spawn(REF_NYDUSCTL, ['--sock', s.sock, 'metrics', 'backend', '--interval', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
        child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
        try {
          await waitFor(() => out.includes('<<< <<<') || child.exitCode !== null, 20_000, `nydusctl metrics backend --interval against ${s.which}`);
        } finally {
          child.kill('SIGKILL');
        }
        assert.equal(err, '', `${s.which}: stderr`);
        return out.slice(0, out.indexOf('<<< <<<') + 7);
      }),
    );
    assert.match(outputs[1]!, /Backend Read Bandwidth:/);
    assert.deepEqual(labels(outputs[1]!), labels(outputs[0]!));
  });

  test('a shared daemon: info, then mount and umount a RAFS instance with a v1 config file', async () => {
    const dir = tempDir('diff-ctl-shared');
    dirs.push(dir);
    const sides: Side[] = [];
    for (const which of BOTH) sides.push(await sharedDaemon(which, path.join(dir, which)));
    const [ref, ours] = sides as [Side, Side];
    sameOutput(['info'], ref, ours);
    // the same config text but for the cache directory, one per daemon
    const cfg = (s: Side) => writeConfig(path.join(dir, s.which, 'config.json'), { blobDir: IMAGE.blobDir, workDir: path.join(dir, s.which, 'cache') });
    for (const s of sides) {
      const r = nydusctl(s.sock, ['mount', '-s', IMAGE.bootstrap, '-c', cfg(s), '-m', '/img', '-t', 'rafs']);
      assert.deepEqual([r.status, r.stdout, r.stderr], [0, '', ''], `nydusctl mount against ${s.which}`);
      assert.deepEqual(readdirSync(path.join(s.mountpoint, 'img')).sort(), readdirSync(path.join(IMAGE.bootstrap, '..', '..', 'tree')).concat(['empty-dir']).sort());
    }
    sameOutput(['info'], ref, ours);
    sameOutput(['info', '--raw'], ref, ours);
    const again = sides.map((s) => nydusctl(s.sock, ['mount', '-s', IMAGE.bootstrap, '-c', cfg(s), '-m', '/img', '-t', 'rafs']));
    assert.deepEqual(again.map((r) => [r.status, r.stderr.startsWith('Error: Request failed.')]), [[1, true], [1, true]], again.map((r) => r.stderr).join(' / '));
    // nydusctl 2.2.0's help says `umount -m <mountpoint>` but its parser takes the mountpoint as a positional
    // argument and rejects -m (exit 2 before any request): the reference tool's own quirk, so the form it accepts
    for (const s of sides) {
      const r = nydusctl(s.sock, ['umount', '/img']);
      assert.deepEqual([r.status, r.stdout, r.stderr], [0, '', ''], `nydusctl umount against ${s.which}`);
    }
    const gone = sides.map((s) => nydusctl(s.sock, ['umount', '/img']));
    assert.deepEqual(gone.map((r) => [r.status, r.stderr.startsWith('Error: Request failed.')]), [[1, true], [1, true]], gone.map((r) => r.stderr).join(' / '));
  });
});
