// POST, PUT and DELETE /api/v1/mount (spec nydusd-runtime.md 3.5.6): RAFS instances attached, replaced and detached at
// paths inside the FUSE mount of a shared daemon (and of a dedicated one, beside nothing: its root is an instance).
import { InstancePathError, parseInstancePath } from '../service/vfs.js';
import type { ApiContext, ApiRequest } from './handlers.js';
import { ApiError } from './errors.js';

interface MountCmd {
  source: string;
  fs_type?: string;
  config: string;
  prefetch_files?: string[];
}

/** The `mountpoint` query parameter, checked: a path that is not absolute and normalised is a bad request (400). */
function mountpointOf(req: ApiRequest): string {
  const p = req.query.mountpoint;
  if (p === undefined) throw new ApiError(400, "'mountpoint' should be specified in query string");
  try {
    parseInstancePath(p);
  } catch (err) {
    throw new ApiError(400, (err as Error).message);
  }
  return p;
}

function commandOf(req: ApiRequest): MountCmd {
  const cmd = req.body as MountCmd;
  const type = cmd.fs_type;
  if (type === 'passthrough' || type === 'passthroughfs' || type === 'passthrough_fs') {
    throw new ApiError(501, 'unsupported: passthrough_fs instances are not served by this nydusd (RAFS only)');
  }
  if (type !== 'rafs') throw new ApiError(500, `only 'rafs' and 'passthrough_fs' are supported (fs_type ${JSON.stringify(type ?? null)})`);
  return cmd;
}

/** Errors of the daemon keep the reference's 500; an InstancePathError for a taken or empty place is one of them. */
function asApiError(err: unknown): unknown {
  if (err instanceof ApiError) return err;
  if (err instanceof InstancePathError) return new ApiError(500, err.message);
  return err;
}

export async function mountFilesystem(req: ApiRequest, ctx: ApiContext): Promise<undefined> {
  const path = mountpointOf(req);
  const cmd = commandOf(req);
  try {
    await ctx.daemon.mountInstance(path, cmd.source, cmd.config, cmd.prefetch_files ?? []);
  } catch (err) {
    throw asApiError(err);
  }
  return undefined;
}

export async function remountFilesystem(req: ApiRequest, ctx: ApiContext): Promise<undefined> {
  const path = mountpointOf(req);
  const cmd = commandOf(req);
  try {
    await ctx.daemon.remountInstance(path, cmd.source, cmd.config);
  } catch (err) {
    throw asApiError(err);
  }
  return undefined;
}

export async function umountFilesystem(req: ApiRequest, ctx: ApiContext): Promise<undefined> {
  const path = mountpointOf(req);
  try {
    await ctx.daemon.umountInstance(path);
  } catch (err) {
    throw asApiError(err);
  }
  return undefined;
}
