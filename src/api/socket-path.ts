// The --apisock path before the server listens: a stale socket of a dead daemon is replaced, a live one refused. Apart
// from the server (fastify), so that the daemon can check the path before it mounts without loading the server.
import { lstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';

/**
 * A socket file left by a dead daemon is replaced (spec 1.9 step 8); one that something still answers on is
 * refused, so that two daemons never fight over one API; a path that is not a socket is never deleted.
 */
export async function prepareSocketPath(p: string, replaceStale = true): Promise<void> {
  let st;
  try {
    st = lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new Error(`--apisock ${p}: ${(err as Error).message}`);
  }
  if (!st.isSocket()) throw new Error(`--apisock ${p}: the path exists and is not a socket; refusing to replace it`);
  if (await answers(p)) throw new Error(`--apisock ${p}: another process is serving this socket (a live daemon?); refusing to replace it`);
  if (replaceStale) unlinkSync(p);
}

function answers(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(p);
    const done = (alive: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(alive);
    };
    // a listener whose backlog is full does not accept within this: count it as alive (never delete a live socket)
    const timer = setTimeout(() => done(true), 2000);
    s.once('connect', () => done(true));
    s.once('error', (err: NodeJS.ErrnoException) => done(err.code !== 'ECONNREFUSED' && err.code !== 'ENOENT'));
  });
}
