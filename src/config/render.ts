// Renders a configuration as the normalized v2 document that DaemonInfo embeds (spec nydusd-runtime.md 3.5.1):
// every key present and in the reference's order, absent sub-objects null (nydusctl deserializes it strictly), and
// secrets scrubbed. The reference scrubs registry `auth` and `registry_token` (to null) and the OSS keys (to "");
// we also scrub the S3 keys and the cache `encryption_key` (its quirk Q6: scrubbing them is recommended).
import type {
  BackendConfig, CacheConfig, ConfigV2, FileCacheConfig, NetworkConfig, ObjectStoreConfig, PrefetchConfig, RafsConfig,
} from './model.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function prefetch(p: PrefetchConfig): Json {
  return {
    enable: p.enable,
    threads: p.threads,
    batch_size: p.batch_size,
    bandwidth_limit: p.bandwidth_limit,
    prefetch_all: p.prefetch_all,
    stream_prefetch: p.stream_prefetch,
  };
}

function network(n: NetworkConfig): { [key: string]: Json } {
  const p = n.proxy;
  return {
    skip_verify: n.skip_verify,
    ca_cert_files: [...n.ca_cert_files],
    timeout: n.timeout,
    connect_timeout: n.connect_timeout,
    retry_limit: n.retry_limit,
    proxy: {
      url: p.url,
      ping_url: p.ping_url,
      fallback: p.fallback,
      check_interval: p.check_interval,
      use_http: p.use_http,
      check_pause_elapsed: p.check_pause_elapsed,
      dragonfly_scheduler_endpoint: p.dragonfly_scheduler_endpoint,
    },
  };
}

function objectStore(o: ObjectStoreConfig): { [key: string]: Json } {
  return {
    scheme: o.scheme,
    endpoint: o.endpoint,
    bucket_name: o.bucket_name,
    object_prefix: o.object_prefix,
    access_key_id: '',
    access_key_secret: '',
    ...network(o),
  };
}

function backend(b: BackendConfig): Json {
  const out: { [key: string]: Json } = {
    type: b.type, localdisk: null, localfs: null, oss: null, s3: null, registry: null, 'http-proxy': null,
  };
  switch (b.type) {
    case 'localfs': {
      const l = b.localfs;
      out.localfs = { blob_file: l.blob_file, dir: l.dir, alt_dirs: [...l.alt_dirs], timeout: l.timeout };
      break;
    }
    case 'localdisk':
      out.localdisk = { device_path: b.localdisk.device_path, disable_gpt: b.localdisk.disable_gpt };
      break;
    case 'oss':
      out.oss = objectStore(b.oss);
      break;
    case 's3':
      out.s3 = { ...objectStore(b.s3), region: b.s3.region };
      break;
    case 'registry': {
      const r = b.registry;
      const n = network(r);
      out.registry = {
        scheme: r.scheme,
        host: r.host,
        repo: r.repo,
        auth: null,
        skip_verify: n.skip_verify!,
        ca_cert_files: n.ca_cert_files!,
        timeout: n.timeout!,
        connect_timeout: n.connect_timeout!,
        retry_limit: n.retry_limit!,
        registry_token: null,
        blob_url_scheme: r.blob_url_scheme,
        blob_redirected_host: r.blob_redirected_host,
        proxy: n.proxy!,
      };
      break;
    }
    case 'http-proxy': {
      const h = b['http-proxy'];
      out['http-proxy'] = { addr: h.addr, path: h.path, ...network(h) };
      break;
    }
    case 'kraken': {
      // our extension: the key exists only for this type, so every reference-typed document stays as it was
      const k = b.kraken;
      out.kraken = {
        agent: k.agent,
        namespace: k.namespace,
        timeout: k.timeout,
        connect_timeout: k.connect_timeout,
        check_interval: k.check_interval,
        spool_dir: k.spool_dir,
        skip_verify: k.skip_verify,
        ca_cert_files: [...k.ca_cert_files],
      };
      break;
    }
  }
  return out;
}

function filecache(f: FileCacheConfig): Json {
  return {
    work_dir: f.work_dir,
    disable_indexed_map: f.disable_indexed_map,
    enable_encryption: f.enable_encryption,
    enable_convergent_encryption: f.enable_convergent_encryption,
    encryption_key: '',
  };
}

function cache(c: CacheConfig): Json {
  return {
    type: c.type,
    compressed: c.compressed,
    validate: c.validate,
    prefetch: prefetch(c.prefetch),
    filecache: c.filecache ? filecache(c.filecache) : null,
    fscache: c.fscache ? { work_dir: c.fscache.work_dir } : null,
  };
}

function rafs(r: RafsConfig): Json {
  return {
    mode: r.mode,
    batch_size: r.batch_size,
    validate: r.validate,
    enable_xattr: r.enable_xattr,
    iostats_files: r.iostats_files,
    access_pattern: r.access_pattern,
    latest_read_files: r.latest_read_files,
    prefetch: prefetch(r.prefetch),
  };
}

/** The configuration as DaemonInfo's `backend_collection[...].config`: complete, ordered, no secrets. */
export function renderConfig(c: ConfigV2): Json {
  return {
    version: 2,
    id: c.id,
    backend: c.backend ? backend(c.backend) : null,
    // an external backend's `config` is an arbitrary backend configuration, keys and tokens included: reported
    // empty, with the element's other two keys as given (all three are required by the reference's parser)
    external_backends: c.external_backends.map((e) => {
      const o = (typeof e === 'object' && e !== null ? e : {}) as { patch?: unknown; type?: unknown };
      return { patch: (o.patch ?? {}) as Json, type: typeof o.type === 'string' ? o.type : null, config: {} };
    }),
    cache: c.cache ? cache(c.cache) : null,
    rafs: c.rafs ? rafs(c.rafs) : null,
    overlay: c.overlay ? { upper_dir: c.overlay.upper_dir, work_dir: c.overlay.work_dir } : null,
  };
}
