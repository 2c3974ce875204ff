// snapshotter-contract.md section 8 items 7 and 8: a connection on which nothing is sent is never closed by the
// daemon (the snapshotter holds one as its liveness probe and treats a hang-up as the daemon's death), a keep-alive
// connection serves requests far apart, and the daemon's death is seen at once on the silent connection.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { after, test } from 'node:test';
import { cleanupDaemons, isMounted, removeDir, requireEnv, sleep } from '../nydusd/helpers.js';
import { startApiDaemon, type ApiDaemon } from './helpers.js';

interface Watched {
  socket: net.Socket;
  received: () => string;
  closed: () => boolean;
  closedOnce: Promise<void>;
}

function watch(sock: string): Promise<Watched> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(sock);
    let got = '';
    let isClosed = false;
    const closedOnce = new Promise<void>((r) => socket.once('close', () => ((isClosed = true), r())));
    socket.setEncoding('utf8').on('data', (d: string) => (got += d));
    socket.once('error', () => undefined);
    socket.once('connect', () => resolve({ socket, received: () => got, closed: () => isClosed, closedOnce }));
    socket.once('error', reject);
  });
}

const GET = 'GET /api/v1/daemon HTTP/1.1\r\nHost: unix\r\nUser-Agent: Go-http-client/1.1\r\nAccept-Encoding: gzip\r\n\r\n';

async function answered(w: Watched, count: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((w.received().match(/HTTP\/1\.1 200 /g) ?? []).length < count) {
    if (w.closed() || Date.now() > deadline) throw new Error(`no answer ${count} on the keep-alive connection: ${w.received()}`);
    await sleep(5);
  }
}

/**
 * Opens a silent connection and a keep-alive one, waits `seconds` (the waiting is the test), then: the silent one
 * has received nothing and is still open, both still serve a GET; then SIGKILL of the daemon closes the silent one.
 */
export async function idleConnectionsSurvive(d: ApiDaemon, seconds: number): Promise<void> {
  const silent = await watch(d.sock);
  const keepAlive = await watch(d.sock);
  keepAlive.socket.write(GET);
  await answered(keepAlive, 1);
  await sleep(seconds * 1000);
  assert.equal(silent.received(), '', 'the daemon wrote on a connection nobody sent anything on');
  assert.equal(silent.closed(), false, `the daemon closed a silent connection within ${seconds} s`);
  assert.equal(keepAlive.closed(), false, `the daemon closed an idle keep-alive connection within ${seconds} s`);
  keepAlive.socket.write(GET);
  await answered(keepAlive, 2);
  silent.socket.write(GET);
  await answered(silent, 1);
  const other = await watch(d.sock);
  d.daemon.signal('SIGKILL');
  // a hang-up is how the snapshotter learns of the death: it must come (bounded only against a hang)
  await Promise.race([other.closedOnce, sleep(10_000).then(() => assert.fail('no hang-up on the idle connection after SIGKILL'))]);
  for (const w of [silent, keepAlive, other]) w.socket.destroy();
}

/** The idle test of one file: a daemon of its own, `seconds` of silence, and the cleanup. */
export function idleTest(seconds: number): void {
  requireEnv();
  let d: ApiDaemon | undefined;
  after(async () => {
    await cleanupDaemons();
    if (d && isMounted(d.mountpoint)) spawnSync('umount', ['-l', d.mountpoint]);
    if (d) removeDir(d.dir);
  });
  test(`a silent connection and an idle keep-alive connection survive ${seconds} s; SIGKILL hangs them up`, { timeout: seconds * 1000 + 80_000 }, async () => {
    d = await startApiDaemon();
    await idleConnectionsSurvive(d, seconds);
  });
}
