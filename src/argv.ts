// The one argv parser of every executable (nydusd, nydus-image, nydusctl): a table of options in, the options and
// positionals found out, in the order they were given. The reference's three tools all parse with clap, so clap's
// forms are the ones accepted: `--long value`, `--long=value`, `-s value`, `-svalue`, a bare `-` as a positional,
// and (unless a tool says otherwise) `--` ending the options. Each tool keeps its own option table and its own
// rules beyond these (subcommands, combinations, value checks). Usage errors are UsageError; nydusd and nydusctl
// exit 2 on them, as clap does (nydusd-runtime.md 1.5).

export class UsageError extends Error {
  /** the exit status of a usage error (clap's) */
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface OptionSpec {
  /** the long name without its dashes: `mountpoint` */
  long: string;
  /** further long names: `fuse-threads` for `thread-num` */
  aliases?: string[];
  /** the one-letter name: `M` */
  short?: string;
  /** set for an option that takes a value: how the value is named in messages and usage (`<dir>`) */
  value?: string;
  /** may be given more than once (values are collected; a switch simply stays on) */
  repeatable?: boolean;
  help?: string;
}

/** One option as given: which spec, the name as typed (`-M`, `--fuse-threads`), and its value ('' for a switch). */
export interface OptionUse<S extends OptionSpec = OptionSpec> {
  spec: S;
  name: string;
  value: string;
}

export type ArgvItem<S extends OptionSpec = OptionSpec> = ({ kind: 'option' } & OptionUse<S>) | { kind: 'positional'; value: string };

/** The texts of the four errors the parser itself finds; the default set is clap's wording. */
export interface UsageMessages {
  /** `word` as given (`--nope=1`), `name` without any inline value (`--nope`) */
  unknown(word: string, name: string): string;
  missingValue(spec: OptionSpec, name: string): string;
  repeated(spec: OptionSpec, name: string): string;
  unexpectedValue(spec: OptionSpec, name: string): string;
}

/** `--mountpoint <dir>`, as clap names an option in its messages */
export function optionLabel(spec: OptionSpec): string {
  return `--${spec.long}${spec.value ? ` ${spec.value}` : ''}`;
}

export const CLAP_MESSAGES: UsageMessages = {
  unknown: (word) => `unexpected argument '${word}'`,
  missingValue: (_spec, name) => `a value is required for '${name}' but none was supplied`,
  repeated: (spec) => `the argument '${optionLabel(spec)}' cannot be used multiple times`,
  unexpectedValue: (_spec, name) => `'${name}' takes no value`,
};

export interface ParseOptions<S extends OptionSpec> {
  messages?: UsageMessages;
  /** `--` ends the options, every later word is a positional (default true; nydusd has no such form) */
  endOfOptions?: boolean;
  /** stop at the first positional and leave it and everything after it unparsed in `rest` (a command word) */
  stopAtPositional?: boolean;
  /** called for each recognised option before its value is read: throw a UsageError to refuse it there */
  admit?(spec: S, name: string): void;
  /** called for each option and positional as it is read, so that a tool's own checks fail in argv order */
  onItem?(item: ArgvItem<S>): void;
}

export interface ParsedArgv<S extends OptionSpec = OptionSpec> {
  /** options and positionals in the order given */
  items: ArgvItem<S>[];
  /** the values of each option given, by long name (a switch has one '' per use) */
  options: Map<string, string[]>;
  positionals: string[];
  /** with stopAtPositional: the first positional and everything after it */
  rest: string[];
}

export function parseArgv<S extends OptionSpec>(argv: readonly string[], specs: readonly S[], o: ParseOptions<S> = {}): ParsedArgv<S> {
  const messages = o.messages ?? CLAP_MESSAGES;
  const byName = new Map<string, S>();
  for (const s of specs) {
    for (const n of [s.long, ...(s.aliases ?? [])]) byName.set(`--${n}`, s);
    if (s.short) byName.set(`-${s.short}`, s);
  }
  const out: ParsedArgv<S> = { items: [], options: new Map(), positionals: [], rest: [] };
  const push = (item: ArgvItem<S>) => {
    out.items.push(item);
    o.onItem?.(item);
  };
  const positional = (value: string) => {
    out.positionals.push(value);
    push({ kind: 'positional', value });
  };
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--' && o.endOfOptions !== false) {
      if (o.stopAtPositional) out.rest = argv.slice(i + 1);
      else argv.slice(i + 1).forEach(positional);
      break;
    }
    let name: string;
    let inline: string | undefined;
    if (word.startsWith('--') && word.length > 2) {
      const eq = word.indexOf('=');
      name = eq < 0 ? word : word.slice(0, eq);
      if (eq >= 0) inline = word.slice(eq + 1);
    } else if (word.startsWith('-') && word.length > 1 && word !== '--') {
      name = word.slice(0, 2);
      if (word.length > 2) inline = word.slice(2);
    } else {
      if (o.stopAtPositional) {
        out.rest = argv.slice(i);
        break;
      }
      positional(word);
      continue;
    }
    const spec = byName.get(name);
    if (!spec) throw new UsageError(messages.unknown(word, name));
    o.admit?.(spec, name);
    const values = out.options.get(spec.long) ?? [];
    if (values.length > 0 && !spec.repeatable) throw new UsageError(messages.repeated(spec, name));
    let value = '';
    if (spec.value) {
      if (inline !== undefined) value = inline;
      else {
        if (i + 1 >= argv.length) throw new UsageError(messages.missingValue(spec, name));
        value = argv[++i]!;
      }
    } else if (inline !== undefined) {
      throw new UsageError(messages.unexpectedValue(spec, name));
    }
    values.push(value);
    out.options.set(spec.long, values);
    push({ kind: 'option', spec, name, value });
  }
  return out;
}
