// The handler of every operationId of api/v1.yaml and api/v2.yaml. The server refuses to start if this map and the
// documents disagree in either direction. A handler returns the JSON body of a 200, or undefined for a 204, and
// throws ApiError (or UnexpectedEventError, 400) for an error answer.
import type { FuseDaemon } from '../service/daemon.js';
import type { LogLevel } from '../service/args.js';
import { superblockSummary } from '../service/superblock-summary.js';
import { CONFIG_HANDLERS } from './config-handlers.js';
import { daemonInfo } from './daemon-info.js';
import { ApiError, notImplemented } from './errors.js';
import { metricsHandlers } from './metrics-handlers.js';
import { mountFilesystem, remountFilesystem, umountFilesystem } from './mount-handlers.js';

export interface ApiRequest {
  query: Record<string, string>;
  body: unknown;
  /** runs `fn` once the answer has been written out (PUT /daemon/exit exits only then) */
  afterResponse(fn: () => void): void;
}

export interface ApiContext {
  daemon: FuseDaemon;
  /** stop serving without unmounting, remove the socket and exit 0 (spec nydusd-runtime.md 1.11) */
  exitKeepingMount(): void;
}

export interface Handler {
  /** the first word of error messages (spec nydusd-runtime.md 3.3, route wrappers) */
  wrapper: string;
  handle(req: ApiRequest, ctx: ApiContext): unknown;
}

const LEVELS: readonly LogLevel[] = ['off', 'error', 'warn', 'info', 'debug', 'trace'];

function setLogLevel(req: ApiRequest, ctx: ApiContext): undefined {
  // the schema made log_level a string; its value is matched case-insensitively (spec 3.5.2)
  const want = (req.body as { log_level: string }).log_level;
  const level = LEVELS.find((l) => l === want.toLowerCase());
  if (!level) throw new ApiError(500, `unknown log level ${JSON.stringify(want)}: expected one of ${LEVELS.join(', ')}`);
  ctx.daemon.log.level = level;
  ctx.daemon.log.info(`log level set to ${level} through the API`);
  return undefined;
}

const FAILOVER = 'failover and hot upgrade (supervisor fd passing) are not implemented by this nydusd yet';
const NO_BLOB_MANAGER = 'unsupported: /api/v2/blobs needs the blob-cache manager of a singleton (fscache) daemon, which this FUSE nydusd does not run';

export const HANDLERS: Record<string, Handler> = {
  describeDaemon: { wrapper: 'DaemonInfo', handle: (_r, ctx) => daemonInfo(ctx.daemon, true) },
  describeDaemonV2: { wrapper: 'DaemonInfo', handle: (_r, ctx) => daemonInfo(ctx.daemon, false) },
  configureDaemon: { wrapper: 'Configure', handle: setLogLevel },
  configureDaemonV2: { wrapper: 'Configure', handle: setLogLevel },
  getEvents: { wrapper: 'Events', handle: (_r, ctx) => ctx.daemon.events.view() },
  getFsBackendInfo: {
    wrapper: 'FsBackendInfo',
    handle: (req, ctx) => {
      const m = ctx.daemon.instances().find((i) => i.mountpoint === req.query.mountpoint);
      if (!m) throw new ApiError(500, `object or filesystem doesn't exist: nothing is mounted at ${JSON.stringify(req.query.mountpoint)}`);
      return superblockSummary(m.bootstrapPath, m.instance.bootstrap.superblock.rootIno);
    },
  },
  startDaemon: {
    wrapper: 'Configure',
    handle: async (_r, ctx) => {
      await ctx.daemon.state.fire('Start');
      return undefined;
    },
  },
  exitDaemon: {
    wrapper: 'Configure',
    handle: (req, ctx) => {
      // the reference signals itself before its answer is flushed; this one answers first (spec 3.5.5)
      req.afterResponse(() => ctx.exitKeepingMount());
      return undefined;
    },
  },
  sendFuseFd: { wrapper: 'Upgrade', handle: () => { throw notImplemented(FAILOVER); } },
  takeoverFuseFd: { wrapper: 'Upgrade', handle: () => { throw notImplemented(FAILOVER); } },
  mountFilesystem: { wrapper: 'Mount', handle: mountFilesystem },
  remountFilesystem: { wrapper: 'Mount', handle: remountFilesystem },
  umountFilesystem: { wrapper: 'Mount', handle: umountFilesystem },
  ...metricsHandlers(),
  getDynamicConfig: CONFIG_HANDLERS.get,
  updateDynamicConfig: CONFIG_HANDLERS.put,
  createBlobObject: { wrapper: 'CreateBlobObject', handle: () => { throw new ApiError(501, NO_BLOB_MANAGER); } },
  getBlobObjects: {
    wrapper: 'GetBlobObjects',
    handle: (req) => {
      if (req.query.domain_id === undefined) throw new ApiError(400, "'domain_id' should be specified in query string");
      throw new ApiError(501, 'listing blob objects is not implemented (nor by the reference)');
    },
  },
  deleteBlobObject: {
    wrapper: 'DeleteBlobObject',
    handle: (req) => {
      if (req.query.domain_id !== undefined) throw new ApiError(501, NO_BLOB_MANAGER);
      // culling a cached blob file is an fscache operation: nothing to do for a FUSE daemon (spec 3.4)
      if (req.query.blob_id !== undefined) return undefined;
      throw new ApiError(400, "'domain_id' or 'blob_id' should be specified in query string");
    },
  },
};
