// Memory of a shared daemon (issue 9): one nydusd with --apisock and no bootstrap, ten images attached one by one
// over POST /api/v1/mount, each walked (`find`) and read whole once it is attached; the daemon's RSS after each. The
// goal: each extra image costs at most its bootstrap + 8 MiB. The peer, side by side: squashfuse_ll serving the same
// ten trees as squashfs images, one process per image (what a per-image daemon costs), RSS summed the same way.
// The ten trees are one copy of /usr/share/doc (files cut to 4 KiB) with one file of their own, so the ten images
// have the same shape but their own bootstraps and blobs.
//   node dist/bench/shared-rss.js [--work /tmp/nydus-bench] [--images 10]
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import {
  apiRequest, dropCaches, fileSize, fmt, isMounted, loadavg, machineInfo, median, nydusdJs, parseCommonArgs, printTable, rmrf, sh,
  startSquashfuse, stopAll, waitFor, type FuseServer,
} from './common.js';
import { buildNydus, buildSquash } from './images.js';

const MiB = 2 ** 20;

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function copyCut(src: string, dst: string): void {
  // directory structure, symlinks and the first 4 KiB of every file
  sh(`cd '${src}' && find . -type d -exec mkdir -p '${dst}/{}' \\; && find . -type l -exec cp -P '{}' '${dst}/{}' \\; && ` +
    `find . -type f -exec sh -c 'head -c 4096 "$1" > "$2/$1"' sh '{}' '${dst}' \\;`);
}

function trees(work: string, n: number): string[] {
  const base = path.join(work, 'trees', 'shared-base');
  if (!fs.existsSync(`${base}.done`)) {
    rmrf(base);
    fs.mkdirSync(base, { recursive: true });
    copyCut('/usr/share/doc', base);
    fs.writeFileSync(`${base}.done`, new Date().toISOString());
  }
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const t = path.join(work, 'trees', `shared-${i}`);
    if (!fs.existsSync(`${t}.done`)) {
      rmrf(t);
      sh(`cp -a '${base}' '${t}'`);
      fs.writeFileSync(path.join(t, `image-${i}`), `image ${i}\n`.repeat(1000));
      fs.writeFileSync(`${t}.done`, new Date().toISOString());
    }
    out.push(t);
  }
  return out;
}

/** Walk and read everything under `dir`: what a container start touches, and more. */
function use(dir: string): void {
  sh(`find '${dir}' > /dev/null && find '${dir}' -type f -exec cat {} + > /dev/null`);
}

async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 3000));
}

/**
 * The daemon's RSS once settled: the median of 5 samples 0.4 s apart after `settle`. A single sample caught the idle
 * shared daemon mid-preparation once (82 MiB against 72-74 MiB in by-hand probes, BENCHMARKS.md run AE).
 */
async function settledRss(pid: number): Promise<number> {
  await settle();
  const samples: number[] = [];
  for (let k = 0; k < 5; k++) {
    if (k > 0) await new Promise((r) => setTimeout(r, 400));
    samples.push(rssMiB(pid));
  }
  return median(samples);
}

async function main(): Promise<void> {
  const { work, rest } = parseCommonArgs(process.argv.slice(2));
  const n = Number(rest.get('images') ?? '10');
  console.log(`shared-daemon RSS, ${n} images; ${machineInfo()}; load ${loadavg()}`);
  const srcs = trees(work, n);
  const images = srcs.map((src, i) => ({
    nydus: buildNydus(src, path.join(work, 'images', `shared-${i}-nydus`), 'zstd'),
    squash: buildSquash(src, path.join(work, 'images', `shared-${i}.sqfs`), 'zstd', 3),
  }));
  const bootMiB = images.map((im) => fileSize(im.nydus.bootstrap) / MiB);
  console.log(`bootstrap ${fmt(bootMiB[0]!)} MiB each, ${sh(`find '${srcs[0]}' | wc -l`).trim()} entries per tree`);

  // nydusd: one shared daemon
  const dir = path.join(work, 'shared-rss');
  rmrf(dir);
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt, { recursive: true });
  const sock = path.join(dir, 'api.sock');
  const child: ChildProcess = spawn(process.execPath, [nydusdJs, 'fuse', '--mountpoint', mnt, '--apisock', sock, '--log-level', 'warn'], { stdio: 'ignore' });
  const nydusRss: number[] = [];
  try {
    await waitFor(() => fs.existsSync(sock), 'the shared daemon socket');
    nydusRss.push(await settledRss(child.pid!));
    for (let i = 0; i < n; i++) {
      const cache = path.join(dir, `cache-${i}`);
      fs.mkdirSync(cache);
      const config = JSON.stringify({ device: { backend: { type: 'localfs', config: { dir: images[i]!.nydus.blobDir } }, cache: { type: 'blobcache', config: { work_dir: cache } } }, mode: 'direct' });
      const r = await apiRequest(sock, 'POST', `/api/v1/mount?mountpoint=%2Fimg${i}`, JSON.stringify({ fs_type: 'rafs', source: images[i]!.nydus.bootstrap, config }));
      if (r.status !== 204) throw new Error(`mount ${i}: ${r.status} ${r.text}`);
      dropCaches();
      use(path.join(mnt, `img${i}`));
      nydusRss.push(await settledRss(child.pid!));
    }
  } finally {
    child.kill('SIGTERM');
    await waitFor(() => !isMounted(mnt), 'the shared daemon to unmount', 15_000).catch(() => sh(`umount -l '${mnt}' || true`));
  }

  // squashfuse_ll: a process per image
  const servers: FuseServer[] = [];
  const squashRss: number[] = [0];
  try {
    for (let i = 0; i < n; i++) {
      const m = path.join(dir, `sq${i}`);
      servers.push(await startSquashfuse(images[i]!.squash.file, m));
      dropCaches();
      use(m);
      await settle();
      squashRss.push(servers.reduce((sum, s) => sum + rssMiB(s.pid!), 0));
    }
  } finally {
    await stopAll();
  }

  const rows: (string | number)[][] = [];
  for (let i = 0; i <= n; i++) {
    rows.push([i === 0 ? 'idle (no image)' : `${i} image${i > 1 ? 's' : ''}`, fmt(nydusRss[i]!), i === 0 ? '-' : fmt(nydusRss[i]! - nydusRss[i - 1]!), fmt(squashRss[i]!)]);
  }
  printTable(['attached', 'nydusd RSS MiB', 'nydusd +MiB', `squashfuse_ll × ${n} RSS MiB`], rows);
  const perExtra = (nydusRss[n]! - nydusRss[1]!) / (n - 1);
  const budget = bootMiB[0]! + 8;
  console.log(`each extra image: ${fmt(perExtra)} MiB (goal: at most bootstrap ${fmt(bootMiB[0]!)} + 8 = ${fmt(budget)} MiB: ${perExtra <= budget ? 'met' : 'missed'}); ` +
    `${n} images in one nydusd: ${fmt(nydusRss[n]!)} MiB = ${fmt(nydusRss[n]! / squashRss[n]!)} × ${n} squashfuse_ll processes (${fmt(squashRss[n]!)} MiB)`);
}

main().catch(async (err) => {
  console.error(err);
  await stopAll();
  process.exit(1);
});
