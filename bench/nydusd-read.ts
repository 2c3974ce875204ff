// nydusd sequential read of a ≥ 1 GiB image (6 × 192 MiB files cut from a tar of /usr/lib, zstd) against
// squashfuse_ll on a squashfs of the same tree (zstd level 3, like nydus-image) and the same files on tmpfs.
// Cold: page cache dropped, fresh mount, empty nydusd blob cache (localfs backend). Warm: the same files
// read again through the same mount. Every run mounts every server afresh; the order rotates per run. nydusd is
// then restarted on the blob cache it filled, page cache dropped, and read once more (the "cache hit" figure).
// nydusd runs twice per run: with the default cache (decoded chunks in .blob.data) and with cache.compressed
// (chunks as the blob stores them, in .blob.raw), which writes the blob's bytes to disk instead of 3.6 times as many.
// A run's warm figure is the median of 3 passes (a pass over 1.1 GiB of page cache takes well under a second).
// `--cpu-prof DIR` runs nydusd under `node --cpu-prof` (one .cpuprofile per mount, written at unmount).
//   node dist/bench/nydusd-read.js [--work /tmp/nydus-bench] [--runs 3] [--bs 1M] [--cpu-prof DIR]
import fs from 'node:fs';
import path from 'node:path';
import {
  dropCaches, fmt, loadavg, machineInfo, median, parseCommonArgs, printTable, referenceNydusd, rmrf, rssNowMiB, runsList,
  startNydusd, startReferenceNydusd, startSquashfuse, stopAll, timedSh, treeStats, type FuseServer,
} from './common.js';
import { bigTree } from './datasets.js';
import { cachedImages } from './images.js';

type Side = 'nydusd' | 'nydusd, compressed cache' | 'nydusd-rs' | 'nydusd-rs, compressed cache' | 'squashfuse_ll' | 'tmpfs';

async function main(): Promise<void> {
  const { work, runs, rest } = parseCommonArgs(process.argv.slice(2));
  const bs = rest.get('bs') ?? '1M';
  if (!/^\d+[KMG]?$/.test(bs)) throw new Error(`--bs must look like 128K or 1M, got ${bs}`);
  const prof = rest.get('cpu-prof');
  const nodeArgs = prof ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(prof)] : [];
  console.log(machineInfo());
  const src = bigTree(work);
  const st = treeStats(src);
  const files = fs.readdirSync(src).sort();
  const { nydus, squash } = cachedImages(work, 'big', src, 'zstd');
  const MiB = st.bytes / 2 ** 20;
  console.log(`tree: ${files.length} files, ${fmt(MiB)} MiB; nydus blob+bootstrap ${fmt(nydus.bytes / 2 ** 20)} MiB, squashfs ${fmt(squash.bytes / 2 ** 20)} MiB`);
  const shm = '/dev/shm/nydus-bench-tmpfs';
  const mnt = path.join(work, 'mnt');
  const readAll = (dir: string) => timedSh(files.map((f) => `dd if=${path.join(dir, f)} of=/dev/null bs=${bs} status=none`).join(' && ')).seconds;
  // the reference (nydus-rs) takes part when it is installed (`npm run peers`), or when --reference says so
  const reference = rest.get('reference') ?? (fs.existsSync(referenceNydusd) ? 'true' : 'false');
  const sides: Side[] = ['nydusd', 'nydusd, compressed cache', ...(reference === 'true' ? (['nydusd-rs', 'nydusd-rs, compressed cache'] as Side[]) : []), 'squashfuse_ll', 'tmpfs'];
  const cold = new Map<Side, number[]>(sides.map((s) => [s, []]));
  const warm = new Map<Side, number[]>(sides.map((s) => [s, []]));
  const cpu = new Map<Side, number[]>(sides.map((s) => [s, []]));
  const rss = new Map<Side, number[]>(sides.map((s) => [s, []]));
  /** resident set of the mounted server before anything is read */
  const rssIdle = new Map<Side, number[]>(sides.map((s) => [s, []]));
  /** resident set once the cold read has ended (idle, after the warm passes) */
  const rssAfter = new Map<Side, number[]>(sides.map((s) => [s, []]));
  /** nydusd again after a restart with the blob cache it filled, page cache dropped */
  const cacheHit = new Map<Side, number[]>(sides.map((s) => [s, []]));
  try {
    rmrf(shm);
    fs.cpSync(src, shm, { recursive: true });
    for (let r = 0; r < runs; r++) {
      for (let k = 0; k < sides.length; k++) {
        const side = sides[(k + r) % sides.length]!;
        const ours = side.startsWith('nydusd');
        const ref = side.startsWith('nydusd-rs');
        const compressed = side.endsWith('compressed cache');
        const start = (keepCache: boolean) =>
          ref ? startReferenceNydusd(nydus.bootstrap, nydus.blobDir, work, mnt, { keepCache, compressed }) : startNydusd(nydus.bootstrap, nydus.blobDir, work, mnt, nodeArgs, { keepCache, compressed });
        let server: FuseServer | undefined;
        try {
          let dir = shm;
          if (side !== 'tmpfs') {
            dropCaches();
            server = ours ? await start(false) : await startSquashfuse(squash.file, mnt);
            dir = mnt;
          }
          if (server?.pid) rssIdle.get(side)!.push(rssNowMiB(server.pid));
          // tmpfs has no cold state: its pages are the file; both columns read RAM.
          const c0 = server?.cpuSeconds() ?? 0;
          cold.get(side)!.push(MiB / readAll(dir));
          if (server) cpu.get(side)!.push((server.cpuSeconds() - c0) / (MiB / 1024));
          warm.get(side)!.push(median([1, 2, 3].map(() => MiB / readAll(dir))));
          if (server) rss.get(side)!.push(server.peakRssMiB());
          if (server?.pid) rssAfter.get(side)!.push(rssNowMiB(server.pid));
          if (ours) {
            await server?.stop();
            dropCaches();
            server = await start(true);
            cacheHit.get(side)!.push(MiB / readAll(dir));
          }
        } finally {
          await server?.stop();
        }
      }
      console.log(`run ${r + 1}/${runs} done, load ${loadavg()}`);
    }
  } finally {
    await stopAll();
    rmrf(shm);
    rmrf(path.join(work, 'nydusd-cache'));
    rmrf(path.join(work, 'nydusd-rs-cache'));
  }
  const rows = sides.map((s) => [
    s,
    runsList(cold.get(s)!),
    median(cold.get(s)!),
    cpu.get(s)!.length ? runsList(cpu.get(s)!) : '-',
    runsList(warm.get(s)!),
    median(warm.get(s)!),
    rss.get(s)!.length ? fmt(median(rss.get(s)!)) : '-',
    rssAfter.get(s)!.length ? fmt(median(rssAfter.get(s)!)) : '-',
    rssIdle.get(s)!.length ? fmt(median(rssIdle.get(s)!)) : '-',
  ]);
  printTable(
    ['server', `cold MiB/s per run (dd bs=${bs})`, 'cold median', 'server CPU s per GiB, cold', 'warm MiB/s per run (median of 3 passes)', 'warm median', 'server peak RSS MiB', 'server RSS MiB after the reads', 'server RSS MiB mounted, idle'],
    rows,
  );
  for (const s of sides.filter((x) => x.startsWith('nydusd'))) {
    console.log(`${s} restarted on its filled blob cache, page cache dropped: ${runsList(cacheHit.get(s)!)} MiB/s (median ${fmt(median(cacheHit.get(s)!))})`);
  }
  console.log('');
  const m = (x: Map<Side, number[]>, s: Side) => median(x.get(s)!);
  printTable(
    ['ratio', 'value', 'target'],
    [
      ['cold: nydusd / squashfuse_ll', fmt(m(cold, 'nydusd') / m(cold, 'squashfuse_ll')), '≥ 1.0'],
      ['cold: nydusd, compressed cache / squashfuse_ll', fmt(m(cold, 'nydusd, compressed cache') / m(cold, 'squashfuse_ll')), '≥ 1.0'],
      ['cold server CPU per GiB: squashfuse_ll / nydusd (>1 = we are cheaper)', fmt(m(cpu, 'squashfuse_ll') / m(cpu, 'nydusd')), '-'],
      ['cold server CPU per GiB: squashfuse_ll / nydusd, compressed cache', fmt(m(cpu, 'squashfuse_ll') / m(cpu, 'nydusd, compressed cache')), '-'],
      ['cold: nydusd / tmpfs', fmt(m(cold, 'nydusd') / m(cold, 'tmpfs')), '-'],
      ['warm: nydusd / tmpfs', fmt(m(warm, 'nydusd') / m(warm, 'tmpfs')), '≥ 0.8'],
      ['warm: nydusd / squashfuse_ll', fmt(m(warm, 'nydusd') / m(warm, 'squashfuse_ll')), '-'],
    ],
  );
  if (sides.includes('nydusd-rs')) {
    console.log('');
    const vs = (a: Side, b: Side) => fmt(m(cold, a) / m(cold, b));
    printTable(
      ['against the reference (nydus-rs); throughput ratios, > 1 = we are faster', 'value', 'target'],
      [
        ['cold: nydusd / nydusd-rs', vs('nydusd', 'nydusd-rs'), '≥ 1.0'],
        ['cold, compressed cache: nydusd / nydusd-rs', vs('nydusd, compressed cache', 'nydusd-rs, compressed cache'), '≥ 1.0'],
        ['warm: nydusd / nydusd-rs', fmt(m(warm, 'nydusd') / m(warm, 'nydusd-rs')), '≥ 1.0'],
        ['warm, compressed cache: nydusd / nydusd-rs', fmt(m(warm, 'nydusd, compressed cache') / m(warm, 'nydusd-rs, compressed cache')), '≥ 1.0'],
        ['restart on the filled cache: nydusd / nydusd-rs', fmt(m(cacheHit, 'nydusd') / m(cacheHit, 'nydusd-rs')), '≥ 1.0'],
        ['cold CPU per GiB: nydusd-rs / nydusd (> 1 = we are cheaper)', fmt(m(cpu, 'nydusd-rs') / m(cpu, 'nydusd')), '-'],
        ['peak RSS: nydusd / nydusd-rs', fmt(m(rss, 'nydusd') / m(rss, 'nydusd-rs')), '≤ 1.5'],
        ['RSS after the reads: nydusd / nydusd-rs', fmt(m(rssAfter, 'nydusd') / m(rssAfter, 'nydusd-rs')), '≤ 1.5'],
        ['RSS mounted, idle: nydusd / nydusd-rs', fmt(m(rssIdle, 'nydusd') / m(rssIdle, 'nydusd-rs')), '≤ 1.5'],
      ],
    );
  }
  console.log(`load average at end: ${loadavg()}`);
}

main().catch(async (e) => {
  await stopAll();
  console.error(e);
  process.exit(1);
});
