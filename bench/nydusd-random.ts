// Random 4 KiB reads (issue 10) through nydusd, the reference nydusd (nydus-rs, when installed) and squashfuse_ll, on the
// ≥ 1 GiB "big" image (6 × 192 MiB, zstd). Cold: page cache dropped, fresh mount, empty blob cache; then the same reads
// again on that mount (warm: the page cache and the daemon's caches hold what the cold pass brought). The reads come from
// bench/random-reader.ts (pread of 4 KiB, one at a time, seeded offsets: every server gets the same sequence).
//   node dist/bench/nydusd-random.js [--work /tmp/nydus-bench] [--runs 3] [--ops 2000]
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  dropCaches, fmt, loadavg, machineInfo, median, parseCommonArgs, printTable, projectRoot, referenceNydusd, rmrf, runsList,
  startNydusd, startReferenceNydusd, startSquashfuse, stopAll, type FuseServer,
} from './common.js';
import { bigTree } from './datasets.js';
import { cachedImages } from './images.js';

type Side = 'nydusd' | 'nydusd-rs' | 'squashfuse_ll';
interface Pass { p50: number; p99: number; mean: number; iops: number }

async function main(): Promise<void> {
  const { work, runs, rest } = parseCommonArgs(process.argv.slice(2));
  const ops = Number(rest.get('ops') ?? '2000');
  console.log(machineInfo());
  const src = bigTree(work);
  const { nydus, squash } = cachedImages(work, 'big', src, 'zstd');
  const sides: Side[] = fs.existsSync(referenceNydusd) ? ['nydusd', 'nydusd-rs', 'squashfuse_ll'] : ['nydusd', 'squashfuse_ll'];
  const reader = path.join(projectRoot, 'dist/bench/random-reader.js');
  const mnt = path.join(work, 'mnt');
  const res = new Map<Side, { cold: Pass[]; warm: Pass[] }>(sides.map((s) => [s, { cold: [], warm: [] }]));
  const pass = (seed: number): Pass => JSON.parse(execFileSync(process.execPath, [reader, mnt, String(ops), String(seed)], { encoding: 'utf8' })) as Pass;
  try {
    for (let r = 0; r < runs; r++) {
      for (let k = 0; k < sides.length; k++) {
        const side = sides[(k + r) % sides.length]!;
        let server: FuseServer | undefined;
        try {
          dropCaches();
          server =
            side === 'nydusd' ? await startNydusd(nydus.bootstrap, nydus.blobDir, work, mnt)
              : side === 'nydusd-rs' ? await startReferenceNydusd(nydus.bootstrap, nydus.blobDir, work, mnt)
                : await startSquashfuse(squash.file, mnt);
          const seed = 1000 + r;
          res.get(side)!.cold.push(pass(seed));
          res.get(side)!.warm.push(pass(seed));
        } finally {
          await server?.stop();
        }
      }
      console.log(`run ${r + 1}/${runs} done, load ${loadavg()}`);
    }
  } finally {
    await stopAll();
    rmrf(path.join(work, 'nydusd-cache'));
    rmrf(path.join(work, 'nydusd-rs-cache'));
  }
  const med = (s: Side, w: 'cold' | 'warm', f: keyof Pass) => median(res.get(s)![w].map((p) => p[f]));
  printTable(
    ['server', 'cold reads/s per run', 'cold p50 µs', 'cold p99 µs', 'warm reads/s per run', 'warm p50 µs', 'warm p99 µs'],
    sides.map((s) => [
      s, runsList(res.get(s)!.cold.map((p) => p.iops)), fmt(med(s, 'cold', 'p50')), fmt(med(s, 'cold', 'p99')),
      runsList(res.get(s)!.warm.map((p) => p.iops)), fmt(med(s, 'warm', 'p50')), fmt(med(s, 'warm', 'p99')),
    ]),
  );
  console.log('');
  const rows: (string | number)[][] = [['cold reads/s: nydusd / squashfuse_ll', fmt(med('nydusd', 'cold', 'iops') / med('squashfuse_ll', 'cold', 'iops')), '-']];
  if (sides.includes('nydusd-rs')) {
    rows.push(
      ['cold reads/s: nydusd / nydusd-rs (> 1 = we are faster)', fmt(med('nydusd', 'cold', 'iops') / med('nydusd-rs', 'cold', 'iops')), '≥ 1.0'],
      ['cold p99: nydusd / nydusd-rs (< 1 = we are faster)', fmt(med('nydusd', 'cold', 'p99') / med('nydusd-rs', 'cold', 'p99')), '≤ 1.0'],
      ['warm reads/s: nydusd / nydusd-rs', fmt(med('nydusd', 'warm', 'iops') / med('nydusd-rs', 'warm', 'iops')), '≥ 1.0'],
    );
  }
  printTable(['ratio', 'value', 'target'], rows);
  console.log(`load average at end: ${loadavg()}`);
}

main().catch(async (e) => {
  await stopAll();
  console.error(e);
  process.exit(1);
});
