// The one argv parser (src/argv.ts) that nydusd, nydus-image and nydusctl share: the forms it accepts, the order it
// reports things in, and the four usage errors it finds itself (clap's wording unless a tool brings its own).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseArgv, UsageError, type OptionSpec, type ParseOptions } from '../../src/argv.js';

const SPECS: OptionSpec[] = [
  { long: 'mountpoint', short: 'M', value: '<dir>' },
  { long: 'thread-num', aliases: ['fuse-threads'], value: '<n>' },
  { long: 'raw', short: 'r' },
  { long: 'feature', value: '<f>', repeatable: true },
];

const usage = (argv: string[], message: string, o: ParseOptions<OptionSpec> = {}) =>
  assert.throws(() => parseArgv(argv, SPECS, o), (e: unknown) => e instanceof UsageError && e.exitCode === 2 && e.message === message, argv.join(' '));

test('long, short, joined and separate values, aliases, repeated options and positionals, in order', () => {
  const p = parseArgv(['-M', '/a', 'pos1', '--fuse-threads=3', '--feature', 'x', '-r', '--feature=y', '-', 'pos2'], SPECS);
  assert.deepEqual(p.positionals, ['pos1', '-', 'pos2']);
  assert.deepEqual(p.options.get('mountpoint'), ['/a']);
  assert.deepEqual(p.options.get('thread-num'), ['3']);
  assert.deepEqual(p.options.get('feature'), ['x', 'y']);
  assert.deepEqual(p.options.get('raw'), ['']);
  assert.deepEqual(
    p.items.map((i) => (i.kind === 'option' ? `${i.name}=${i.value}` : i.value)),
    ['-M=/a', 'pos1', '--fuse-threads=3', '--feature=x', '-r=', '--feature=y', '-', 'pos2'],
  );
  assert.deepEqual(parseArgv(['-M/b'], SPECS).options.get('mountpoint'), ['/b']);
  assert.deepEqual(parseArgv(['--mountpoint='], SPECS).options.get('mountpoint'), ['']);
  // a value is the next word whatever it looks like
  assert.deepEqual(parseArgv(['--mountpoint', '--raw'], SPECS).options.get('mountpoint'), ['--raw']);
  // `--` ends the options unless the tool has no such form
  assert.deepEqual(parseArgv(['--', '-r', '--x'], SPECS).positionals, ['-r', '--x']);
  usage(['--'], "unexpected argument '--'", { endOfOptions: false, onItem: (i) => { if (i.kind === 'positional') throw new UsageError(`unexpected argument '${i.value}'`); } });
});

test('stopAtPositional leaves a command word and everything after it to the command', () => {
  const p = parseArgv(['-r', '--mountpoint', '/s', 'metrics', 'backend', '-r', '--nope'], SPECS, { stopAtPositional: true });
  assert.deepEqual(p.options.get('raw'), ['']);
  assert.deepEqual(p.positionals, []);
  assert.deepEqual(p.rest, ['metrics', 'backend', '-r', '--nope']);
});

test('the four usage errors, in clap wording', () => {
  usage(['--nope=1'], "unexpected argument '--nope=1'");
  usage(['-x'], "unexpected argument '-x'");
  usage(['--mountpoint'], "a value is required for '--mountpoint' but none was supplied");
  usage(['-M', '/a', '--mountpoint=/b'], "the argument '--mountpoint <dir>' cannot be used multiple times");
  usage(['--thread-num', '1', '--fuse-threads', '2'], "the argument '--thread-num <n>' cannot be used multiple times");
  usage(['-r', '--raw'], "the argument '--raw' cannot be used multiple times");
  usage(['--raw=yes'], "'--raw' takes no value");
  usage(['-rx'], "'-r' takes no value");
});

test('a tool can refuse an option before its value is read, and its own checks fail in argv order', () => {
  const admit = (s: OptionSpec, name: string) => {
    if (s.long === 'thread-num') throw new UsageError(`'${name}' is not valid here`);
  };
  usage(['--fuse-threads'], "'--fuse-threads' is not valid here", { admit });
  const seen: string[] = [];
  assert.throws(
    () => parseArgv(['a', '-M', '/m', 'b', '--nope'], SPECS, { onItem: (i) => { seen.push(i.value); if (i.value === 'b') throw new UsageError('b'); } }),
    /^UsageError: b$/,
  );
  assert.deepEqual(seen, ['a', '/m', 'b']);
});
