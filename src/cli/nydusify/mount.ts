// `nydusify mount`: fetches the bootstrap layer of a Nydus image, starts our nydusd on it with a backend that
// reads the image's blobs where they live (the registry backend for a registry reference, localfs on the blob
// directory of an OCI layout), waits for the mount, and stays in the foreground until SIGINT or SIGTERM, which
// it passes on to nydusd (which unmounts and exits 0, nydusd-runtime.md 1.10).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../../argv.js';
import { mountAt } from '../../fuse/mountinfo.js';
import { downloadBlob } from '../../convert/blob-transfer.js';
import { readBootstrapLayer } from '../../convert/bootstrap-layer.js';
import { ANNOTATION_NYDUS_BOOTSTRAP } from '../../convert/media-types.js';
import { OciLayoutStore } from '../../convert/oci-layout-store.js';
import { openImage, type OpenedImage } from '../../convert/open-image.js';
import { resolveImage } from '../../convert/resolve.js';
import { platformOption } from './convert.js';
import { flag, makeLog, opt, parseCommand, required } from './main.js';

const SPECS = [
  { long: 'target', value: '<ref>' },
  { long: 'target-insecure' },
  { long: 'mount-path', value: '<dir>' },
  { long: 'backend-type', value: '<type>' },
  { long: 'backend-config', value: '<json>' },
  { long: 'backend-config-file', value: '<file>' },
];

const NYDUSD = fileURLToPath(new URL('../nydusd.cjs', import.meta.url));
/** how long nydusd may take to mount before we give up (a bound against hangs, not an expectation) */
const MOUNT_DEADLINE_MS = 60_000;

export async function runMount(argv: string[]): Promise<number> {
  const p = parseCommand(argv, SPECS, 'mount');
  const log = makeLog(p);
  const targetText = required(p, 'target', 'mount');
  const mountPath = path.resolve(opt(p, 'mount-path') ?? './image-fs');
  if (opt(p, 'backend-config') !== undefined && opt(p, 'backend-config-file') !== undefined) {
    throw new UsageError('mount: --backend-config conflicts with --backend-config-file');
  }
  const platform = platformOption(opt(p, 'platform'));
  const target = openImage(targetText, { insecure: flag(p, 'target-insecure'), log });
  const workDir = mkdtempSync(path.join(opt(p, 'work-dir') ?? os.tmpdir(), 'nydusify-mount-'));
  try {
    const bootstrapFile = await fetchBootstrap(target, platform, workDir);
    const backend = backendConfig(p, target, flag(p, 'target-insecure'));
    const config = {
      device: { backend, cache: { type: 'blobcache', config: { work_dir: path.join(workDir, 'cache') } } },
      mode: 'direct',
      enable_xattr: true,
    };
    const configFile = path.join(workDir, 'nydusd.json');
    writeFileSync(configFile, JSON.stringify(config), { mode: 0o600 });
    mkdirSync(mountPath, { recursive: true });
    return await serve(configFile, bootstrapFile, mountPath, (m) => log('info', m));
  } finally {
    await target.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}

async function fetchBootstrap(target: OpenedImage, platform: ReturnType<typeof platformOption>, workDir: string): Promise<string> {
  const img = await resolveImage(target.image, platform);
  const last = img.manifest.layers[img.manifest.layers.length - 1];
  if (!last || last.annotations?.[ANNOTATION_NYDUS_BOOTSTRAP] !== 'true') {
    throw new Error(`${target.reference.text} is not a Nydus image: its last layer lacks ${ANNOTATION_NYDUS_BOOTSTRAP}: "true"`);
  }
  const layerFile = path.join(workDir, 'bootstrap.layer');
  await downloadBlob(target.image.store, last, layerFile);
  const bootstrap = await readBootstrapLayer(layerFile, path.join(workDir, 'bootstrap.tar'), `bootstrap layer ${last.digest}`);
  const file = path.join(workDir, 'image.boot');
  writeFileSync(file, bootstrap);
  return file;
}

/** The nydusd backend section: as given by --backend-type/--backend-config, else where the image lives. */
function backendConfig(p: Parameters<typeof opt>[0], target: OpenedImage, insecure: boolean): { type: string; config: Record<string, unknown> } {
  const given = opt(p, 'backend-config') ?? (opt(p, 'backend-config-file') !== undefined ? readFileSync(opt(p, 'backend-config-file')!, 'utf8') : undefined);
  const type = opt(p, 'backend-type');
  if (given !== undefined) {
    let config: unknown;
    try {
      config = JSON.parse(given);
    } catch (e) {
      throw new UsageError(`mount: the backend config is not valid JSON: ${(e as Error).message}`);
    }
    if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new UsageError('mount: the backend config must be a JSON object');
    return { type: type ?? 'registry', config: config as Record<string, unknown> };
  }
  const r = target.reference;
  if (r.kind === 'oci-layout') {
    if (type !== undefined && type !== 'localfs') throw new UsageError(`mount: an OCI layout is read with the localfs backend, not '${type}'`);
    return { type: 'localfs', config: { dir: (target.image.store as OciLayoutStore).blobDir } };
  }
  if (type !== undefined && type !== 'registry') throw new UsageError(`mount: --backend-type ${type} needs --backend-config`);
  return {
    type: 'registry',
    config: {
      scheme: insecure ? 'http' : 'https',
      host: r.host,
      repo: r.repository,
      ...(target.credential ? { auth: target.credential } : {}),
      skip_verify: insecure,
      timeout: 30,
      connect_timeout: 10,
    },
  };
}

/** Runs nydusd until it exits; SIGINT/SIGTERM are passed on. Resolves to the exit status to use. */
async function serve(configFile: string, bootstrap: string, mountPath: string, info: (m: string) => void): Promise<number> {
  const child = spawn(process.execPath, [NYDUSD, 'fuse', '--config', configFile, '--bootstrap', bootstrap, '--mountpoint', mountPath], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  let stopping = false;
  const forward = (sig: NodeJS.Signals) => {
    stopping = true;
    child.kill(sig === 'SIGINT' ? 'SIGTERM' : sig);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  let done = false;
  void exited.finally(() => (done = true));
  try {
    const deadline = Date.now() + MOUNT_DEADLINE_MS;
    while (!done && !stopping && mountAt(mountPath) === undefined) {
      if (Date.now() > deadline) {
        child.kill('SIGTERM');
        throw new Error(`nydusd did not mount ${mountPath} within ${MOUNT_DEADLINE_MS / 1000} s`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    if (!done && !stopping) info(`mounted at ${mountPath}; SIGINT or SIGTERM unmounts`);
    const { code, signal } = await exited;
    if (stopping && code === 0) {
      info(`unmounted ${mountPath}`);
      return 0;
    }
    throw new Error(`nydusd exited ${code ?? signal} ${stopping ? 'while stopping' : 'unexpectedly'} (mount path ${mountPath})`);
  } finally {
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
  }
}
