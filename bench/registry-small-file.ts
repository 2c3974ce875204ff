// Time to read one small file of an image that lives in a registry (issue 11: a cold lazy mount ≥ 50× faster than
// `skopeo copy` + unpack of the equivalent OCI image). The image: the python3 minbase root filesystem
// (datasets.ts pythonRootfsTar, mmdebstrap) as a one-layer OCI image (`umoci raw add-layer`: the tar verbatim, gzip),
// pushed with skopeo to Debian's docker-registry on loopback and converted registry -> registry by our
// `nydusify convert` (v6, zstd, 1 MiB chunks). Each run, in an order that rotates, after the page cache is dropped
// (the registry's storage is cold too), from process start to the file's bytes in hand (checked against the tar):
// - `nydusify mount`: manifest, bootstrap layer download, nydusd start on the registry backend, then the file read;
// - nydusd with the registry backend on the bootstrap already on disk (nydus-snapshotter's case: it has the bootstrap
//   layer unpacked before it starts the daemon), and the reference nydusd likewise when installed;
// - a shared daemon (nydus-snapshotter's `daemon_mode = "shared"`, snapshotter-contract.md 1.3), ours and the
//   reference: started with `--apisock` and no image before the clock starts, as the snapshotter starts it before the
//   first container; timed from the snapshotter's `POST /api/v1/mount` to the file's bytes;
// - `skopeo copy docker://… oci:DIR` then `umoci unpack` then `cat`;
// - `skopeo copy` then `tar -xzf` of the layer then `cat` (the least an unpacking runtime does).
// The file is read with one read(2) as soon as it exists under the mount path (polled every 2 ms; before the mount it
// is absent from the empty directory).
//   node dist/bench/registry-small-file.js [--work /tmp/nydus-bench] [--runs 3] [--file etc/debian_version]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  apiRequest, dropCaches, fmt, isMounted, loadavg, machineInfo, median, nowSec, nydusdJs, parseCommonArgs, printTable, projectRoot, referenceNydusd, rmrf,
  FuseServer, runsList, sh, stopAll, timedAsync,
} from './common.js';
import { pythonRootfsTar } from './datasets.js';
import { daemonCommand, RegistryClient, startRegistry, writeRegistryNydusdConfig, type Daemon, type Registry } from './registry.js';

type Shared = `${Daemon}, shared daemon`;
type Side = 'nydusify mount' | Daemon | Shared | 'skopeo copy + umoci unpack' | 'skopeo copy + tar -x';
const nydusifyJs = path.join(projectRoot, 'dist/src/cli/nydusify.js');
const REPO = 'bench/python';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** The one-layer OCI image of `tar` in an OCI layout (tag v1), built once into --work. Returns the layout and its layer's digest. */
function ociLayout(work: string, tar: string): { layout: string; layer: string } {
  const layout = path.join(work, 'images', 'python3-minbase-oci');
  if (!fs.existsSync(`${layout}.done`)) {
    rmrf(layout);
    sh(`umoci init --layout ${layout} && umoci new --image ${layout}:v1 && umoci raw add-layer --image ${layout}:v1 ${tar}`);
    fs.writeFileSync(`${layout}.done`, new Date().toISOString());
  }
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'v1')!;
  const manifest = JSON.parse(fs.readFileSync(path.join(layout, 'blobs', entry.digest.replace(':', '/')), 'utf8')) as { layers: Array<{ digest: string }> };
  if (manifest.layers.length !== 1) throw new Error(`${layout}:v1 has ${manifest.layers.length} layers, expected 1`);
  return { layout, layer: manifest.layers[0]!.digest };
}

/** The bootstrap of the Nydus image `repo:tag`: its last layer's `image/image.boot`, written under `dir`. */
async function fetchBootstrap(reg: Registry, repo: string, tag: string, dir: string): Promise<string> {
  const client = new RegistryClient(reg.url);
  const m = await client.request(`/v2/${repo}/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
  if (m.status !== 200) throw new Error(`GET manifest ${repo}:${tag}: ${m.status}`);
  const layers = (JSON.parse(m.body.toString('utf8')) as { layers: Array<{ digest: string; annotations?: Record<string, string> }> }).layers;
  const last = layers[layers.length - 1]!;
  if (last.annotations?.['containerd.io/snapshot/nydus-bootstrap'] !== 'true') throw new Error(`${repo}:${tag}: the last layer is not a bootstrap layer`);
  const blob = await client.request(`/v2/${repo}/blobs/${last.digest}`);
  if (blob.status !== 200) throw new Error(`GET bootstrap layer ${last.digest}: ${blob.status}`);
  rmrf(dir);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'layer.tgz'), blob.body);
  sh(`tar -xzf ${path.join(dir, 'layer.tgz')} -C ${dir} image/image.boot`);
  return path.join(dir, 'image', 'image.boot');
}

/**
 * Starts `cmd` (a process that mounts `mnt`) and reads `file` under `mnt` as soon as it is there: seconds from spawn to
 * the bytes, and the bytes. The process keeps running (the caller stops it).
 */
async function spawnAndRead(cmd: string, args: string[], mnt: string, file: string): Promise<{ seconds: number; bytes: Buffer; stop: () => Promise<void> }> {
  rmrf(mnt);
  fs.mkdirSync(mnt, { recursive: true });
  const t0 = nowSec();
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  let exited = false;
  const gone = new Promise<void>((r) => child.once('close', () => r()));
  void gone.then(() => (exited = true));
  const stop = async () => {
    if (!exited) child.kill('SIGINT');
    const bound = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await gone;
    clearTimeout(bound);
    if (isMounted(mnt)) sh(`umount -l ${mnt}`);
  };
  const deadline = Date.now() + 120_000;
  const target = path.join(mnt, file);
  for (;;) {
    if (exited) throw new Error(`${path.basename(args[0] ?? cmd)} exited before ${file} could be read: ${stderr}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${file} did not appear under ${mnt} within 120 s: ${stderr}`);
    }
    try {
      const bytes = await fs.promises.readFile(target);
      return { seconds: nowSec() - t0, bytes, stop };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        await stop();
        throw e;
      }
    }
    await new Promise((r) => setTimeout(r, 2));
  }
}

/**
 * A shared daemon of `which`, started at `dir`/mnt with an API socket and no image, then (clock started) the image
 * mounted at /img over the API with `config` and `file` read under it: seconds from the request to the bytes.
 */
async function sharedMountAndRead(which: Daemon, config: string, bootstrap: string, dir: string, file: string): Promise<{ seconds: number; bytes: Buffer }> {
  const mnt = path.join(dir, 'mnt');
  const sock = path.join(dir, 'api.sock');
  rmrf(dir);
  const argv = ['fuse', '--mountpoint', mnt, '--apisock', sock, '--log-level', 'warn'];
  // FuseServer.start returns once the API answers RUNNING
  const server = which === 'nydusd'
    ? await FuseServer.start(which, process.execPath, [nydusdJs, ...argv], mnt)
    : await FuseServer.start(which, referenceNydusd, [...argv, '--rlimit-nofile', '0'], mnt);
  try {
    // the snapshotter starts its shared daemon with itself, well before the first container: a second of quiet
    await new Promise((res) => setTimeout(res, 1000));
    dropCaches();
    const t0 = nowSec();
    const body = JSON.stringify({ fs_type: 'rafs', source: bootstrap, config: fs.readFileSync(config, 'utf8') });
    const r = await apiRequest(sock, 'POST', '/api/v1/mount?mountpoint=%2Fimg', body);
    if (r.status !== 204 && r.status !== 200) throw new Error(`${which}: POST /api/v1/mount: ${r.status} ${r.text}`);
    const bytes = await fs.promises.readFile(path.join(mnt, 'img', file));
    return { seconds: nowSec() - t0, bytes };
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const { work, runs, rest } = parseCommonArgs(process.argv.slice(2));
  const file = rest.get('file') ?? 'etc/debian_version';
  console.log(machineInfo());
  const tar = pythonRootfsTar(work);
  const expected = sh(`tar -xOf ${tar} ./${file}`);
  const { layout, layer } = ociLayout(work, tar);
  const layerBytes = fs.statSync(path.join(layout, 'blobs', layer.replace(':', '/'))).size;
  console.log(`image: rootfs tar ${fmt(fs.statSync(tar).size / 1e6)} MB, one gzip layer of ${fmt(layerBytes / 1e6)} MB; the file: /${file} (${expected.length} bytes)`);

  const reg = await startRegistry(path.join(work, 'registry'));
  const scratch = path.join(work, 'small-file');
  const mnt = path.join(scratch, 'mnt');
  const ociRef = `${reg.host}/${REPO}:oci`;
  const nydusRef = `${reg.host}/${REPO}:nydus`;
  const daemons: Daemon[] = ['nydusd', ...(fs.existsSync(referenceNydusd) ? (['nydusd-rs'] as Daemon[]) : [])];
  const sides: Side[] = ['nydusify mount', ...daemons, ...daemons.map((d): Shared => `${d}, shared daemon`), 'skopeo copy + umoci unpack', 'skopeo copy + tar -x'];
  const secs = new Map<Side, number[]>(sides.map((s) => [s, []]));
  /** the skopeo copy part of the two unpacking sides */
  const copySecs = new Map<Side, number[]>(sides.map((s) => [s, []]));
  try {
    rmrf(scratch);
    fs.mkdirSync(scratch, { recursive: true });
    const push = await timedAsync('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${ociRef}`]);
    console.log(`skopeo copy oci -> registry: ${fmt(push.seconds)} s`);
    const conv = await timedAsync(process.execPath, [nydusifyJs, 'convert', '--source', ociRef, '--target', nydusRef, '--source-insecure', '--target-insecure', '--work-dir', scratch, '--log-level', 'warn']);
    console.log(`nydusify convert registry -> registry: ${fmt(conv.seconds)} s, ${fmt(conv.cpuSeconds)} CPU s, peak RSS ${fmt(conv.maxRssMiB)} MiB`);
    const bootstrap = await fetchBootstrap(reg, REPO, 'nydus', path.join(scratch, 'bootstrap'));
    console.log(`bootstrap: ${fmt(fs.statSync(bootstrap).size / 1e6)} MB`);

    /** a fresh cache directory for `which` and its registry configuration file */
    const daemonConfig = (which: Daemon): string => {
      const cacheDir = path.join(scratch, `${which}-cache`);
      rmrf(cacheDir);
      fs.mkdirSync(cacheDir, { recursive: true });
      return writeRegistryNydusdConfig(path.join(scratch, `${which}.json`), reg, REPO, cacheDir);
    };

    for (let r = 0; r < runs; r++) {
      for (let k = 0; k < sides.length; k++) {
        const side = sides[(k + r) % sides.length]!;
        const oci = path.join(scratch, 'oci');
        const bundle = path.join(scratch, 'bundle');
        const mountWork = path.join(scratch, 'nydusify-work');
        rmrf(oci);
        rmrf(bundle);
        rmrf(mountWork);
        fs.mkdirSync(mountWork, { recursive: true });
        let cmd: [string, string[]] | undefined;
        if (side === 'nydusify mount') {
          cmd = [process.execPath, [nydusifyJs, 'mount', '--target', nydusRef, '--target-insecure', '--mount-path', mnt, '--work-dir', mountWork, '--log-level', 'warn']];
        } else if (side === 'nydusd' || side === 'nydusd-rs') {
          cmd = daemonCommand(side, daemonConfig(side), bootstrap, mnt);
        }
        if (side.endsWith(', shared daemon')) {
          const which = side.slice(0, side.indexOf(',')) as Daemon;
          const got = await sharedMountAndRead(which, daemonConfig(which), bootstrap, path.join(scratch, 'shared'), file);
          if (!got.bytes.equals(Buffer.from(expected))) throw new Error(`${side}: /${file} read ${JSON.stringify(got.bytes.toString())}, expected ${JSON.stringify(expected)}`);
          secs.get(side)!.push(got.seconds);
          continue;
        }
        dropCaches();
        if (cmd) {
          const got = await spawnAndRead(cmd[0], cmd[1], mnt, file);
          await got.stop();
          if (!got.bytes.equals(Buffer.from(expected))) throw new Error(`${side}: /${file} read ${JSON.stringify(got.bytes.toString())}, expected ${JSON.stringify(expected)}`);
          secs.get(side)!.push(got.seconds);
        } else {
          const copy = await timedAsync('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${ociRef}`, `oci:${oci}:v1`]);
          const unpack = side === 'skopeo copy + umoci unpack'
            ? `umoci unpack --image ${oci}:v1 ${bundle} >/dev/null && cat ${bundle}/rootfs/${file}`
            : `mkdir -p ${bundle} && tar -xzf ${oci}/blobs/${layer.replace(':', '/')} -C ${bundle} && cat ${bundle}/${file}`;
          const rest = await timedAsync('sh', ['-c', unpack]);
          if (rest.stdout.toString() !== expected) throw new Error(`${side}: /${file} read ${JSON.stringify(rest.stdout.toString())}`);
          secs.get(side)!.push(copy.seconds + rest.seconds);
          copySecs.get(side)!.push(copy.seconds);
        }
        rmrf(oci);
        rmrf(bundle);
      }
      console.log(`run ${r + 1}/${runs} done, load ${loadavg()}`);
    }
  } finally {
    await stopAll();
    await reg.destroy();
    rmrf(scratch);
  }

  printTable(
    ['side', 'seconds to the file\'s bytes, per run', 'median s', 'of which skopeo copy, per run'],
    sides.map((s) => [s, runsList(secs.get(s)!), fmt(median(secs.get(s)!)), copySecs.get(s)!.length ? runsList(copySecs.get(s)!) : '-']),
  );
  console.log('');
  const m = (s: Side) => median(secs.get(s)!);
  const rows: (string | number)[][] = [];
  for (const lazy of sides.filter((s) => !s.startsWith('skopeo'))) {
    for (const full of sides.filter((s) => s.startsWith('skopeo'))) {
      rows.push([`(${full}) / (${lazy}), time`, fmt(m(full) / m(lazy)), lazy.startsWith('nydusd-rs') ? '-' : '≥ 50']);
    }
  }
  printTable(['ratio (> 1 = the lazy mount is faster)', 'value', 'goal'], rows);
  console.log(`load average at end: ${loadavg()}`);
}

main().catch(async (e) => {
  await stopAll();
  console.error(e);
  process.exit(1);
});
