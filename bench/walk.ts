// Full-tree metadata walk over a ≥ 50,000-entry image, no FUSE: our bootstrap reader (open + walk every
// entry, attributes + names, one `-lln`-style line each) against `unsquashfs -lln` / `-l` on the squashfs
// of the same tree. Both are whole processes with stdout to /dev/null, image files in the page cache.
//   node dist/bench/walk.js [--work /tmp/nydus-bench] [--runs 5]
import path from 'node:path';
import { fmt, loadavg, machineInfo, median, parseCommonArgs, printTable, projectRoot, runsList, timed, treeStats } from './common.js';
import { metaTree } from './datasets.js';
import { cachedImages } from './images.js';

interface Case {
  label: string;
  run: () => { seconds: number; cpuSeconds: number; maxRssMiB: number; inner?: number; entries?: number };
}

function main(): void {
  const { work, runs, rest } = parseCommonArgs(process.argv.slice(2));
  if (rest.size) throw new Error(`unknown options: ${[...rest.keys()].join(', ')}`);
  console.log(machineInfo());
  const src = metaTree(work);
  const st = treeStats(src);
  const { nydus, squash } = cachedImages(work, 'meta', src, 'zstd');
  console.log(`tree: ${src}: ${st.entries} entries (${st.files} regular files); bootstrap ${fmt(nydus.bytes / 1e6)} MB total image, squashfs ${fmt(squash.bytes / 1e6)} MB`);
  const reader = path.join(projectRoot, 'dist/bench/walk-reader.js');
  const ours = (quiet: boolean) => () => {
    const r = timed(process.execPath, quiet ? [reader, nydus.bootstrap, '--quiet'] : [reader, nydus.bootstrap], { stdoutToNull: true });
    const j = JSON.parse(r.stderr.trim().split('\n').pop()!) as { seconds: number; entries: number };
    return { seconds: r.seconds, cpuSeconds: r.cpuSeconds, maxRssMiB: r.maxRssMiB, inner: j.seconds, entries: j.entries };
  };
  const cases: Case[] = [
    { label: 'ours: node walk-reader.js (lines like -lln)', run: ours(false) },
    { label: 'ours: node walk-reader.js --quiet (no output)', run: ours(true) },
    { label: 'peer: unsquashfs -lln', run: () => timed('unsquashfs', ['-lln', squash.file], { stdoutToNull: true }) },
    { label: 'peer: unsquashfs -l (names only)', run: () => timed('unsquashfs', ['-l', squash.file], { stdoutToNull: true }) },
  ];
  const peerEntries = timed('unsquashfs', ['-lln', squash.file]).stdout.toString().split('\n').filter((l) => l).length;
  for (const c of cases) c.run(); // warm-up: images and node in the page cache
  const secs = cases.map(() => [] as number[]);
  const inner = cases.map(() => [] as number[]);
  const cpu = cases.map(() => [] as number[]);
  const rss = cases.map(() => [] as number[]);
  let ourEntries = 0;
  for (let r = 0; r < runs; r++) {
    for (let k = 0; k < cases.length; k++) {
      const i = (k + r) % cases.length;
      const res = cases[i].run();
      secs[i].push(res.seconds);
      cpu[i].push(res.cpuSeconds);
      rss[i].push(res.maxRssMiB);
      if (res.inner !== undefined) inner[i].push(res.inner);
      if (res.entries) ourEntries = res.entries;
    }
  }
  console.log(`entries: ours ${ourEntries}, unsquashfs ${peerEntries}; load average at end ${loadavg()}`);
  const rows = cases.map((c, i) => [
    c.label,
    runsList(secs[i]),
    median(secs[i]),
    fmt((c.label.startsWith('ours') ? ourEntries : peerEntries) / median(secs[i])),
    runsList(cpu[i]),
    median(rss[i]),
    inner[i].length ? `${fmt(median(inner[i]))} s (${fmt(ourEntries / median(inner[i]))}/s)` : '-',
  ]);
  printTable(['walker', 'wall s per run (whole process)', 'median wall s', 'entries/s (wall)', 'CPU s per run', 'peak RSS MiB', 'in-process open+walk (median)'], rows);
  console.log('');
  const ratio = (a: number, b: number) => [
    fmt(ourEntries / median(secs[a]) / (peerEntries / median(secs[b]))),
    fmt(ourEntries / median(cpu[a]) / (peerEntries / median(cpu[b]))),
  ];
  printTable(
    ['ours / peer (entries per second; >1 = we are faster)', 'wall ratio', 'CPU ratio'],
    [
      ['walk-reader (lines) / unsquashfs -lln', ...ratio(0, 2)],
      ['walk-reader --quiet / unsquashfs -l', ...ratio(1, 3)],
    ],
  );
}

main();
