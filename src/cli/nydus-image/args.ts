// The nydus-image subcommands' options: each subcommand has a table of OptSpec, read by the one argv parser
// (src/argv.ts) with nydus-image's own wording of usage errors (`create: unknown option '--x'`).
import { parseArgv, UsageError, type OptionSpec, type UsageMessages } from '../../argv.js';

export { UsageError };

export interface OptSpec {
  long: string;
  short?: string;
  /** takes a value (else a boolean switch) */
  value?: boolean;
  /** may be given several times (values collected) */
  multiple?: boolean;
  help: string;
}

export interface Parsed {
  opts: Map<string, string[]>;
  flags: Set<string>;
  positionals: string[];
}

function messages(command: string): UsageMessages {
  return {
    unknown: (_word, name) => `${command}: unknown option '${name}'`,
    missingValue: (spec) => `${command}: option '--${spec.long}' needs a value`,
    repeated: (spec) => `${command}: option '--${spec.long}' given more than once`,
    unexpectedValue: (spec) => `${command}: option '--${spec.long}' takes no value`,
  };
}

export function parseArgs(argv: string[], specs: OptSpec[], command: string): Parsed {
  // a switch may be repeated (it stays on); a value option only when it collects values
  const options: OptionSpec[] = specs.map((s) => ({
    long: s.long, short: s.short, value: s.value ? '<value>' : undefined, repeatable: s.multiple || !s.value, help: s.help,
  }));
  const p = parseArgv(argv, options, { messages: messages(command) });
  const out: Parsed = { opts: new Map(), flags: new Set(), positionals: p.positionals };
  for (const [long, values] of p.options) {
    if (specs.find((s) => s.long === long)!.value) out.opts.set(long, values);
    else out.flags.add(long);
  }
  return out;
}

export function one(p: Parsed, name: string): string | undefined {
  return p.opts.get(name)?.[0];
}

export function required(p: Parsed, name: string, command: string): string {
  const v = one(p, name);
  if (v === undefined || v === '') throw new UsageError(`${command}: option '--${name}' is required`);
  return v;
}

/** accepts `0x100000` and `1048576` */
export function parseSize(s: string, what: string): number {
  const v = /^0x[0-9a-f]+$/i.test(s) ? parseInt(s.slice(2), 16) : /^[0-9]+$/.test(s) ? parseInt(s, 10) : NaN;
  if (!Number.isSafeInteger(v)) throw new UsageError(`invalid ${what} '${s}': expected a decimal or 0x-prefixed hex number`);
  return v;
}

export function choice<T extends string>(s: string, allowed: readonly T[], what: string): T {
  if (!(allowed as readonly string[]).includes(s)) {
    throw new UsageError(`invalid ${what} '${s}' (expected one of: ${allowed.join(', ')})`);
  }
  return s as T;
}

export function usage(command: string, synopsis: string, specs: OptSpec[]): string {
  const lines = [`Usage: nydus-image ${command} ${synopsis}`, '', 'Options:'];
  for (const s of specs) {
    const flag = `${s.short ? `-${s.short}, ` : '    '}--${s.long}${s.value ? ' <value>' : ''}`;
    lines.push(`  ${flag.padEnd(36)} ${s.help}`);
  }
  lines.push(`  ${'-h, --help'.padEnd(36)} Print help`);
  return lines.join('\n') + '\n';
}
