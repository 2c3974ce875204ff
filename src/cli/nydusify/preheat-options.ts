// The Dragonfly options of `nydusify preheat` and `convert --preheat`, checked once (spec p2p-seeds.md 1-2). Kept
// apart from the commands, and free of main.ts, so that convert.ts and preheat.ts can both use them without an
// import cycle.
import { UsageError, type OptionSpec, type ParsedArgv } from '../../argv.js';
import { managerUrl, PREHEAT_APIS, PREHEAT_SCOPES, type PreheatApi, type PreheatScope } from '../../convert/dragonfly-preheat.js';

/** The Dragonfly options, shared by `preheat` and `convert --preheat`. */
export const DRAGONFLY_SPECS: OptionSpec[] = [
  { long: 'dragonfly-manager', value: '<url>' },
  { long: 'dragonfly-token', value: '<token>' },
  { long: 'dragonfly-scope', value: '<scope>' },
  { long: 'dragonfly-cluster-id', value: '<id>', repeatable: true },
  { long: 'dragonfly-api', value: '<oapi|legacy>' },
  { long: 'preheat-type', value: '<file|image>' },
  { long: 'preheat-timeout', value: '<duration>' },
];

const first = (p: ParsedArgv, name: string): string | undefined => p.options.get(name)?.[0];

/** the default bound of a whole preheat */
const DEFAULT_TIMEOUT_MS = 600_000;

export interface PreheatSettings {
  managerUrl: string;
  token?: string;
  api: PreheatApi;
  scope?: PreheatScope;
  clusterIds: number[];
  type: 'file' | 'image';
  timeoutMs: number;
}

/** `30`, `30s`, `500ms`, `5m`, `1h` (a bare number is seconds) -> ms. */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  const ms = m ? Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'] : NaN;
  if (!Number.isFinite(ms) || ms <= 0 || ms > 2 ** 31 - 1) throw new UsageError(`${what} '${text}' is invalid (expected e.g. 90, 90s, 500ms, 10m or 1h)`);
  return ms;
}

/** The Dragonfly options checked; `command` names the command in messages. */
export function preheatSettings(p: ParsedArgv, command: string): PreheatSettings {
  const url = first(p, 'dragonfly-manager');
  if (url === undefined || url === '') throw new UsageError(`${command}: the option '--dragonfly-manager' is required`);
  try {
    managerUrl(url);
  } catch (e) {
    throw new UsageError(`${command}: ${(e as Error).message}`);
  }
  const api = (first(p, 'dragonfly-api') ?? 'oapi') as PreheatApi;
  if (!PREHEAT_APIS.includes(api)) throw new UsageError(`${command}: invalid Dragonfly API '${api}' (expected ${PREHEAT_APIS.join(' or ')})`);
  const scope = first(p, 'dragonfly-scope') as PreheatScope | undefined;
  if (scope !== undefined && !PREHEAT_SCOPES.includes(scope)) {
    throw new UsageError(`${command}: invalid Dragonfly scope '${scope}' (expected one of: ${PREHEAT_SCOPES.join(', ')})`);
  }
  const clusterIds = (p.options.get('dragonfly-cluster-id') ?? []).map((v) => {
    if (!/^[1-9]\d{0,9}$/.test(v)) throw new UsageError(`${command}: invalid scheduler cluster id '${v}' (expected a positive integer)`);
    return Number(v);
  });
  const type = first(p, 'preheat-type') ?? 'file';
  if (type !== 'file' && type !== 'image') throw new UsageError(`${command}: invalid preheat type '${type}' (expected file or image)`);
  if (api === 'legacy' && (scope !== undefined || clusterIds.length > 0)) {
    throw new UsageError(`${command}: --dragonfly-scope and --dragonfly-cluster-id need the Open API (--dragonfly-api oapi); the legacy preheat API has neither`);
  }
  const timeoutText = first(p, 'preheat-timeout');
  const token = first(p, 'dragonfly-token');
  return {
    managerUrl: url,
    ...(token ? { token } : {}),
    api,
    ...(scope ? { scope } : {}),
    clusterIds,
    type,
    timeoutMs: timeoutText === undefined ? DEFAULT_TIMEOUT_MS : parseDuration(timeoutText, `${command}: preheat timeout`),
  };
}

