// Debian's real `docker-registry` (distribution 2.8) for end-to-end tests: started on 127.0.0.1 with a free port, a
// temporary storage directory and a generated configuration, optionally with htpasswd Basic auth (users made with
// `htpasswd -Bbn`); stopped (SIGTERM, then SIGKILL) by `stop()`. Blobs are pushed with plain monolithic uploads
// through our RegistryClient (POST /v2/<repo>/blobs/uploads/, then PUT <location>?digest=sha256:...).
// Kept minimal on purpose: the shared harness for token auth, redirects and faults is test/helpers/registry.ts.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { RegistryClient } from '../../src/storage/backend/registry/client.js';
import { sleep } from './helpers.js';

export interface DockerRegistry {
  /** 127.0.0.1:<port> */
  host: string;
  /** base64 of user:password when started with a user */
  auth?: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts docker-registry in `dir` (storage, config and htpasswd go there); resolves once /v2/ answers. */
export async function startDockerRegistry(dir: string, user?: { name: string; password: string }): Promise<DockerRegistry> {
  if (spawnSync('sh', ['-c', 'command -v docker-registry']).status !== 0) {
    throw new Error("docker-registry is not installed (scripts/setup.sh installs Debian's docker-registry)");
  }
  fs.mkdirSync(path.join(dir, 'storage'), { recursive: true });
  let authYaml = '';
  if (user) {
    const r = spawnSync('htpasswd', ['-Bbn', user.name, user.password], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`htpasswd failed: ${r.stderr}`);
    fs.writeFileSync(path.join(dir, 'htpasswd'), r.stdout);
    authYaml = `auth:\n  htpasswd:\n    realm: nydus-test\n    path: ${path.join(dir, 'htpasswd')}\n`;
  }
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const config = path.join(dir, 'config.yml');
    fs.writeFileSync(config, [
      'version: 0.1',
      'log:',
      '  level: warn',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${path.join(dir, 'storage')}`,
      'http:',
      `  addr: 127.0.0.1:${port}`,
      authYaml,
    ].join('\n'));
    const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<void>((r) => child.once('close', () => r()));
    const host = `127.0.0.1:${port}`;
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(5_000)]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
      }
    };
    // ready once /v2/ answers (200 anonymous, 401 with auth); a port taken meanwhile makes it exit: try another
    const deadline = Date.now() + 20_000;
    for (;;) {
      const ok = await fetch(`http://${host}/v2/`).then((r) => r.status === 200 || r.status === 401, () => false);
      if (ok) return { host, child, stop, auth: user ? Buffer.from(`${user.name}:${user.password}`).toString('base64') : undefined };
      if (child.exitCode !== null || Date.now() > deadline) {
        await stop();
        if (attempt < 3 && /address already in use/.test(stderr)) break;
        throw new Error(`docker-registry did not start on ${host}: ${stderr}`);
      }
      await sleep(50);
    }
  }
}

/** Pushes `data` as a blob of `repo` (monolithic upload); returns its hex sha256. */
export async function pushBlob(registry: DockerRegistry, repo: string, data: Buffer): Promise<string> {
  const digest = crypto.createHash('sha256').update(data).digest('hex');
  const client = new RegistryClient({ scheme: 'http', host: registry.host, repo, credential: registry.auth });
  try {
    const started = await client.request({ method: 'POST', path: 'blobs/uploads/' });
    await started.discard();
    if (started.status !== 202) throw new Error(`starting an upload to ${registry.host}/${repo} answered ${started.status}`);
    const location = client.url(started.header('location')!);
    location.searchParams.set('digest', `sha256:${digest}`);
    const done = await client.request({
      method: 'PUT',
      path: location.href,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(data.length) },
      body: data,
    });
    const text = await done.text();
    if (done.status !== 201) throw new Error(`uploading blob sha256:${digest} answered ${done.status}: ${text}`);
    return digest;
  } finally {
    await client.close();
  }
}
