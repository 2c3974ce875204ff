// The dynamic configuration store (spec nydusd-runtime.md 2.6): one process-wide map of string values keyed
// `<id>:<key>`, where `<id>` is the backend id (the instance's mountpoint inside the FUSE tree: `/` for the
// instance of the command line, `/<snapshot>` for API mounts). Each instance's keys are seeded from its
// configuration; PUT /api/v1/config changes them at run time (snapshotter-contract.md 2.4: the snapshotter rotates
// registry credentials this way) and the backends that use a key subscribe to its changes.
import type { BackendConfig, ConfigV2, ProxyConfig } from '../config/model.js';

export const DYNAMIC_KEYS = ['registry_auth', 'proxy_url', 'dragonfly_scheduler_endpoint'] as const;
export type DynamicKey = (typeof DYNAMIC_KEYS)[number];

/** Keys whose values are credentials: never reported, logged or counted (issue 9), only used. */
export const SECRET_KEYS: ReadonlySet<DynamicKey> = new Set<DynamicKey>(['registry_auth']);

/** What GET /api/v1/config shows instead of a secret value that is set (an empty one is shown as ''). */
export const REDACTED = '<redacted>';

export function isDynamicKey(k: string): k is DynamicKey {
  return (DYNAMIC_KEYS as readonly string[]).includes(k);
}

export class DynamicConfigError extends Error {
  constructor(
    message: string,
    /** the keys that are not known, or whose value is not a string */
    readonly unknownKeys: string[],
    readonly nonStringKeys: string[],
  ) {
    super(message);
    this.name = 'DynamicConfigError';
  }
}

/** One key changed for one id; `value` may be a secret: a listener must not log it. */
export type DynamicConfigListener = (id: string, key: DynamicKey, value: string) => void;

/** The network part of a backend that has one (registry, oss, s3, http-proxy): where the proxy settings live. */
function proxyOf(b: BackendConfig | undefined): ProxyConfig | undefined {
  switch (b?.type) {
    case 'registry': return b.registry.proxy;
    case 'oss': return b.oss.proxy;
    case 's3': return b.s3.proxy;
    case 'http-proxy': return b['http-proxy'].proxy;
    default: return undefined;
  }
}

/** The keys an instance's configuration seeds (2.6: the proxy keys only when non-empty). */
export function seedValues(config: ConfigV2): Partial<Record<DynamicKey, string>> {
  const out: Partial<Record<DynamicKey, string>> = {};
  const b = config.backend;
  if (b?.type === 'registry' && b.registry.auth) out.registry_auth = b.registry.auth;
  const proxy = proxyOf(b);
  if (proxy?.url) out.proxy_url = proxy.url;
  if (proxy?.dragonfly_scheduler_endpoint) out.dragonfly_scheduler_endpoint = proxy.dragonfly_scheduler_endpoint;
  return out;
}

export class DynamicConfigStore {
  private readonly values = new Map<string, string>();
  private readonly listeners = new Set<DynamicConfigListener>();
  /** the configuration each id was last seeded from: a remounted instance (a new configuration) seeds again */
  private readonly seededFrom = new Map<string, ConfigV2>();

  get(id: string, key: DynamicKey): string | undefined {
    return this.values.get(`${id}:${key}`);
  }

  /** The keys of one id, its prefix stripped (GET /api/v1/config?id=...); secrets redacted unless asked for. */
  entriesOf(id: string, opts: { secrets?: boolean } = {}): Record<string, string> {
    const out: Record<string, string> = {};
    const prefix = `${id}:`;
    for (const [k, v] of this.values) {
      // the key is what follows the id's prefix: an id may itself contain ':'
      if (!k.startsWith(prefix) || !isDynamicKey(k.slice(prefix.length))) continue;
      const key = k.slice(prefix.length) as DynamicKey;
      out[key] = opts.secrets ? v : shown(key, v);
    }
    return out;
  }

  /** Every entry under its full `<id>:<key>` name (GET /api/v1/config without id); secrets redacted. */
  entries(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of this.values) out[k] = shown(k.slice(k.lastIndexOf(':') + 1) as DynamicKey, v);
    return out;
  }

  /**
   * Sets keys of one id. Every key and value is checked before any is applied (issue 9: "all validated before any
   * is applied"; the reference applies the keys before a bad one and keeps them), so a refused update changes
   * nothing. Listeners hear of each key set, after all are.
   */
  update(id: string, values: Record<string, unknown>): DynamicKey[] {
    const keys = Object.keys(values);
    const unknown = keys.filter((k) => !isDynamicKey(k));
    const nonString = keys.filter((k) => isDynamicKey(k) && typeof values[k] !== 'string');
    if (unknown.length || nonString.length) {
      const parts: string[] = [];
      // key names only, never values: a value may be a credential
      if (unknown.length) parts.push(`unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: ${DYNAMIC_KEYS.join(', ')})`);
      if (nonString.length) parts.push(`the value of ${nonString.map((k) => JSON.stringify(k)).join(', ')} must be a string`);
      throw new DynamicConfigError(`${parts.join('; ')}; nothing was applied`, unknown, nonString);
    }
    const set = keys as DynamicKey[];
    for (const k of set) this.values.set(`${id}:${k}`, values[k] as string);
    for (const k of set) this.notify(id, k, values[k] as string);
    return set;
  }

  /** Seeds an instance's keys from its configuration, once per configuration (2.6: at backend creation). */
  seed(id: string, config: ConfigV2): void {
    if (this.seededFrom.get(id) === config) return;
    this.seededFrom.set(id, config);
    for (const [k, v] of Object.entries(seedValues(config)) as [DynamicKey, string][]) this.values.set(`${id}:${k}`, v);
  }

  /** Hears every change made through update(); returns the function that stops it. */
  subscribe(fn: DynamicConfigListener): () => void {
    this.listeners.add(fn);
    return () => void this.listeners.delete(fn);
  }

  private notify(id: string, key: DynamicKey, value: string): void {
    for (const fn of this.listeners) fn(id, key, value);
  }
}

function shown(key: DynamicKey, value: string): string {
  return SECRET_KEYS.has(key) && value !== '' ? REDACTED : value;
}

/** The store of this process: one for every instance, as the reference has it. */
export const dynamicConfig = new DynamicConfigStore();
