// nydusctl's text output, as pure functions of the API's JSON: `info` (spec nydusd-runtime.md 5.2), `metrics
// backend` (5.3), `metrics cache` (5.4) and `metrics fsstats` (5.5) in the reference's exact shapes; `metrics
// inflight`, `files` and `pattern` (which the reference's nydusctl lacks) in shapes of our own, documented by each
// function. Numbers follow the reference's arithmetic: integer division where it divides integers, shortest
// floating-point text where it divides floats. A field missing or of the wrong type is a clear error (the
// reference panics).

type Obj = Record<string, unknown>;

export class FormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FormatError';
  }
}

function obj(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new FormatError(`${what}: expected a JSON object`);
  return v as Obj;
}

function num(o: Obj, key: string, what: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new FormatError(`${what}: field "${key}" is missing or not a number`);
  return v;
}

function nums(o: Obj, key: string, len: number, what: string): number[] {
  const v = o[key];
  if (!Array.isArray(v) || v.length !== len || v.some((x) => typeof x !== 'number')) {
    throw new FormatError(`${what}: field "${key}" must be an array of ${len} numbers`);
  }
  return v as number[];
}

/** Integer division as the reference's u64 arithmetic does it; by zero gives 0 (the reference would panic). */
function idiv(a: number, b: number): number {
  return b === 0 ? 0 : Math.floor(a / b);
}

/** A float as Rust's `{}` prints it: shortest round-trip digits, never an exponent, `NaN`, `inf`, `-inf`. */
export function rustFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const s = String(x);
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return s;
  const [, sign, lead, frac = '', e] = m;
  const digits = lead! + frac;
  const exp = Number(e);
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  return `${sign}${digits.padEnd(exp + 1, '0')}`;
}

/** A JSON value as Rust's serde_json prints it with `{}`: compact, object keys in alphabetical order. */
export function sortedJson(v: unknown): string {
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Obj)[k])]));
}

/** A JSON value as serde_json's `Value` prints with `{:?}`: `Object {"code": String("UNDEFINED"), ...}` (spec 5.1). */
export function valueDebug(v: unknown): string {
  if (v === null || v === undefined) return 'Null';
  if (typeof v === 'boolean') return `Bool(${v})`;
  if (typeof v === 'number') return `Number(${rustFloat(v)})`;
  if (typeof v === 'string') return `String(${JSON.stringify(v)})`;
  if (Array.isArray(v)) return `Array [${v.map(valueDebug).join(', ')}]`;
  return `Object {${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}: ${valueDebug((v as Obj)[k])}`).join(', ')}}`;
}

const label = (text: string, width: number) => text.padEnd(width);
const columns = (values: (string | number)[]) => values.map((v) => String(v).padEnd(8)).join('');

/** `2026-07-23 03:00:00.500 +00:00:00` -> `2026-07-23 3:00:00.5 +00:00:00` (5.2: chrono's re-display). */
export function displayMountedTime(t: string): string {
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))? ([+-]\d{2}:\d{2}:\d{2})$/.exec(t);
  if (!m) throw new FormatError(`mounted_time ${JSON.stringify(t)} is not in the form YYYY-MM-DD HH:MM:SS.f +HH:MM:SS`);
  const [, date, h, min, s, frac = '', offset] = m;
  const f = frac.replace(/0+$/, '');
  return `${date} ${Number(h)}:${min}:${s}${f ? `.${f}` : ''} ${offset}`;
}

/** `info` (5.2): version and state, values as JSON; then each instance. */
export function formatInfo(info: unknown): string {
  const i = obj(info, 'daemon info');
  const v = obj(i.version, 'daemon info version');
  const lines = [
    '',
    `${label('Version:', 24)}${JSON.stringify(v.package_ver ?? null)}`,
    `${label('Status:', 24)}${JSON.stringify(i.state ?? null)}`,
    `${label('Profile:', 24)}${JSON.stringify(v.profile ?? null)}`,
    `${label('Commit:', 24)}${JSON.stringify(v.git_commit ?? null)}`,
  ];
  const collection = i.backend_collection;
  if (collection !== null && collection !== undefined && Object.keys(obj(collection, 'backend_collection')).length > 0) {
    lines.push('Instances:');
    for (const [key, raw] of Object.entries(collection as Obj)) {
      const d = obj(raw, `instance ${key}`);
      const type = d.backend_type;
      if (type !== 'Rafs' && type !== 'PassthroughFs') throw new FormatError(`instance ${key}: unknown backend_type ${JSON.stringify(type)}`);
      lines.push(`\tInstance Mountpoint:  ${String(d.mountpoint)}`, `\tType:  ${type}`, `\tMounted Time:  ${displayMountedTime(String(d.mounted_time))}`);
      if (type === 'Rafs') {
        const config = obj(d.config, `instance ${key} config`);
        if (!config.cache || !config.rafs) throw new FormatError(`instance ${key}: its configuration has no cache or rafs section`);
        const cache = obj(config.cache, `instance ${key} cache`);
        const prefetch = obj(cache.prefetch, `instance ${key} cache.prefetch`);
        const rafs = obj(config.rafs, `instance ${key} rafs`);
        lines.push(`\tMode:  ${String(rafs.mode)}`, `\tPrefetch:  ${String(prefetch.enable)}`, `\tPrefetch Merging Size:  ${String(prefetch.batch_size)}`, '');
      }
    }
  }
  return lines.join('\n') + '\n';
}

/** The request-size classes of spec 8.1, as nydusctl labels them. */
export const SIZE_CLASSES = ['<1K', '1K~', '4K~', '16K~', '64K~', '128K~', '512K~', '1M~'];

/** `metrics backend` (5.3). */
export function formatBackendMetrics(metrics: unknown): string {
  const what = 'backend metrics';
  const m = obj(metrics, what);
  const amount = num(m, 'read_amount_total', what);
  const latency = nums(m, 'read_cumulative_latency_millis_dist', 8, what);
  const counts = nums(m, 'read_count_block_size_dist', 8, what);
  return [
    '',
    `${label('Backend Type:', 20)}${JSON.stringify(m.backend_type ?? null)}`,
    `${label('Read Amount:', 20)}${amount} Bytes (${rustFloat(amount / 1024 / 1024)} MB)`,
    `${label('Read Count:', 20)}${num(m, 'read_count', what)}`,
    `${label('Read Errors:', 20)}${num(m, 'read_errors', what)}`,
    '',
    `${label('Block Sizes:', 25)}${columns(SIZE_CLASSES)}`,
    `${label('Average Latency(millis):', 25)}${columns(latency.map((l, k) => idiv(l, counts[k]!)))}`,
    '',
    `${label('Block Sizes:', 25)}${columns(SIZE_CLASSES)}`,
    `${label('Request Count:', 25)}${columns(counts)}`,
  ].join('\n') + '\n';
}

/** `metrics backend --interval N` (5.3): the deltas between two samples `seconds` apart. */
export function formatBackendInterval(before: unknown, after: unknown, seconds: number): string {
  const what = 'backend metrics';
  const a = obj(before, what);
  const b = obj(after, what);
  const d = (k: string) => num(b, k, what) - num(a, k, what);
  const count = d('read_count');
  const amount = d('read_amount_total');
  const latency = nums(b, 'read_cumulative_latency_millis_dist', 8, what).map((v, k) => v - nums(a, 'read_cumulative_latency_millis_dist', 8, what)[k]!);
  const counts = nums(b, 'read_count_block_size_dist', 8, what).map((v, k) => v - nums(a, 'read_count_block_size_dist', 8, what)[k]!);
  return [
    '',
    '>>> >>> >>> >>> >>>',
    `${label('Backend Read Bandwidth:', 28)}${idiv(idiv(amount, 1024), seconds)} KB/S`,
    `${label('Backend Average IO Size:', 28)}${idiv(amount, count)} Bytes`,
    `${label('Backend Average Latency:', 28)}${idiv(d('read_cumulative_latency_millis_total'), count)} millis`,
    '',
    'Block Sizes/millis:',
    columns(SIZE_CLASSES),
    columns(latency.map((l, k) => idiv(l, counts[k]!))),
    '<<< <<< <<< <<< <<<',
  ].join('\n') + '\n';
}

/** `metrics cache` (5.4). */
export function formatCacheMetrics(metrics: unknown): string {
  const what = 'blobcache metrics';
  const m = obj(metrics, what);
  const n = (k: string) => num(m, k, what);
  const amount = n('prefetch_data_amount');
  const requests = n('prefetch_requests_count');
  const duration = n('prefetch_end_time_secs') + n('prefetch_end_time_millis') / 1000 - (n('prefetch_begin_time_secs') + n('prefetch_begin_time_millis') / 1000);
  return [
    '',
    `${label('Partial Hits:', 28)}${n('partial_hits')}`,
    `${label('Whole Hits:', 28)}${n('whole_hits')}`,
    `${label('Total Read:', 28)}${n('total')}`,
    `${label('Directory:', 28)}${JSON.stringify(m.store_path ?? null)}`,
    `${label('Files:', 28)}${JSON.stringify(m.underlying_files ?? null)}`,
    `${label('Persister Buffer:', 28)}${n('buffered_backend_size')}`,
    '',
    `${label('Prefetch Workers:', 28)}${n('prefetch_workers')}`,
    `${label('Prefetch Amount:', 28)}${amount} = ${idiv(amount, 1024)} KB`,
    `${label('Prefetch Requests:', 28)}${requests}`,
    `${label('Prefetch Average Size:', 28)}${idiv(amount, requests)} Bytes`,
    `${label('Prefetch Duration:', 28)}${rustFloat(duration)} Seconds`,
    `${label('Prefetch Bandwidth:', 28)}${rustFloat(amount / 1024 / 1024 / duration)} MB/S`,
    `${label('Prefetch Request Latency:', 28)}${rustFloat(n('prefetch_cumulative_time_millis') / requests / 1000)} Seconds`,
    `${label('Prefetch Unmerged:', 28)}${n('prefetch_unmerged_chunks')}`,
  ].join('\n') + '\n';
}

/** The file-operation slots of spec 8.1. */
export const FOPS = ['Getattr', 'Readlink', 'Open', 'Release', 'Read', 'Statfs', 'Getxattr', 'Listxattr', 'Opendir', 'Lookup', 'Readdir', 'Readdirplus', 'Access', 'Forget', 'BatchForget'];

/** `metrics fsstats` (5.5); the latency labels are the reference's, stale as they are (its buckets are 8.1's). */
export function formatFsStats(metrics: unknown): string {
  const what = 'filesystem metrics';
  const m = obj(metrics, what);
  const hits = nums(m, 'fop_hits', 15, what);
  const errors = nums(m, 'fop_errors', 15, what);
  const data = num(m, 'data_read', what);
  const fop = (k: number) => `${FOPS[k]}(${hits[k]})`;
  return [
    '',
    `${label('Read Latency:', 16)}${columns(['<1ms', '~20ms', '~50ms', '~100ms', '~500ms', '~1s', '~2s', '2s~'])}`,
    `${label('Reads Count:', 16)}${columns(nums(m, 'read_latency_dist', 8, what))}`,
    '',
    `Read Errors: ${errors[4]}`,
    `Read Data: ${data}Bytes (${idiv(data, 1024 * 1024)}MB)`,
    '',
    'FOP Counters:',
    [0, 1, 2, 3, 4, 5, 6, 7].map(fop).join(' '),
    [8, 9, 10, 11, 12, 13, 14].map(fop).join(' '),
  ].join('\n') + '\n';
}

/** FUSE opcodes that show up in flight (spec 8.7), by number. */
const OPCODES: Record<number, string> = {
  1: 'LOOKUP', 2: 'FORGET', 3: 'GETATTR', 5: 'READLINK', 14: 'OPEN', 15: 'READ', 17: 'STATFS', 18: 'RELEASE', 22: 'GETXATTR', 23: 'LISTXATTR',
  27: 'OPENDIR', 28: 'READDIR', 29: 'RELEASEDIR', 34: 'ACCESS', 42: 'BATCH_FORGET', 44: 'READDIRPLUS',
};

/**
 * `metrics inflight` (ours; 3.5.8): a 204 (undefined here) is `No FUSE request in flight`; else one line per busy
 * worker: `Inode  Opcode  Unique  Since` columns of 8, 16, 12 and the unix seconds the request was picked up.
 */
export function formatInflight(entries: unknown): string {
  if (entries === undefined || (Array.isArray(entries) && entries.length === 0)) return '\nNo FUSE request in flight\n';
  if (!Array.isArray(entries)) throw new FormatError('inflight metrics: expected a JSON array');
  const lines = ['', `${label('Inode', 8)}${label('Opcode', 16)}${label('Unique', 12)}Since`];
  for (const raw of entries) {
    const e = obj(raw, 'inflight entry');
    const op = num(e, 'opcode', 'inflight entry');
    lines.push(`${label(String(num(e, 'inode', 'inflight entry')), 8)}${label(`${OPCODES[op] ?? 'OP'}(${op})`, 16)}${label(String(num(e, 'unique', 'inflight entry')), 12)}${num(e, 'timestamp_secs', 'inflight entry')}`);
  }
  return lines.join('\n') + '\n';
}

/**
 * `metrics files` (ours; 8.3): one line per inode in ascending order, `Inode N: F fops, D Bytes read, reads per
 * size class [..8]`; with `--latest`, the runs of recently read inodes as `Recently Read Inodes: 1-2 5 65-66`.
 */
export function formatFiles(metrics: unknown): string {
  if (Array.isArray(metrics)) {
    const runs = metrics.map((r) => {
      if (!Array.isArray(r) || r.length < 1 || r.length > 2) throw new FormatError('latest read files: expected runs of one or two inode numbers');
      return r.join('-');
    });
    return `\nRecently Read Inodes: ${runs.length ? runs.join(' ') : '(none)'}\n`;
  }
  const m = obj(metrics, 'files metrics');
  const inodes = Object.keys(m).sort((x, y) => Number(x) - Number(y));
  if (inodes.length === 0) return '\nNo per-file counters (is iostats_files on?)\n';
  const lines = [''];
  for (const ino of inodes) {
    const what = `files metrics of inode ${ino}`;
    const f = obj(m[ino], what);
    lines.push(`Inode ${ino}: ${num(f, 'total_fops', what)} fops, ${num(f, 'data_read', what)} Bytes read, reads per size class [${nums(f, 'block_count_read', 8, what).join(', ')}]`);
  }
  return lines.join('\n') + '\n';
}

/** `metrics pattern` (ours; 8.4): `Inode N: R reads, first at S.NNNNNNNNN` per inode read, ascending by inode. */
export function formatPattern(entries: unknown): string {
  if (!Array.isArray(entries)) throw new FormatError('access pattern: expected a JSON array');
  if (entries.length === 0) return '\nNo access recorded (is access_pattern on?)\n';
  const what = 'access pattern entry';
  const rows = entries.map((raw) => obj(raw, what)).sort((x, y) => num(x, 'ino', what) - num(y, 'ino', what));
  const lines = [''];
  for (const e of rows) {
    lines.push(`Inode ${num(e, 'ino', what)}: ${num(e, 'nr_read', what)} reads, first at ${num(e, 'first_access_time_secs', what)}.${String(num(e, 'first_access_time_nanos', what)).padStart(9, '0')}`);
  }
  return lines.join('\n') + '\n';
}
