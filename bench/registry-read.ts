// Cold sequential read of a ≥ 1 GiB image from a local registry (issue 11: nydusd's throughput ≥ 0.9 × curl's of the
// same blob). The `big` tree (6 × 192 MiB cut from a tar of /usr/lib) as its nydus image (v6, zstd, 1 MiB chunks: one
// blob of 321 MiB) is pushed to Debian's docker-registry on loopback (test/helpers/registry.ts, anonymous, filesystem
// storage). Sides, in an order that rotates per run, each after the page cache is dropped (the registry's storage is
// cold too):
// - nydusd with the registry backend (v1 configuration as nydus-snapshotter writes it, defaults), an empty blob cache,
//   `dd bs=1M` of every file;
// - the reference nydusd (nydus-rs) with the same configuration, when installed;
// - `curl` of the whole blob (one GET, no Range) to /dev/null: the transfer alone, no decoding, no cache write;
// - `curl` of the blob in 1 MiB ranges, one after the other on one kept-alive connection (what a lazy reader's
//   requests cost the registry, without the reader).
// Every side moves the same blob bytes out of the registry, so throughput is compared as blob bytes per second (time
// ratio); file MiB/s (the 1,152 MiB the daemons deliver) is shown too. Server CPU = the docker-registry process's
// user + system seconds during the side's read, per GiB of blob served; client CPU = the daemon's (or curl's).
// `--amplify-io N` puts `amplify_io: N` into both daemons' configuration (default: absent, the daemons' default).
//   node dist/bench/registry-read.js [--work /tmp/nydus-bench] [--runs 3] [--cpu-prof DIR] [--amplify-io 0x400000]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  dropCaches, fmt, loadavg, machineInfo, median, parseCommonArgs, printTable, processCpuSeconds, referenceNydusd, rmrf, runsList,
  stopAll, timedAsync, treeStats, type FuseServer,
} from './common.js';
import { bigTree } from './datasets.js';
import { cachedImages } from './images.js';
import { RegistryClient, registryPid, startRegistry, startRegistryDaemon, type Daemon } from './registry.js';

type Side = Daemon | 'curl' | 'curl, 1 MiB ranges';
/** the range size of the ranged curl side: a chunk's size (the daemons ask for compressed chunks, merged) */
const RANGE = 2 ** 20;
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const REPO = 'bench/big';

/** The backend metrics of a daemon's only instance, over its API socket (both daemons answer this route). */
function backendMetrics(sock: string): { bytes: number; reads: number } {
  const r = spawnSync('curl', ['-sf', '--unix-socket', sock, 'http://localhost/api/v1/metrics/backend'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`GET /api/v1/metrics/backend on ${sock} failed: ${r.stderr}`);
  const m = JSON.parse(r.stdout) as { read_amount_total: number; read_count: number };
  return { bytes: m.read_amount_total, reads: m.read_count };
}

/** curl arguments fetching the blob in `RANGE`-sized ranges, one after the other on one kept-alive connection. */
function rangedCurlArgs(url: string, size: number): string[] {
  const args: string[] = [];
  for (let at = 0; at < size; at += RANGE) {
    if (at > 0) args.push('--next');
    args.push('-sSf', '-r', `${at}-${Math.min(at + RANGE, size) - 1}`, '-o', '/dev/null', '-w', '%{size_download}\\n', url);
  }
  return args;
}

async function main(): Promise<void> {
  const { work, runs, rest } = parseCommonArgs(process.argv.slice(2));
  const prof = rest.get('cpu-prof');
  const nodeArgs = prof ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(prof)] : [];
  const amplifyIo = rest.has('amplify-io') ? Number(rest.get('amplify-io')) : undefined;
  if (amplifyIo !== undefined && !(Number.isInteger(amplifyIo) && amplifyIo >= 0)) throw new Error(`--amplify-io must be a byte count, got ${rest.get('amplify-io')}`);
  console.log(machineInfo());
  const src = bigTree(work);
  const st = treeStats(src);
  const files = fs.readdirSync(src).sort();
  const { nydus } = cachedImages(work, 'big', src, 'zstd');
  const blobs = fs.readdirSync(nydus.blobDir);
  if (blobs.length !== 1) throw new Error(`expected one blob in ${nydus.blobDir}, found ${blobs.length}`);
  const blobFile = path.join(nydus.blobDir, blobs[0]!);
  const blobBytes = fs.statSync(blobFile).size;
  const fileMiB = st.bytes / MiB;
  if (amplifyIo !== undefined) console.log(`both daemons with amplify_io ${amplifyIo}`);
  console.log(`tree: ${files.length} files, ${fmt(fileMiB)} MiB; nydus blob ${fmt(blobBytes / MiB)} MiB (zstd, 1 MiB chunks)`);

  const reg = await startRegistry(path.join(work, 'registry'));
  const mnt = path.join(work, 'mnt');
  const sides: Side[] = ['nydusd', ...(fs.existsSync(referenceNydusd) ? (['nydusd-rs'] as Side[]) : []), 'curl', 'curl, 1 MiB ranges'];
  const secs = new Map<Side, number[]>(sides.map((s) => [s, []]));
  const serverCpu = new Map<Side, number[]>(sides.map((s) => [s, []]));
  const clientCpu = new Map<Side, number[]>(sides.map((s) => [s, []]));
  const fetched = new Map<Side, number[]>(sides.map((s) => [s, []]));
  const requests = new Map<Side, number[]>(sides.map((s) => [s, []]));
  try {
    const client = new RegistryClient(reg.url);
    const t0 = performance.now();
    const digest = await client.pushBlob(REPO, fs.readFileSync(blobFile));
    if (digest !== `sha256:${blobs[0]}`) throw new Error(`the blob's digest ${digest} is not its name ${blobs[0]}: the registry backend would ask for the wrong blob`);
    console.log(`pushed the blob to ${reg.host}/${REPO} in ${fmt((performance.now() - t0) / 1000)} s`);
    const regPid = registryPid(reg);
    const blobUrl = `${reg.url}/v2/${REPO}/blobs/${digest}`;
    for (let r = 0; r < runs; r++) {
      for (let k = 0; k < sides.length; k++) {
        const side = sides[(k + r) % sides.length]!;
        let server: FuseServer | undefined;
        try {
          if (side === 'curl' || side === 'curl, 1 MiB ranges') {
            dropCaches();
            const c0 = processCpuSeconds(regPid);
            const args = side === 'curl' ? ['-sSf', '-o', '/dev/null', '-w', '%{size_download}\\n', blobUrl] : rangedCurlArgs(blobUrl, blobBytes);
            const res = await timedAsync('curl', args);
            serverCpu.get(side)!.push((processCpuSeconds(regPid) - c0) / (blobBytes / GiB));
            const sizes = res.stdout.toString().trim().split('\n').map(Number);
            const got = sizes.reduce((a, b) => a + b, 0);
            if (got !== blobBytes) throw new Error(`${side} downloaded ${got} bytes of a ${blobBytes}-byte blob`);
            secs.get(side)!.push(res.seconds);
            clientCpu.get(side)!.push(res.cpuSeconds);
            fetched.get(side)!.push(got);
            requests.get(side)!.push(sizes.length);
            continue;
          }
          const sock = path.join(work, `${side}.sock`);
          rmrf(sock);
          dropCaches();
          server = await startRegistryDaemon(side, reg, REPO, nydus.bootstrap, work, mnt, ['--apisock', sock], side === 'nydusd' ? nodeArgs : [], { amplifyIo });
          const b0 = backendMetrics(sock);
          const c0 = processCpuSeconds(regPid);
          const d0 = server.cpuSeconds();
          const read = await timedAsync('sh', ['-c', files.map((f) => `dd if=${path.join(mnt, f)} of=/dev/null bs=1M status=none`).join(' && ')], { stdoutToNull: true });
          serverCpu.get(side)!.push((processCpuSeconds(regPid) - c0) / (blobBytes / GiB));
          clientCpu.get(side)!.push(server.cpuSeconds() - d0);
          const b1 = backendMetrics(sock);
          fetched.get(side)!.push(b1.bytes - b0.bytes);
          requests.get(side)!.push(b1.reads - b0.reads);
          secs.get(side)!.push(read.seconds);
        } finally {
          await server?.stop();
        }
      }
      console.log(`run ${r + 1}/${runs} done, load ${loadavg()}`);
    }
  } finally {
    await stopAll();
    await reg.destroy();
    for (const s of sides) for (const f of [`${s}-registry-cache`, `${s}-registry.json`, `${s}.sock`]) rmrf(path.join(work, f));
  }

  const blobRate = (s: Side) => secs.get(s)!.map((t) => blobBytes / MiB / t);
  const fileRate = (s: Side) => secs.get(s)!.map((t) => fileMiB / t);
  printTable(
    ['side', 'seconds per run', 'blob MiB/s per run', 'blob MiB/s median', 'file MiB/s per run', 'fetched from the registry, MiB per run', 'blob GETs per run', 'registry CPU s per GiB of blob, per run', 'client CPU s per run'],
    sides.map((s) => [
      s === 'curl' ? 'curl (whole blob, one GET)' : s.startsWith('curl') ? 'curl (1 MiB ranges in sequence, one connection)' : `${s} (registry backend, dd bs=1M)`,
      runsList(secs.get(s)!),
      runsList(blobRate(s)),
      fmt(median(blobRate(s))),
      s.startsWith('curl') ? '-' : runsList(fileRate(s)),
      runsList(fetched.get(s)!.map((b) => b / MiB)),
      runsList(requests.get(s)!),
      runsList(serverCpu.get(s)!),
      runsList(clientCpu.get(s)!),
    ]),
  );
  console.log('');
  const rate = (s: Side) => median(blobRate(s));
  const rows: (string | number)[][] = [
    ['cold: nydusd / curl of the whole blob (throughput; time curl / time nydusd)', fmt(rate('nydusd') / rate('curl')), '≥ 0.9'],
    ['cold: nydusd / curl in 1 MiB ranges', fmt(rate('nydusd') / rate('curl, 1 MiB ranges')), '≥ 0.9'],
    ['registry CPU per GiB: curl whole / nydusd (> 1 = nydusd costs the registry less)', fmt(median(serverCpu.get('curl')!) / median(serverCpu.get('nydusd')!)), '-'],
    ['registry CPU per GiB: curl ranged / nydusd', fmt(median(serverCpu.get('curl, 1 MiB ranges')!) / median(serverCpu.get('nydusd')!)), '-'],
  ];
  if (sides.includes('nydusd-rs')) {
    rows.push(['cold: nydusd-rs / curl of the whole blob', fmt(rate('nydusd-rs') / rate('curl')), '-']);
    rows.push(['cold: nydusd-rs / curl in 1 MiB ranges', fmt(rate('nydusd-rs') / rate('curl, 1 MiB ranges')), '-']);
    rows.push(['cold: nydusd / nydusd-rs (> 1 = we are faster)', fmt(rate('nydusd') / rate('nydusd-rs')), '≥ 1.0']);
    rows.push(['daemon CPU: nydusd-rs / nydusd (> 1 = we are cheaper)', fmt(median(clientCpu.get('nydusd-rs')!) / median(clientCpu.get('nydusd')!)), '-']);
  }
  printTable(['ratio', 'value', 'goal'], rows);
  console.log(`load average at end: ${loadavg()}`);
}

main().catch(async (e) => {
  await stopAll();
  console.error(e);
  process.exit(1);
});
