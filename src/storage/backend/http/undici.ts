// The parts of undici the HTTP client uses, loaded without the rest. undici's index also loads fetch, WebSocket,
// EventSource, the caches and the mocks: 82 ms of a registry daemon's start against 21 ms for the Pool and the request
// API (measured by hand on this machine, issue 11: the time to read one small file from a cold mount is mostly the
// daemon's start). undici 7 has no `exports` map, so its lib/ files are reachable; package-lock.json pins the version,
// and the tests of test/storage/backend/ (the CONNECT tunnel in proxy.test.ts) send through these.
import { createRequire } from 'node:module';
import type { Dispatcher, Pool as PoolType, ProxyAgent as ProxyAgentType } from 'undici';

const requireHere = createRequire(import.meta.url);

/** undici's index gives every dispatcher its request() and stream() methods this way; done once, here. */
function withApi<T>(dispatcherClass: T): T {
  const base = requireHere('undici/lib/dispatcher/dispatcher.js') as { prototype: object };
  if (!('request' in base.prototype)) Object.assign(base.prototype, requireHere('undici/lib/api/index.js'));
  return dispatcherClass;
}

export const Pool = withApi(requireHere('undici/lib/dispatcher/pool.js') as typeof PoolType);

/** Loaded on first use: only a client behind an https forward proxy needs it. */
export function proxyAgentClass(): typeof ProxyAgentType {
  return withApi(requireHere('undici/lib/dispatcher/proxy-agent.js') as typeof ProxyAgentType);
}

export type { Dispatcher };
