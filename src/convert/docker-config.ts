// Registry credentials the way docker and the reference nydusify find them: `auths.<host>.auth` (base64 of
// user:password), or `username`/`password`, in $DOCKER_CONFIG/config.json or ~/.docker/config.json. Credential
// helpers (`credsStore`) are not run.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function dockerConfigFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.DOCKER_CONFIG ?? path.join(env.HOME ?? os.homedir(), '.docker'), 'config.json');
}

/** base64 user:password for `host`, or undefined when the file or the host's entry is absent. */
export function dockerCredential(host: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const file = dockerConfigFile(env);
  if (!existsSync(file)) return undefined;
  let auths: Record<string, { auth?: unknown; username?: unknown; password?: unknown }>;
  try {
    const o = JSON.parse(readFileSync(file, 'utf8')) as { auths?: unknown };
    auths = (typeof o.auths === 'object' && o.auths !== null ? o.auths : {}) as typeof auths;
  } catch (e) {
    throw new Error(`cannot read registry credentials from ${file}: ${(e as Error).message}`);
  }
  const names = host === 'docker.io'
    ? ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'https://index.docker.io/v1/']
    : [host];
  for (const [key, entry] of Object.entries(auths)) {
    const bare = key.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
    if (!names.includes(key) && !names.includes(bare)) continue;
    if (typeof entry?.auth === 'string' && entry.auth !== '') return entry.auth;
    if (typeof entry?.username === 'string' && typeof entry.password === 'string') {
      return Buffer.from(`${entry.username}:${entry.password}`).toString('base64');
    }
  }
  return undefined;
}
