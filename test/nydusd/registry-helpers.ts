// nydusd on the registry backend (issue 11 acceptance): the fixture image whose blob is pushed to a real registry
// (test/helpers/registry.ts), the v1 configuration nydus-snapshotter writes for it (spec nydusd-runtime.md 2.4), a
// dedicated daemon with --apisock, and bounded reads of the mount compared with the fixture's md5 listing.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot, texture } from '../helpers/paths.js';
import type { RegistryClient } from '../helpers/registry.js';
import { waitForSocket } from '../api/helpers.js';
import { Daemon, daemonMetrics, runBounded } from './helpers.js';
import { splitResult } from './tree-listing.js';

/**
 * The v5 fixture whose blob id is the sha256 of its bytes (so a registry stores it under that digest): 23 chunks of
 * at most 1 MiB, uncompressed, sha256 chunk digests; its `.result` holds the md5 of every file.
 */
export const FIXTURE = {
  bootstrap: texture('repeatable', 'sha256-nocompress-repeatable'),
  blobId: '7334a2594e133cf8ae364189c2276b090fc490c627bcc3fb1077f0419a538e00',
  get blob(): Buffer {
    return readFileSync(texture('repeatable', 'blobs', this.blobId));
  },
};

/** `rel -> md5` of every regular file of the fixture's source tree (its `.result` listing, paths without the `/`). */
export function fixtureSums(): Map<string, string> {
  const { sums } = splitResult(readFileSync(texture('repeatable', 'sha256-nocompress-repeatable.result'), 'utf8'));
  const out = new Map<string, string>();
  for (const line of sums.split('\n').filter(Boolean)) {
    const m = /^([0-9a-f]{32}) {2}\/(.+)$/.exec(line);
    if (!m) throw new Error(`not an md5sum line: ${line}`);
    out.set(m[2]!, m[1]!);
  }
  return out;
}

/**
 * The fixture's files in three groups that share no chunk, so that each group read cold needs backend reads of its
 * own: A the small files of chunks 0-3, B the busybox layer (chunks 4-11), C the hole files (chunks 12-22).
 */
export function fixtureGroups(): { A: string[]; B: string[]; C: string[] } {
  const all = [...fixtureSums().keys()].sort();
  const B = all.filter((f) => f.startsWith('normal-file-test/busybox/1f777'));
  const C = all.filter((f) => f.startsWith('normal-file-test/holefiles/'));
  const A = all.filter((f) => !B.includes(f) && !C.includes(f));
  return { A, B, C };
}

/** Pushes the fixture's blob (and an image naming it as its layer) to `repo`; returns the blob's digest. */
export async function pushFixture(client: RegistryClient, repo: string): Promise<string> {
  const blob = FIXTURE.blob;
  await client.pushImage(repo, 'nydus', [{ data: blob, mediaType: 'application/vnd.oci.image.layer.nydus.blob.v1', annotations: { 'containerd.io/snapshot/nydus-blob': 'true' } }]);
  return `sha256:${FIXTURE.blobId}`;
}

export interface RegistryConfigOptions {
  host: string;
  repo: string;
  workDir: string;
  /** base64 of user:password */
  auth?: string;
  registryToken?: string;
  timeout?: number;
  connectTimeout?: number;
  blobUrlScheme?: string;
  blobRedirectedHost?: string;
  /** check every fetched chunk against its digest (v5 digest_validate and cache.validate) */
  validate?: boolean;
  /** the backend's `proxy` object (spec 2.4: url, ping_url, fallback, check_interval, ...) */
  proxy?: Record<string, unknown>;
}

/** A v1 configuration as nydus-snapshotter writes it for a registry (plain http on loopback). Returns its path. */
export function writeRegistryConfig(file: string, o: RegistryConfigOptions): string {
  const registry: Record<string, unknown> = { scheme: 'http', host: o.host, repo: o.repo, timeout: o.timeout ?? 3, connect_timeout: o.connectTimeout ?? 2 };
  if (o.auth !== undefined) registry.auth = o.auth;
  if (o.registryToken !== undefined) registry.registry_token = o.registryToken;
  if (o.blobUrlScheme !== undefined) registry.blob_url_scheme = o.blobUrlScheme;
  if (o.blobRedirectedHost !== undefined) registry.blob_redirected_host = o.blobRedirectedHost;
  if (o.proxy !== undefined) registry.proxy = o.proxy;
  const cfg = {
    device: { backend: { type: 'registry', config: registry }, cache: { type: 'blobcache', validate: o.validate ?? false, config: { work_dir: o.workDir } } },
    mode: 'direct',
    digest_validate: o.validate ?? false,
    enable_xattr: true,
    // only the chunks a read needs, so that each group of files costs backend reads of its own
    amplify_io: 0,
  };
  writeFileSync(file, JSON.stringify(cfg));
  return file;
}

export interface RegistryDaemon {
  daemon: Daemon;
  mnt: string;
  sock: string;
  workDir: string;
}

/**
 * A dedicated nydusd on the fixture with a registry configuration (its cache in `dir`/cache), --apisock and debug
 * logging; resolves once it serves.
 */
export async function startRegistryDaemon(dir: string, config: Omit<RegistryConfigOptions, 'workDir'>): Promise<RegistryDaemon> {
  const workDir = path.join(dir, 'cache');
  mkdirSync(workDir, { recursive: true });
  const cfg = writeRegistryConfig(path.join(dir, 'config.json'), { ...config, workDir });
  return { ...(await startFixtureDaemon(dir, cfg)), workDir };
}

/** A dedicated nydusd on the fixture with configuration `cfg`, mounted at `dir`/mnt, --apisock and debug logging; resolves once it serves. */
export async function startFixtureDaemon(dir: string, cfg: string): Promise<{ daemon: Daemon; mnt: string; sock: string }> {
  const mnt = path.join(dir, 'mnt');
  const sock = path.join(dir, 'api.sock');
  mkdirSync(mnt, { recursive: true });
  const daemon = new Daemon(['fuse', '--config', cfg, '--bootstrap', FIXTURE.bootstrap, '--mountpoint', mnt, '--apisock', sock, '--log-level', 'debug'], mnt);
  try {
    await waitForSocket(daemon, sock, 20_000);
  } catch (err) {
    await daemon.kill();
    throw err;
  }
  return { daemon, mnt, sock };
}

const READER = path.join(projectRoot, 'dist', 'test', 'nydusd', 'read-files.js');

export type ReadResult = { md5?: string; error?: string; ms: number };

/** Reads `files` of the mount in a child (O_DIRECT), bounded by `timeoutMs` (a longer run is a hang and fails). */
export async function readFiles(mnt: string, files: string[], timeoutMs: number, onSpawn?: (pid: number) => void): Promise<Map<string, ReadResult>> {
  const { stdout } = await runBounded(process.execPath, [READER, mnt, ...files], timeoutMs, onSpawn);
  return new Map(Object.entries(JSON.parse(stdout) as Record<string, ReadResult>));
}

/**
 * Nothing wrong was served: every file read is byte-exact (its md5 is the fixture's) or failed with EIO. Returns the
 * files that failed.
 */
export function assertNeverWrong(results: Map<string, ReadResult>, what: string): string[] {
  const sums = fixtureSums();
  const failed: string[] = [];
  for (const [f, r] of results) {
    if (r.error !== undefined) {
      assert.equal(r.error, 'EIO', `${what}: ${f} failed with ${r.error}, not EIO`);
      failed.push(f);
    } else {
      assert.equal(r.md5, sums.get(f), `${what}: ${f}: WRONG BYTES SERVED`);
    }
  }
  return failed;
}

/** Every file read byte-exact. */
export function assertAllRight(results: Map<string, ReadResult>, what: string): void {
  const failed = assertNeverWrong(results, what);
  assert.deepEqual(failed, [], `${what}: these reads failed: ${failed.map((f) => `${f} (${results.get(f)!.error})`).join(', ')}`);
}

/** Every file read failed with EIO. */
export function assertAllEio(results: Map<string, ReadResult>, what: string): void {
  const failed = assertNeverWrong(results, what);
  assert.deepEqual(failed, [...results.keys()], `${what}: some reads succeeded although the registry could not serve them`);
}

/** The backend counters of the daemon's SIGUSR2 metrics line. */
export async function backendCounters(d: Daemon): Promise<{ reads: number; errors: number; bytes: number }> {
  return (await daemonMetrics(d)).backend;
}

/** No secret occurs anywhere in `log` (each named for the failure message, never printed). */
export function assertNoSecrets(log: string, secrets: Record<string, string>): void {
  for (const [name, value] of Object.entries(secrets)) {
    assert.ok(value.length >= 6, `secret ${name} is too short to search for`);
    assert.ok(!log.includes(value), `the daemon log contains the ${name}`);
  }
}
