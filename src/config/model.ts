// The typed configuration of one RAFS instance: the reference's v2 model (spec nydusd-runtime.md 2.3, 2.4), which
// every accepted syntax (v1 JSON, v2 JSON or TOML, YAML) is parsed into (parse.ts). It is the bottom of the layer graph:
// storage, rafs, service and the API read it, and it imports nothing of theirs.

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
  dragonfly_scheduler_endpoint: string;
}

/** The fields every network backend shares (nydusd-runtime.md 2.4, "Common network fields"). */
export interface NetworkConfig {
  skip_verify: boolean;
  ca_cert_files: string[];
  timeout: number;
  connect_timeout: number;
  retry_limit: number;
  proxy: ProxyConfig;
}

export interface LocalFsConfig {
  blob_file: string;
  dir: string;
  alt_dirs: string[];
  /** per-read timeout in seconds, 0 = none (our extension: a blob on a dead network filesystem must not hang reads) */
  timeout: number;
}

export interface LocalDiskConfig {
  device_path: string;
  disable_gpt: boolean;
}

export interface RegistryConfig extends NetworkConfig {
  scheme: string;
  host: string;
  repo: string;
  /** base64 of user:password; a secret: never logged or reported */
  auth: string | null;
  /** a secret: never logged or reported */
  registry_token: string | null;
  blob_url_scheme: string;
  blob_redirected_host: string;
}

export interface ObjectStoreConfig extends NetworkConfig {
  scheme: string;
  endpoint: string;
  bucket_name: string;
  object_prefix: string;
  access_key_id: string;
  access_key_secret: string;
}

export interface OssConfig extends ObjectStoreConfig {}

export interface S3Config extends ObjectStoreConfig {
  region: string;
}

export interface HttpProxyConfig extends NetworkConfig {
  addr: string;
  path: string;
}

/**
 * Our extension, not a reference backend type (issue 11 scope 4; spec p2p-seeds.md 3): whole blobs from a Kraken agent
 * server's `GET /namespace/<namespace>/blobs/sha256:<id>`, streamed once per blob into a spool file that chunk reads
 * are answered from as soon as their bytes have arrived; `GET /health` drives a health check.
 */
export interface KrakenConfig {
  /** the agent server, `http(s)://host:port` (no path, query or credentials) */
  agent: string;
  /** the Kraken namespace of the blobs: the image's repository, e.g. `library/debian` */
  namespace: string;
  /** seconds the agent may send nothing (before its answer, or between body bytes) before the download fails; 0 = none */
  timeout: number;
  /** seconds for connection set-up; 0 = none */
  connect_timeout: number;
  /** seconds between `GET /health` checks; 0 = no health checks */
  check_interval: number;
  /** where the backend makes its spool directory (removed on close); '' = the system temp dir */
  spool_dir: string;
  skip_verify: boolean;
  ca_cert_files: string[];
}

/** `type` names the one sub-object that is present, as in the v2 document. */
export type BackendConfig =
  | { type: 'localfs'; localfs: LocalFsConfig }
  | { type: 'localdisk'; localdisk: LocalDiskConfig }
  | { type: 'registry'; registry: RegistryConfig }
  | { type: 'oss'; oss: OssConfig }
  | { type: 's3'; s3: S3Config }
  | { type: 'http-proxy'; 'http-proxy': HttpProxyConfig }
  | { type: 'kraken'; kraken: KrakenConfig };

export type BackendType = BackendConfig['type'];

export interface FileCacheConfig {
  work_dir: string;
  disable_indexed_map: boolean;
  enable_encryption: boolean;
  enable_convergent_encryption: boolean;
  encryption_key: string;
}

export type CacheType = '' | 'blobcache' | 'filecache' | 'fscache' | 'dummycache';

export interface CacheConfig {
  type: CacheType;
  compressed: boolean;
  validate: boolean;
  prefetch: PrefetchConfig;
  filecache?: FileCacheConfig;
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

/** Where parsing reports what it accepted but an operator should hear about (clamped values, keys in the wrong place). */
export type ConfigWarn = (message: string) => void;

/** The largest amplification and prefetch batch the reference accepts (bytes). */
export const MAX_BATCH = 268435456;

/**
 * The longest duration a Node.js timer can wait (2^31 - 1 ms). A longer one fires after 1 ms instead, which made
 * every backend read time out at once (issue 8): durations from configuration are clamped to it, with a warning.
 */
export const MAX_TIMER_SEC = 2147483;
