// A small declarative argument parser for the nydus-image subcommands: long/short flags, `--flag=value`,
// repeated options, positionals, and usage errors that name the offending flag.

export interface OptSpec {
  long: string;
  short?: string;
  /** takes a value (else a boolean switch) */
  value?: boolean;
  /** may be given several times (values collected) */
  multiple?: boolean;
  help: string;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface Parsed {
  opts: Map<string, string[]>;
  flags: Set<string>;
  positionals: string[];
}

export function parseArgs(argv: string[], specs: OptSpec[], command: string): Parsed {
  const byLong = new Map(specs.map((s) => [s.long, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const out: Parsed = { opts: new Map(), flags: new Set(), positionals: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      out.positionals.push(...argv.slice(i + 1));
      break;
    }
    let spec: OptSpec | undefined;
    let inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      if (eq >= 0) inline = a.slice(eq + 1);
      spec = byLong.get(name);
      if (!spec) throw new UsageError(`${command}: unknown option '--${name}'`);
    } else if (a.startsWith('-') && a.length > 1) {
      spec = byShort.get(a.slice(1, 2));
      if (!spec) throw new UsageError(`${command}: unknown option '${a.slice(0, 2)}'`);
      if (a.length > 2) inline = a.slice(2);
    } else {
      out.positionals.push(a);
      continue;
    }
    if (spec.value) {
      let v = inline;
      if (v === undefined) {
        if (i + 1 >= argv.length) throw new UsageError(`${command}: option '--${spec.long}' needs a value`);
        v = argv[++i];
      }
      const list = out.opts.get(spec.long) ?? [];
      if (list.length > 0 && !spec.multiple) throw new UsageError(`${command}: option '--${spec.long}' given more than once`);
      list.push(v);
      out.opts.set(spec.long, list);
    } else {
      if (inline !== undefined) throw new UsageError(`${command}: option '--${spec.long}' takes no value`);
      out.flags.add(spec.long);
    }
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
