// A small Debian docker-registry (the Distribution reference server) on loopback for the nydusify tests: a random
// port, temporary storage, optionally htpasswd Basic auth. (A fuller harness lives in test/helpers; this one stays
// local until the two are unified.)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { sleep } from '../nydusd/helpers.js';

export interface Registry {
  /** 127.0.0.1:<port> */
  host: string;
  /** the filesystem storage root (blobs under docker/registry/v2/blobs/sha256/<xx>/<hex>/data) */
  storage: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Starts `docker-registry serve` in `dir`; with `user`, Basic auth from an htpasswd file (bcrypt, as it requires). */
export async function startRegistry(dir: string, user?: { name: string; password: string }): Promise<Registry> {
  const storage = path.join(dir, 'storage');
  mkdirSync(storage, { recursive: true });
  const port = await freePort();
  let auth = '';
  if (user) {
    const file = path.join(dir, 'htpasswd');
    const r = spawnSync('htpasswd', ['-Bbn', user.name, user.password], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`htpasswd failed: ${r.stderr}`);
    writeFileSync(file, r.stdout);
    auth = `auth:\n  htpasswd:\n    realm: nydusify-test\n    path: ${file}\n`;
  }
  const config = path.join(dir, 'config.yml');
  writeFileSync(config, `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${storage}\nhttp:\n  addr: 127.0.0.1:${port}\n${auth}`);
  const child: ChildProcess = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let exited = false;
  child.once('close', () => (exited = true));
  const host = `127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited) throw new Error(`docker-registry exited at start: ${stderr}`);
    const status = await fetch(`http://${host}/v2/`).then((r) => r.status, () => 0);
    if (status === 200 || status === 401) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not answer on ${host} within 30 s: ${stderr}`);
    }
    await sleep(50);
  }
  return {
    host,
    storage,
    stop: async () => {
      if (exited) return;
      const gone = new Promise((r) => child.once('close', r));
      child.kill('SIGTERM');
      await Promise.race([gone, sleep(5_000)]);
      if (!exited) child.kill('SIGKILL');
    },
  };
}

export function registryBlobFile(reg: Registry, digest: string): string {
  const hex = digest.replace(/^sha256:/, '');
  return path.join(reg.storage, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}
