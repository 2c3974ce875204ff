// Parses a RAFS instance configuration in every syntax the reference accepts: v1 (legacy JSON, what nydus-snapshotter
// writes), v2 JSON and v2 TOML, plus YAML for operators, into the typed v2 model (model.ts) that is also what the API
// reports back. Unknown keys are ignored everywhere, because the snapshotter emits some; known keys in the wrong place
// and clamped values are reported through `warn`.
import { createRequire } from 'node:module';
import {
  ConfigError, MAX_BATCH, MAX_TIMER_SEC,
  type BackendConfig, type CacheConfig, type KrakenConfig, type CacheType, type ConfigV2, type ConfigWarn, type NetworkConfig, type ObjectStoreConfig,
  type PrefetchConfig, type ProxyConfig, type RafsConfig,
} from './model.js';

const NETWORK_DEFAULTS = { skip_verify: false, timeout: 5, connect_timeout: 5, retry_limit: 0 };
/** the kraken backend's (our extension): the agent answers only once it holds the whole blob, so `timeout` is generous */
const KRAKEN_DEFAULTS = { timeout: 30, connect_timeout: 5, check_interval: 5 };
const PROXY_DEFAULTS: ProxyConfig = {
  url: '', ping_url: '', fallback: true, check_interval: 5, use_http: false, check_pause_elapsed: 300, dragonfly_scheduler_endpoint: '',
};

type Obj = Record<string, unknown>;

/**
 * The TOML and YAML parsers are loaded when a configuration is not JSON, the snapshotter's case: yaml alone took
 * 20 ms of a daemon's start (measured, issue 11). Loaded synchronously (both packages ship CommonJS), so that
 * parsing stays a plain function for its callers.
 */
const requireHere = createRequire(import.meta.url);
const parseToml = (text: string): unknown => (requireHere('smol-toml') as typeof import('smol-toml')).parse(text);
/** YAML text to a plain value, the parser loaded on first use; also the API's documents' fallback (api/documents.ts). */
export const parseYaml = (text: string): unknown => (requireHere('yaml') as typeof import('yaml')).parse(text);


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
  const b = sub(o, type, where) ?? {};
  const w = `${where}.${type}`;
  const str = (k: string, dflt = '') => field<string>(b, k, 'string', dflt, w);
  const strings = (k: string): string[] => {
    const v = b[k] ?? [];
    if (!Array.isArray(v) || v.some((d) => typeof d !== 'string')) throw new ConfigError(`${w}.${k}: expected an array of strings`);
    return v as string[];
  };
  const network = (): NetworkConfig => {
    const p = sub(b, 'proxy', w) ?? {};
    const pw = `${w}.proxy`;
    return {
      skip_verify: field(b, 'skip_verify', 'boolean', NETWORK_DEFAULTS.skip_verify, w),
      ca_cert_files: strings('ca_cert_files'),
      timeout: duration(b, 'timeout', NETWORK_DEFAULTS.timeout, w, warn),
      connect_timeout: duration(b, 'connect_timeout', NETWORK_DEFAULTS.connect_timeout, w, warn),
      retry_limit: integer(b, 'retry_limit', NETWORK_DEFAULTS.retry_limit, 0, 1000, w),
      proxy: {
        url: field(p, 'url', 'string', PROXY_DEFAULTS.url, pw),
        ping_url: field(p, 'ping_url', 'string', PROXY_DEFAULTS.ping_url, pw),
        fallback: field(p, 'fallback', 'boolean', PROXY_DEFAULTS.fallback, pw),
        check_interval: duration(p, 'check_interval', PROXY_DEFAULTS.check_interval, pw, warn),
        use_http: field(p, 'use_http', 'boolean', PROXY_DEFAULTS.use_http, pw),
        check_pause_elapsed: duration(p, 'check_pause_elapsed', PROXY_DEFAULTS.check_pause_elapsed, pw, warn),
        dragonfly_scheduler_endpoint: field(p, 'dragonfly_scheduler_endpoint', 'string', PROXY_DEFAULTS.dragonfly_scheduler_endpoint, pw),
      },
    };
  };
  const objectStore = (): ObjectStoreConfig => ({
    ...network(),
    scheme: str('scheme', 'https'),
    endpoint: str('endpoint'),
    bucket_name: str('bucket_name'),
    object_prefix: str('object_prefix'),
    access_key_id: str('access_key_id'),
    access_key_secret: str('access_key_secret'),
  });
  // the reference's per-type validation (nydusd-runtime.md 2.3)
  switch (type) {
    case 'localfs': {
      const localfs = { blob_file: str('blob_file'), dir: str('dir'), alt_dirs: strings('alt_dirs'), timeout: duration(b, 'timeout', 0, w, warn) };
      if (!localfs.blob_file && !localfs.dir) throw new ConfigError(`${w}: localfs needs "dir" or "blob_file"`);
      return { type, localfs };
    }
    case 'localdisk':
      if (!str('device_path')) throw new ConfigError(`${w}.device_path is required`);
      return { type, localdisk: { device_path: str('device_path'), disable_gpt: field(b, 'disable_gpt', 'boolean', false, w) } };
    case 'registry': {
      if (!str('host') || !str('repo')) throw new ConfigError(`${w}: registry needs "host" and "repo"`);
      const secret = (k: string) => (typeof b[k] === 'string' && (b[k] as string).trim() ? (b[k] as string).trim() : null);
      return {
        type,
        registry: {
          ...network(),
          scheme: str('scheme') || 'https',
          host: str('host'),
          repo: str('repo'),
          auth: secret('auth'),
          registry_token: secret('registry_token'),
          blob_url_scheme: str('blob_url_scheme'),
          blob_redirected_host: str('blob_redirected_host'),
        },
      };
    }
    case 'oss': {
      const oss = objectStore();
      if (!oss.endpoint || !oss.bucket_name) throw new ConfigError(`${w}: oss needs "endpoint" and "bucket_name"`);
      return { type, oss };
    }
    case 's3': {
      const s3 = { ...objectStore(), region: str('region') };
      if (!s3.region || !s3.bucket_name) throw new ConfigError(`${w}: s3 needs "region" and "bucket_name"`);
      return { type, s3 };
    }
    case 'http-proxy': {
      const addr = str('addr');
      if (!addr || !(/^https?:\/\//.test(addr) || addr.startsWith('/'))) {
        throw new ConfigError(`${w}.addr must be an http(s) URL or an absolute unix socket path`);
      }
      return { type, 'http-proxy': { ...network(), addr, path: str('path') } };
    }
    case 'kraken':
      return { type, kraken: kraken(b, w, warn) };
    default:
      throw new ConfigError(`${where}: unknown backend type "${type}"`);
  }
}

/** The kraken backend (our extension, model.ts KrakenConfig): `agent` and `namespace` required, the agent a bare origin. */
function kraken(b: Obj, w: string, warn: ConfigWarn): KrakenConfig {
  const agent = field<string>(b, 'agent', 'string', '', w).trim();
  const namespace = field<string>(b, 'namespace', 'string', '', w).trim();
  if (!agent || !namespace) throw new ConfigError(`${w}: kraken needs "agent" (http://host:port of the agent server) and "namespace"`);
  let url: URL;
  try {
    url = new URL(agent);
  } catch {
    throw new ConfigError(`${w}.agent: ${JSON.stringify(agent)} is not a URL (expected http://host:port)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`${w}.agent: expected an http or https URL, got ${url.protocol}`);
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username || url.password) {
    throw new ConfigError(`${w}.agent: expected only scheme, host and port (http://host:port), got ${JSON.stringify(agent)}`);
  }
  const cas = b.ca_cert_files ?? [];
  if (!Array.isArray(cas) || cas.some((d) => typeof d !== 'string')) throw new ConfigError(`${w}.ca_cert_files: expected an array of strings`);
  return {
    agent: url.origin,
    namespace,
    timeout: duration(b, 'timeout', KRAKEN_DEFAULTS.timeout, w, warn),
    connect_timeout: duration(b, 'connect_timeout', KRAKEN_DEFAULTS.connect_timeout, w, warn),
    check_interval: duration(b, 'check_interval', KRAKEN_DEFAULTS.check_interval, w, warn),
    spool_dir: field<string>(b, 'spool_dir', 'string', '', w),
    skip_verify: field(b, 'skip_verify', 'boolean', false, w),
    ca_cert_files: cas as string[],
  };
}

const CACHE_TYPES: readonly CacheType[] = ['', 'blobcache', 'filecache', 'fscache', 'dummycache'];

function cacheV2(o: Obj, where: string): CacheConfig {
  const type = field<string>(o, 'type', 'string', '', where) as CacheType;
  if (!CACHE_TYPES.includes(type)) throw new ConfigError(`${where}.type: unknown cache type "${type}"`);
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
      enable_convergent_encryption: field(fc, 'enable_convergent_encryption', 'boolean', false, `${where}.filecache`),
      encryption_key: field(fc, 'encryption_key', 'string', '', `${where}.filecache`),
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
