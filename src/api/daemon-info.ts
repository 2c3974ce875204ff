// DaemonInfo (spec nydusd-runtime.md 3.5.1): keys in the reference's order, the version block of `nydusd --version`
// (DECISIONS.md 14), and for v1 the mounted instances with their scrubbed, complete configuration.
import { renderConfig } from '../config/render.js';
import type { FuseDaemon } from '../service/daemon.js';
import { buildInfo } from '../service/version.js';

/**
 * `YYYY-MM-DD HH:MM:SS.f +00:00:00` in UTC, with as many fractional digits as needed (1 to 9): nydusctl parses
 * exactly this and panics on anything else.
 */
export function formatMountedTime(ns: bigint): string {
  const secs = ns / 1_000_000_000n;
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '') || '0';
  const d = new Date(Number(secs) * 1000);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const date = `${p(d.getUTCFullYear(), 4)}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}`;
  return `${date} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${frac} +00:00:00`;
}

/**
 * Each instance's rendered configuration, made once: an instance's configuration never changes (a remount is another
 * instance), and the snapshotter polls this route while containers read (BENCHMARKS.md run W: API latency under load).
 */
const rendered = new WeakMap<object, unknown>();

function renderedConfig(config: Parameters<typeof renderConfig>[0]): unknown {
  let r = rendered.get(config);
  if (r === undefined) {
    r = renderConfig(config);
    rendered.set(config, r);
  }
  return r;
}

export function daemonInfo(daemon: FuseDaemon, withCollection: boolean): unknown {
  const b = buildInfo();
  let collection: Record<string, unknown> | null = null;
  if (withCollection) {
    collection = {};
    for (const m of daemon.instances()) {
      collection[m.mountpoint] = {
        backend_type: 'Rafs',
        mountpoint: m.mountpoint,
        mounted_time: formatMountedTime(m.mountedAtNs),
        config: renderedConfig(m.instance.config),
      };
    }
  }
  return {
    version: { package_ver: b.package_ver, git_commit: b.git_commit, build_time: b.build_time, profile: b.profile, rustc: b.rustc },
    id: daemon.args.id ?? null,
    supervisor: daemon.args.supervisor ?? null,
    state: daemon.state.state,
    backend_collection: collection,
  };
}
