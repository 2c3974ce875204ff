// The parts of undici the HTTP client uses, loaded without the rest. undici's index also loads fetch, WebSocket,
// EventSource, the caches and the mocks: 82 ms of a registry daemon's start against 21 ms for the Pool and the request
// API (measured by hand on this machine, issue 11: the time to read one small file from a cold mount is mostly the
// daemon's start). undici 7 has no `exports` map, so its lib/ files are reachable; package-lock.json pins the version,
// and the tests of test/storage/backend/ (the CONNECT tunnel in proxy.test.ts) send through these.
import { createRequire } from 'node:module';
import net from 'node:net';
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

/**
 * One HTTP exchange with a throwaway server of this process on loopback, so that undici's first real request finds
 * ready what it otherwise does inside that request: loading, compiling and instantiating its parser (llhttp,
 * WebAssembly) on the first connection, and compiling its request path on first use. That was 15 ms of a shared
 * daemon's first read of a small file from a registry (--cpu-prof, issue 11). Any failure (no loopback in this network
 * namespace) is ignored: the first real request then does the same work, as it did before.
 */
export async function warmUp(): Promise<void> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.once('data', () => socket.end('HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n'));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const { port } = server.address() as net.AddressInfo;
    const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 1 });
    try {
      const res = await pool.request({ method: 'GET', path: '/' });
      await res.body.dump();
    } finally {
      await pool.close();
    }
  } catch {
    // see above
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}

export type { Dispatcher };
