import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseArgs, UsageError } from '../../src/service/args.js';

test('every argv shape nydus-snapshotter emits parses', () => {
  const dedicated = parseArgs(['fuse', '--thread-num', '4', '--id', 'ID', '--config', '/r/config.json', '--bootstrap', '/r/image.boot',
    '--mountpoint', '/r/mnt', '--apisock', '/r/api.sock', '--log-level', 'info', '--log-rotation-size', '100',
    '--supervisor', '/r/sup.sock', '--log-file', '/r/logs/nydusd.log', '--prefetch-files', '/r/list', '--backend-source', '/x', '--failover-policy', 'resend']);
  assert.equal(dedicated.mode, 'fuse');
  assert.equal(dedicated.threads, 4);
  assert.equal(dedicated.bootstrap, '/r/image.boot');
  assert.equal(dedicated.supervisor, '/r/sup.sock');
  assert.equal(dedicated.logRotationSize, 100);
  assert.deepEqual(dedicated.ignored, ['--backend-source']);
  const upgrade = parseArgs(['fuse', '--upgrade', '--thread-num', '4', '--id', 'ID', '--supervisor', 's', '--mountpoint', '/m', '--apisock', '/a1']);
  assert.equal(upgrade.upgrade, true);
  const top = parseArgs(['--config=/c', '-B', '/b', '-M', '/m', '--log-level', 'warning']);
  assert.equal(top.mode, 'fuse');
  assert.equal(top.config, '/c');
  assert.equal(top.logLevel, 'warn');
  assert.equal(parseArgs(['--version']).version, true);
  assert.equal(parseArgs(['singleton', '--fscache', '/c', '--fscache-threads', '4', '--apisock', '/a']).fscache, '/c');
});

test('bad argv gives a usage error naming the problem', () => {
  const bad: [string[], RegExp][] = [
    [['--nope'], /unexpected argument '--nope'/],
    [['--mountpoint'], /a value is required for '--mountpoint'/],
    [['--thread-num', '0'], /must be in 1..=1024/],
    [['--thread-num', 'x'], /not an integer/],
    [['--failover-policy', 'Resend'], /expected one of none, resend, flush/],
    [['--log-level', 'loud'], /--log-level/],
    [['--id', 'x'], /--id and --supervisor/],
    [['--prefetch-files', '/l'], /requires '--bootstrap'/],
    [['--localfs-dir', '/d', '--config', '/c'], /cannot be used with '--config'/],
    [['--mountpoint', '/m', 'fuse'], /must come first/],
    [['singleton', '--mountpoint', '/m'], /not valid with the singleton/],
  ];
  for (const [argv, re] of bad) assert.throws(() => parseArgs(argv), (e: unknown) => e instanceof UsageError && re.test(e.message), argv.join(' '));
});

test('a flag given twice is an error naming it, whichever spelling each time (as clap has it)', () => {
  const twice: [string[], string][] = [
    [['--mountpoint', '/a', '--mountpoint', '/b'], "the argument '--mountpoint <dir>' cannot be used multiple times"],
    [['-M', '/a', '--mountpoint=/b'], "the argument '--mountpoint <dir>' cannot be used multiple times"],
    [['--config', '/a', '-C', '/b'], "the argument '--config <file>' cannot be used multiple times"],
    [['--bootstrap', '/a', '-B', '/a'], "the argument '--bootstrap <file>' cannot be used multiple times"],
    [['--log-file', '/a', '-L', '/b'], "the argument '--log-file <path>' cannot be used multiple times"],
    [['--thread-num', '2', '--fuse-threads', '3'], "the argument '--thread-num <n>' cannot be used multiple times"],
    [['--log-level', 'info', '-l', 'debug'], "the argument '--log-level <level>' cannot be used multiple times"],
    [['--writable', '--writable'], "the argument '--writable' cannot be used multiple times"],
    [['singleton', '--fscache', '/a', '--fscache', '/b'], "the argument '--fscache <dir>' cannot be used multiple times"],
  ];
  for (const [argv, message] of twice) {
    assert.throws(() => parseArgs(argv), (e: unknown) => e instanceof UsageError && e.message === message, argv.join(' '));
  }
});

test('--virtual-mountpoint must be an absolute path; it is kept normalized', () => {
  for (const bad of ['', 'sub', './x', '../y']) {
    assert.throws(() => parseArgs(['-m', bad]), (e: unknown) => e instanceof UsageError && e.message === `invalid value '${bad}' for '--virtual-mountpoint': must be an absolute path`, bad);
  }
  assert.equal(parseArgs([]).virtualMountpoint, '/');
  assert.equal(parseArgs(['-m', '/']).virtualMountpoint, '/');
  assert.equal(parseArgs(['-m', '//']).virtualMountpoint, '/');
  assert.equal(parseArgs(['--virtual-mountpoint', '/a/./b/']).virtualMountpoint, '/a/b');
});
