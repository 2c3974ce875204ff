// Builder throughput: MB/s of input for `nydus-image create` (RAFS v6) against mksquashfs (2 processors)
// with the same compressor, on the same ~500 MB tree, alternating in one run.
// mksquashfs's own zstd default (level 15) takes ~150 s per build here, so it only runs with --squash-level15.
//   node dist/bench/builder.js [--work /tmp/nydus-bench] [--runs 3] [--mb 500] [--algos zstd,lz4] [--squash-level15]
import path from 'node:path';
import { fmt, loadavg, machineInfo, median, parseCommonArgs, printTable, rmrf, runsList, timedSh, treeStats } from './common.js';
import { mixedTree } from './datasets.js';
import { buildNydus, buildSquash, nydusCompressor, type Algo } from './images.js';

interface Case {
  label: string;
  run: (out: string) => { seconds: number; cpuSeconds: number; maxRssMiB: number; bytes: number };
}

function main(): void {
  const { work, runs, rest } = parseCommonArgs(process.argv.slice(2));
  const algos = (rest.get('algos') ?? 'zstd,lz4').split(',') as Algo[];
  for (const a of algos) if (a !== 'zstd' && a !== 'lz4') throw new Error(`--algos: unknown ${a}`);
  console.log(machineInfo());
  const src = mixedTree(work, Number(rest.get('mb') ?? '500'));
  const st = treeStats(src);
  const mb = st.bytes / 1e6;
  console.log(`input: ${src}: ${fmt(mb)} MB in ${st.files} files, ${st.entries} entries`);
  // Input in the page cache for everyone: this compares the builders, not the disk.
  timedSh(`tar cf - -C ${src} . > /dev/null`);

  const out = path.join(work, 'builder-out');
  const cases: Case[] = [];
  for (const a of algos) {
    cases.push({ label: `nydus-image ${nydusCompressor(a)}`, run: (o) => buildNydus(src, path.join(o, `nydus-${a}`), a) });
    if (a === 'zstd') {
      cases.push({ label: 'mksquashfs zstd -Xcompression-level 3', run: (o) => buildSquash(src, path.join(o, 'sq-zstd3.img'), a, 3) });
      if (rest.has('squash-level15')) {
        cases.push({ label: 'mksquashfs zstd (default level 15)', run: (o) => buildSquash(src, path.join(o, 'sq-zstd.img'), a) });
      }
    } else {
      cases.push({ label: 'mksquashfs lz4', run: (o) => buildSquash(src, path.join(o, 'sq-lz4.img'), a) });
    }
  }
  const secs = cases.map(() => [] as number[]);
  const cpu = cases.map(() => [] as number[]);
  const rss = cases.map(() => [] as number[]);
  const sizes = cases.map(() => 0);
  try {
    for (let r = 0; r < runs; r++) {
      // Rotate the order every run so neither side always goes first.
      for (let k = 0; k < cases.length; k++) {
        const i = (k + r) % cases.length;
        const res = cases[i].run(out);
        secs[i].push(res.seconds);
        cpu[i].push(res.cpuSeconds);
        rss[i].push(res.maxRssMiB);
        sizes[i] = res.bytes;
        rmrf(out);
      }
      console.log(`run ${r + 1}/${runs} done, load ${loadavg()}`);
    }
  } finally {
    rmrf(out);
  }
  const mbps = secs.map((s) => s.map((x) => mb / x));
  const rows = cases.map((c, i) => [
    c.label, runsList(secs[i]), median(secs[i]), median(mbps[i]), runsList(cpu[i]), fmt(mb / median(cpu[i])), median(rss[i]), fmt(sizes[i] / 1e6), fmt(st.bytes / sizes[i]),
  ]);
  printTable(
    ['builder', 'wall s per run', 'median wall s', 'MB/s (input, wall)', 'CPU s per run (user+sys)', 'MB per CPU-s', 'peak RSS MiB', 'output MB', 'size ratio'],
    rows,
  );
  console.log('');
  const ratioRows: string[][] = [];
  for (const a of algos) {
    const ours = cases.findIndex((c) => c.label === `nydus-image ${nydusCompressor(a)}`);
    for (let i = 0; i < cases.length; i++) {
      if (!cases[i].label.startsWith('mksquashfs') || !cases[i].label.includes(a)) continue;
      ratioRows.push([
        `nydus-image ${nydusCompressor(a)} / ${cases[i].label}`,
        fmt(median(mbps[ours]) / median(mbps[i])),
        fmt(median(cpu[i]) / median(cpu[ours])),
      ]);
    }
  }
  printTable(['ours / peer (>1 = we are faster / cheaper)', 'wall throughput ratio', 'CPU efficiency ratio (MB per CPU-s)'], ratioRows);
  console.log(`load average at end: ${loadavg()}`);
}

main();
