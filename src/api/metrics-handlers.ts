// The metrics routes (spec nydusd-runtime.md 3.5.7, 3.5.8, section 8): the nydus JSON of the process's metrics registry,
// with the `id` rule (an unknown id, or no id with zero or several objects, is a 404 with a {code, message} body).
import { blobcacheSnapshot } from '../metrics/blobcache.js';
import {
  backendJson,
  blobcacheJson,
  fsFilesJson,
  fsGlobalJson,
  inflightJson,
  latestReadJson,
  patternJson,
} from '../metrics/nydus-json.js';
import { NoCounterError, processMetrics, type MetricsRegistry } from '../metrics/registry.js';
import { ApiError } from './errors.js';
import { RawJson } from './raw-json.js';
import type { ApiRequest, Handler } from './handlers.js';

function byId<T>(req: ApiRequest, get: (id: string | undefined) => T): T {
  try {
    return get(req.query.id);
  } catch (err) {
    if (err instanceof NoCounterError) throw new ApiError(404, err.message);
    throw err;
  }
}

/** `latest` is parsed as a boolean; anything unparsable is false (3.5.7). */
function isTrue(v: string | undefined): boolean {
  return v === 'true';
}

export function metricsHandlers(reg: MetricsRegistry = processMetrics): Record<string, Handler> {
  return {
    getGlobalMetrics: { wrapper: 'GlobalMetrics', handle: (req) => fsGlobalJson(byId(req, (id) => reg.fs(id))) },
    getFilesMetrics: {
      wrapper: 'FsFilesMetrics',
      handle: (req) => {
        const m = byId(req, (id) => reg.fs(id));
        return isTrue(req.query.latest) ? latestReadJson(m) : fsFilesJson(m);
      },
    },
    getPatternMetrics: { wrapper: 'Pattern', handle: (req) => patternJson(byId(req, (id) => reg.fs(id))) },
    getBackendMetrics: { wrapper: 'BackendMetrics', handle: (req) => backendJson(byId(req, (id) => reg.backend(id))) },
    getBlobcacheMetrics: {
      wrapper: 'BlobcacheMetrics',
      handle: async (req) => blobcacheJson(await blobcacheSnapshot(byId(req, (id) => reg.blobcache(id)))),
    },
    getInflightMetrics: {
      wrapper: 'InflightMetrics',
      handle: (_req, ctx) => {
        const text = inflightJson(ctx.daemon.fuseSession?.inflight() ?? []);
        return text === undefined ? undefined : new RawJson(text);
      },
    },
  };
}
