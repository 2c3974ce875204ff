// Bytes fetched to start `python3 -c 'print(1)'` cold from a Debian minbase + python3 image (issue 11's goal: no more
// than the stargz snapshotter fetches of the same image as eStargz, 5.6 MB measured by the author, without
// losing the cold-read throughput goals of nydusd-read). Side by side with the reference nydusd on the same image.
// The root filesystem comes from `mmdebstrap --variant=minbase --include=python3 bookworm` (Debian's mirror; built once
// into --work), converted by our nydus-image (v6, zstd, 1 MiB chunks: nydusify's defaults). Each run mounts each daemon
// afresh with an empty blob cache and the page cache dropped, runs python3 chrooted into the mount, and reads the
// daemon's backend metrics over its API socket: `read_amount_total` is what the backend was asked for.
//   node dist/bench/python-start.js [--work /tmp/nydus-bench] [--runs 3]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  dropCaches, fmt, loadavg, machineInfo, median, nydusImageJs, parseCommonArgs, printTable, referenceNydusd, rmrf, runsList,
  sh, startNydusd, startReferenceNydusd, stopAll, timed, type FuseServer,
} from './common.js';

const MB = 1e6;
/** What the author measured for the stargz snapshotter on the same image as eStargz (bytes). */
const ESTARGZ_BYTES = 5.6 * MB;

type Side = 'nydusd' | 'nydusd-rs';

/** The root filesystem tar, built once by mmdebstrap. */
function rootfsTar(work: string): string {
  const tar = path.join(work, 'trees', 'python3-minbase.tar');
  if (fs.existsSync(`${tar}.done`)) return tar;
  if (spawnSync('mmdebstrap', ['--version']).status !== 0) throw new Error('mmdebstrap is missing (scripts/setup.sh installs it)');
  fs.mkdirSync(path.dirname(tar), { recursive: true });
  console.log('building the python3 minbase root filesystem with mmdebstrap (once)...');
  sh(`mmdebstrap --quiet --variant=minbase --include=python3 bookworm ${tar}`);
  fs.writeFileSync(`${tar}.done`, new Date().toISOString());
  return tar;
}

function image(work: string, tar: string): { bootstrap: string; blobDir: string; blobBytes: number } {
  const out = path.join(work, 'images', 'python3-minbase-zstd');
  const bootstrap = path.join(out, 'bootstrap');
  const blobDir = path.join(out, 'blobs');
  if (!fs.existsSync(`${out}.done`)) {
    rmrf(out);
    fs.mkdirSync(blobDir, { recursive: true });
    timed(process.execPath, [nydusImageJs, 'create', '--fs-version', '6', '--compressor', 'zstd', '--bootstrap', bootstrap, '--blob-dir', blobDir, tar]);
    fs.writeFileSync(`${out}.done`, new Date().toISOString());
  }
  const blobBytes = fs.readdirSync(blobDir).reduce((n, f) => n + fs.statSync(path.join(blobDir, f)).size, 0);
  return { bootstrap, blobDir, blobBytes };
}

/** The backend metrics of the daemon's only instance, over its API socket. */
function backendMetrics(sock: string): { read_amount_total: number; read_count: number } {
  const r = spawnSync('curl', ['-sf', '--unix-socket', sock, 'http://localhost/api/v1/metrics/backend'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`GET /api/v1/metrics/backend on ${sock} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { read_amount_total: number; read_count: number };
}

async function main(): Promise<void> {
  const { work, runs } = parseCommonArgs(process.argv.slice(2));
  console.log(machineInfo());
  const tar = rootfsTar(work);
  const img = image(work, tar);
  console.log(`image: rootfs tar ${fmt(fs.statSync(tar).size / MB)} MB, blob ${fmt(img.blobBytes / MB)} MB (zstd, 1 MiB chunks)`);
  const sides: Side[] = fs.existsSync(referenceNydusd) ? ['nydusd', 'nydusd-rs'] : ['nydusd'];
  const fetched: Record<Side, number[]> = { nydusd: [], 'nydusd-rs': [] };
  const reads: Record<Side, number[]> = { nydusd: [], 'nydusd-rs': [] };
  const seconds: Record<Side, number[]> = { nydusd: [], 'nydusd-rs': [] };
  const mnt = path.join(work, 'mnt');
  try {
    for (let run = 0; run < runs; run++) {
      const order = sides.map((_, k) => sides[(k + run) % sides.length]!);
      for (const side of order) {
        const sock = path.join(work, `${side}.sock`);
        rmrf(sock);
        const args = ['--apisock', sock];
        const server: FuseServer = side === 'nydusd'
          ? await startNydusd(img.bootstrap, img.blobDir, work, mnt, [], { args })
          : await startReferenceNydusd(img.bootstrap, img.blobDir, work, mnt, { args });
        try {
          dropCaches();
          const before = backendMetrics(sock);
          const t0 = performance.now();
          const out = spawnSync('chroot', [mnt, '/usr/bin/python3', '-c', 'print(1)'], { encoding: 'utf8', timeout: 120_000 });
          const elapsed = (performance.now() - t0) / 1000;
          if (out.stdout?.trim() !== '1') throw new Error(`${side}: python3 printed ${JSON.stringify(out.stdout)} (${out.stderr ?? out.error})`);
          const after = backendMetrics(sock);
          fetched[side].push(after.read_amount_total - before.read_amount_total);
          reads[side].push(after.read_count - before.read_count);
          seconds[side].push(elapsed);
        } finally {
          await server.stop();
        }
      }
    }
  } finally {
    await stopAll();
  }
  console.log(`load: ${loadavg()}`);
  printTable(['side', 'fetched MB (runs)', 'median MB', 'backend reads', 'cold start s (runs)'], sides.map((s) => [
    s, runsList(fetched[s].map((b) => b / MB)), fmt(median(fetched[s]) / MB), fmt(median(reads[s])), runsList(seconds[s]),
  ]));
  const ours = median(fetched.nydusd);
  console.log(`\nnydusd fetched ${fmt(ours / MB)} MB of a ${fmt(img.blobBytes / MB)} MB blob; eStargz (issue 11's figure) ${fmt(ESTARGZ_BYTES / MB)} MB: ratio ours / eStargz = ${fmt(ours / ESTARGZ_BYTES)} (goal <= 1)`);
  if (fetched['nydusd-rs'].length > 0) console.log(`ratio ours / nydusd-rs = ${fmt(ours / median(fetched['nydusd-rs']))}`);
}

main().catch(async (err) => {
  await stopAll();
  console.error(err);
  process.exit(1);
});
