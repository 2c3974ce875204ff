// RAFS instance configuration: v1 (legacy JSON, what nydus-snapshotter writes), v2 JSON and v2 TOML as
// the reference accepts them, plus YAML for operators. Everything is normalised to the v2 model, which is
// also what the API reports back. Unknown keys are ignored everywhere, because the snapshotter emits some.
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';

export interface PrefetchConfig {
  enable: boolean;
  threads: number;
  batch_size: number;
  bandwidth_limit: number;
  prefetch_all: boolean;
  stream_prefetch: boolean;
}

export interface ProxyConfig {
  url: string;
  ping_url: string;
  fallback: boolean;
  check_interval: number;
  use_http: boolean;
  check_pause_elapsed: number;
}

export interface BackendConfig {
  type: string;
  /** the type's own sub-object (`localfs`, `registry`, `http-proxy`, ...), with defaults applied */
  [key: string]: unknown;
}

export interface CacheConfig {
  type: string;
  compressed: boolean;
  validate: boolean;
  prefetch: PrefetchConfig;
  filecache?: { work_dir: string; disable_indexed_map: boolean; enable_encryption: boolean };
  fscache?: { work_dir: string };
}

export interface RafsConfig {
  mode: 'direct' | 'cached';
  batch_size: number;
  validate: boolean;
  enable_xattr: boolean;
  iostats_files: boolean;
  access_pattern: boolean;
  latest_read_files: boolean;
  prefetch: PrefetchConfig;
}

export interface ConfigV2 {
  version: 2;
  id: string;
  backend?: BackendConfig;
  external_backends: unknown[];
  cache?: CacheConfig;
  rafs?: RafsConfig;
  overlay?: { upper_dir: string; work_dir: string };
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const MAX_BATCH = 268435456;
/**
 * The longest duration a Node.js timer can wait (2^31 - 1 ms). A longer one fires after 1 ms instead, which made
 * every backend read time out at once (issue 8): durations from configuration are clamped to it, with a warning.
 */
export const MAX_TIMER_SEC = 2147483;
const NETWORK_DEFAULTS = { skip_verify: false, ca_cert_files: [] as string[], timeout: 5, connect_timeout: 5, retry_limit: 0 };
const PROXY_DEFAULTS: ProxyConfig = { url: '', ping_url: '', fallback: true, check_interval: 5, use_http: false, check_pause_elapsed: 300 };

type Obj = Record<string, unknown>;

/** Where parsing reports what it accepted but an operator should hear about (clamped values, keys in the wrong place). */
export type ConfigWarn = (message: string) => void;

/** A duration in seconds: a finite number >= 0, clamped to what a timer can wait. */
function duration(o: Obj, key: string, dflt: number, where: string, warn: ConfigWarn): number {
  const v = field(o, key, 'number', dflt, where);
  if (v < 0) throw new ConfigError(`${where}.${key}: a duration in seconds must be >= 0, got ${v}`);
  if (v > MAX_TIMER_SEC) {
    warn(`${where}.${key}: ${v} s is longer than the longest timer (${MAX_TIMER_SEC} s); using ${MAX_TIMER_SEC} s`);
    return MAX_TIMER_SEC;
  }
  return v;
}

/** A whole number in [min, max]. */
function integer(o: Obj, key: string, dflt: number, min: number, max: number, where: string): number {
  const v = field(o, key, 'number', dflt, where);
  if (!Number.isInteger(v) || v < min || v > max) throw new ConfigError(`${where}.${key}: expected an integer in ${min}..${max}, got ${v}`);
  return v;
}

/**
 * Known keys that sit where the reference never reads them: ignored, as the reference ignores unknown keys, but
 * named in a warning (cache.validate placed in cache.config looks right and silently does nothing).
 */
const MISPLACED: { under: string[]; keys: string[]; belongs: string }[] = [
  { under: ['device', 'cache', 'config'], keys: ['validate', 'compressed'], belongs: 'device.cache' },
  { under: ['device'], keys: ['amplify_io', 'digest_validate', 'enable_xattr', 'mode', 'iostats_files', 'access_pattern', 'fs_prefetch'], belongs: 'the top level' },
  { under: ['cache', 'filecache'], keys: ['validate', 'compressed', 'prefetch'], belongs: 'cache' },
  { under: ['cache', 'fscache'], keys: ['validate', 'compressed', 'prefetch'], belongs: 'cache' },
  { under: ['rafs'], keys: ['compressed'], belongs: 'cache' },
];

function warnMisplaced(doc: Obj, warn: ConfigWarn): void {
  for (const m of MISPLACED) {
    let o: unknown = doc;
    for (const k of m.under) o = isObj(o) ? o[k] : undefined;
    if (!isObj(o)) continue;
    for (const k of m.keys) {
      if (k in o) warn(`${m.under.join('.')}.${k} is ignored: "${k}" belongs in ${m.belongs}`);
    }
  }
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function field<T>(o: Obj, key: string, kind: 'string' | 'number' | 'boolean', dflt: T, where: string): T {
  const v = o[key];
  if (v === undefined || v === null) return dflt;
  if (kind === 'number' ? typeof v !== 'number' || !Number.isFinite(v) : typeof v !== kind) {
    throw new ConfigError(`${where}.${key}: expected a ${kind}, got ${JSON.stringify(v)}`);
  }
  return v as T;
}

function sub(o: Obj, key: string, where: string): Obj | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) throw new ConfigError(`${where}.${key}: expected an object`);
  return v;
}

function prefetch(o: Obj | undefined, where: string, v1 = false): PrefetchConfig {
  if (!o) return { enable: false, threads: 8, batch_size: 1048576, bandwidth_limit: 0, prefetch_all: false, stream_prefetch: false };
  const p: PrefetchConfig = v1
    ? {
        enable: field(o, 'enable', 'boolean', false, where),
        threads: field(o, 'threads_count', 'number', 8, where),
        batch_size: field(o, 'merging_size', 'number', 1048576, where),
        bandwidth_limit: field(o, 'bandwidth_rate', 'number', 0, where),
        prefetch_all: field(o, 'prefetch_all', 'boolean', true, where),
        stream_prefetch: field(o, 'stream_prefetch', 'boolean', false, where),
      }
    : {
        enable: field(o, 'enable', 'boolean', undefined as unknown as boolean, where),
        threads: field(o, 'threads', 'number', 8, where),
        batch_size: field(o, 'batch_size', 'number', 1048576, where),
        bandwidth_limit: field(o, 'bandwidth_limit', 'number', 0, where),
        prefetch_all: field(o, 'prefetch_all', 'boolean', false, where),
        stream_prefetch: field(o, 'stream_prefetch', 'boolean', false, where),
      };
  if (p.enable === undefined) throw new ConfigError(`${where}.enable is required when ${where} is present`);
  if (p.enable) {
    if (!Number.isInteger(p.threads) || p.threads < 1 || p.threads > 1024) throw new ConfigError(`${where}: threads must be 1..1024, got ${p.threads}`);
    if (!Number.isInteger(p.batch_size) || p.batch_size < 0 || p.batch_size > MAX_BATCH) {
      throw new ConfigError(`${where}: batch_size must be an integer in 0..${MAX_BATCH}, got ${p.batch_size}`);
    }
  }
  return p;
}

function backendV2(o: Obj, where: string, warn: ConfigWarn): BackendConfig {
  const type = field<string>(o, 'type', 'string', '', where);
  if (!type) throw new ConfigError(`${where}.type is required`);
  const key = type;
  const body = sub(o, key, where) ?? {};
  return { type, [key]: backendBody(type, body, `${where}.${key}`, warn) };
}

/** Applies defaults and the reference's per-type validation to a backend's own settings. */
function backendBody(type: string, b: Obj, where: string, warn: ConfigWarn): Obj {
  const str = (k: string) => field<string>(b, k, 'string', '', where);
  const network = () => {
    const ca = b.ca_cert_files ?? [];
    if (!Array.isArray(ca) || ca.some((f) => typeof f !== 'string')) throw new ConfigError(`${where}.ca_cert_files: expected an array of strings`);
    const p = sub(b, 'proxy', where) ?? {};
    const pw = `${where}.proxy`;
    return {
      skip_verify: field(b, 'skip_verify', 'boolean', NETWORK_DEFAULTS.skip_verify, where),
      ca_cert_files: ca as string[],
      timeout: duration(b, 'timeout', NETWORK_DEFAULTS.timeout, where, warn),
      connect_timeout: duration(b, 'connect_timeout', NETWORK_DEFAULTS.connect_timeout, where, warn),
      retry_limit: integer(b, 'retry_limit', NETWORK_DEFAULTS.retry_limit, 0, 1000, where),
      proxy: {
        ...p,
        url: field(p, 'url', 'string', PROXY_DEFAULTS.url, pw),
        ping_url: field(p, 'ping_url', 'string', PROXY_DEFAULTS.ping_url, pw),
        fallback: field(p, 'fallback', 'boolean', PROXY_DEFAULTS.fallback, pw),
        check_interval: duration(p, 'check_interval', PROXY_DEFAULTS.check_interval, pw, warn),
        use_http: field(p, 'use_http', 'boolean', PROXY_DEFAULTS.use_http, pw),
        check_pause_elapsed: duration(p, 'check_pause_elapsed', PROXY_DEFAULTS.check_pause_elapsed, pw, warn),
      },
    };
  };
  switch (type) {
    case 'localfs': {
      const alt = b.alt_dirs ?? [];
      if (!Array.isArray(alt) || alt.some((d) => typeof d !== 'string')) throw new ConfigError(`${where}.alt_dirs: expected an array of strings`);
      const out = { blob_file: str('blob_file'), dir: str('dir'), alt_dirs: alt as string[], timeout: duration(b, 'timeout', 0, where, warn) };
      if (!out.blob_file && !out.dir) throw new ConfigError(`${where}: localfs needs "dir" or "blob_file"`);
      return out;
    }
    case 'localdisk':
      if (!str('device_path')) throw new ConfigError(`${where}.device_path is required`);
      return { device_path: str('device_path'), disable_gpt: field(b, 'disable_gpt', 'boolean', false, where) };
    case 'registry': {
      if (!str('host') || !str('repo')) throw new ConfigError(`${where}: registry needs "host" and "repo"`);
      return {
        ...network(),
        scheme: str('scheme') || 'https',
        host: str('host'),
        repo: str('repo'),
        auth: typeof b.auth === 'string' && b.auth.trim() ? b.auth.trim() : null,
        registry_token: typeof b.registry_token === 'string' && b.registry_token ? b.registry_token : null,
        blob_url_scheme: str('blob_url_scheme'),
        blob_redirected_host: str('blob_redirected_host'),
      };
    }
    case 'oss':
      if (!str('endpoint') || !str('bucket_name')) throw new ConfigError(`${where}: oss needs "endpoint" and "bucket_name"`);
      return { ...b, ...network() };
    case 's3':
      if (!str('region') || !str('bucket_name')) throw new ConfigError(`${where}: s3 needs "region" and "bucket_name"`);
      return { ...b, ...network() };
    case 'http-proxy': {
      const addr = str('addr');
      if (!addr || !(/^https?:\/\//.test(addr) || addr.startsWith('/'))) {
        throw new ConfigError(`${where}.addr must be an http(s) URL or an absolute unix socket path`);
      }
      return { ...network(), addr, path: str('path') };
    }
    default:
      throw new ConfigError(`${where}: unknown backend type "${type}"`);
  }
}

function cacheV2(o: Obj, where: string): CacheConfig {
  const type = field<string>(o, 'type', 'string', '', where);
  if (!['', 'blobcache', 'filecache', 'fscache', 'dummycache'].includes(type)) throw new ConfigError(`${where}.type: unknown cache type "${type}"`);
  const c: CacheConfig = {
    type,
    compressed: field(o, 'compressed', 'boolean', false, where),
    validate: field(o, 'validate', 'boolean', false, where),
    prefetch: prefetch(sub(o, 'prefetch', where), `${where}.prefetch`),
  };
  const fc = sub(o, 'filecache', where);
  if (fc) {
    c.filecache = {
      work_dir: field(fc, 'work_dir', 'string', '.', `${where}.filecache`),
      disable_indexed_map: field(fc, 'disable_indexed_map', 'boolean', false, `${where}.filecache`),
      enable_encryption: field(fc, 'enable_encryption', 'boolean', false, `${where}.filecache`),
    };
  }
  const fs = sub(o, 'fscache', where);
  if (fs) c.fscache = { work_dir: field(fs, 'work_dir', 'string', '', `${where}.fscache`) };
  if ((type === 'blobcache' || type === 'filecache') && !c.filecache?.work_dir) {
    throw new ConfigError(`${where}: a ${type} cache needs filecache.work_dir`);
  }
  if (type === 'fscache' && !c.fscache?.work_dir) throw new ConfigError(`${where}: an fscache cache needs fscache.work_dir`);
  return c;
}

function rafsV2(o: Obj, where: string): RafsConfig {
  const mode = field(o, 'mode', 'string', 'direct', where);
  if (mode !== 'direct' && mode !== 'cached') throw new ConfigError(`${where}.mode must be "direct" or "cached", got "${mode}"`);
  const r: RafsConfig = {
    mode,
    batch_size: integer(o, 'batch_size', 1048576, 0, MAX_BATCH, where),
    validate: field(o, 'validate', 'boolean', false, where),
    enable_xattr: field(o, 'enable_xattr', 'boolean', false, where),
    iostats_files: field(o, 'iostats_files', 'boolean', false, where),
    access_pattern: field(o, 'access_pattern', 'boolean', false, where),
    latest_read_files: field(o, 'latest_read_files', 'boolean', false, where),
    prefetch: prefetch(sub(o, 'prefetch', where), `${where}.prefetch`),
  };
  return r;
}

function fromV2(o: Obj, warn: ConfigWarn): ConfigV2 {
  if (o.version !== 2) throw new ConfigError(`version must be 2, got ${JSON.stringify(o.version)}`);
  const ext = o.external_backends ?? [];
  if (!Array.isArray(ext)) throw new ConfigError('external_backends: expected an array');
  const cfg: ConfigV2 = { version: 2, id: field(o, 'id', 'string', '', 'config'), external_backends: ext };
  const b = sub(o, 'backend', 'config');
  if (b) cfg.backend = backendV2(b, 'backend', warn);
  const c = sub(o, 'cache', 'config');
  if (c) cfg.cache = cacheV2(c, 'cache');
  const r = sub(o, 'rafs', 'config');
  if (r) cfg.rafs = rafsV2(r, 'rafs');
  const ov = sub(o, 'overlay', 'config');
  if (ov) {
    const upper = field(ov, 'upper_dir', 'string', '', 'overlay');
    const work = field(ov, 'work_dir', 'string', '', 'overlay');
    if (!upper || !work) throw new ConfigError('overlay: upper_dir and work_dir must both be set');
    cfg.overlay = { upper_dir: upper, work_dir: work };
  }
  return cfg;
}

/** v1 (legacy) -> v2, as the reference converts it. */
function fromV1(o: Obj, warn: ConfigWarn): ConfigV2 {
  const device = sub(o, 'device', 'config');
  if (!device) throw new ConfigError('v1 configuration: "device" is required');
  const backend = sub(device, 'backend', 'device');
  if (!backend) throw new ConfigError('v1 configuration: device.backend is required');
  const btype = field<string>(backend, 'type', 'string', '', 'device.backend');
  if (!btype) throw new ConfigError('v1 configuration: device.backend.type is required');
  const bconf = sub(backend, 'config', 'device.backend');
  if (!bconf) throw new ConfigError('v1 configuration: device.backend.config is required');
  const mode = o.mode;
  if (mode === undefined) throw new ConfigError('v1 configuration: "mode" is required');
  const cache = sub(device, 'cache', 'device') ?? {};
  const ctype = field<string>(cache, 'type', 'string', '', 'device.cache');
  const cconf = sub(cache, 'config', 'device.cache');
  const fsPrefetch = prefetch(sub(o, 'fs_prefetch', 'config'), 'fs_prefetch', true);
  // named as the v1 document names it, not as the v2 key it becomes
  const amplifyIo = integer(o, 'amplify_io', 1048576, 0, MAX_BATCH, 'config');
  const v2: Obj = {
    version: 2,
    id: field(device, 'id', 'string', '', 'device'),
    backend: { type: btype, [btype]: bconf },
    external_backends: o.external_backends ?? [],
    cache: {
      type: ctype,
      compressed: cache.compressed ?? false,
      validate: cache.validate ?? false,
      ...(ctype === 'fscache' ? { fscache: cconf ?? {} } : ctype ? { filecache: cconf ?? {} } : {}),
    },
    rafs: {
      mode,
      batch_size: amplifyIo,
      validate: o.digest_validate ?? false,
      enable_xattr: o.enable_xattr ?? false,
      iostats_files: o.iostats_files ?? false,
      access_pattern: o.access_pattern ?? false,
      latest_read_files: o.latest_read_files ?? false,
    },
  };
  const cfg = fromV2(v2, warn);
  if (fsPrefetch.enable) {
    cfg.rafs!.prefetch = { ...fsPrefetch };
    cfg.cache!.prefetch = { ...fsPrefetch };
  }
  return cfg;
}

/**
 * Parses a configuration text in any accepted syntax: JSON v2 (has "version"), JSON v1, TOML v2, YAML
 * (v1 or v2 shape). A v2 document that parses but is invalid is rejected with the reason.
 */
export function parseConfig(text: string, warn: ConfigWarn = () => undefined): ConfigV2 {
  let doc: unknown;
  let syntax = 'JSON';
  try {
    doc = JSON.parse(text);
  } catch {
    try {
      doc = parseToml(text);
      syntax = 'TOML';
    } catch {
      try {
        doc = parseYaml(text);
        syntax = 'YAML';
      } catch {
        throw new ConfigError('failed to parse configuration information: not valid JSON, TOML or YAML');
      }
    }
  }
  if (!isObj(doc)) throw new ConfigError(`failed to parse configuration information: the ${syntax} document is not an object`);
  try {
    warnMisplaced(doc, warn);
    return 'version' in doc ? fromV2(doc, warn) : fromV1(doc, warn);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`invalid configuration (${syntax}): ${err.message}`);
    throw err;
  }
}

/** The configuration `--localfs-dir D` stands for: localfs on D, blobcache in D, direct mode. */
export function localfsDirConfig(dir: string): ConfigV2 {
  return fromV2(
    {
      version: 2,
      backend: { type: 'localfs', localfs: { dir } },
      cache: { type: 'blobcache', filecache: { work_dir: dir } },
      rafs: { mode: 'direct' },
    },
    () => undefined,
  );
}
