// `find` + stat of every entry through nydusd against squashfuse_ll, over the ≥ 50,000-entry "meta" tree
// (the structure of /usr/share), both images zstd. Cold: page cache, dentries and inodes dropped and a
// fresh mount; warm: the same walk again on that mount (kernel entry/attr caches in play).
// The walk is `find M -printf '%s %m %U %G %T@ %p\n'`, which lstat()s every entry.
// `--cpu-prof DIR` runs nydusd under `node --cpu-prof` (one .cpuprofile per mount, written at unmount).
//   node dist/bench/nydusd-meta.js [--work /tmp/nydus-bench] [--runs 3] [--cpu-prof DIR]
import fs from 'node:fs';
import path from 'node:path';
import {
  dropCaches, fmt, loadavg, machineInfo, median, nowSec, parseCommonArgs, printTable, referenceNydusd, rmrf, runsList, startNydusd,
  startReferenceNydusd, startSquashfuse, stopAll, timedSh, treeStats, type FuseServer,
} from './common.js';
import { metaTree } from './datasets.js';
import { cachedImages } from './images.js';

type Side = 'nydusd' | 'nydusd-rs' | 'squashfuse_ll';

async function main(): Promise<void> {
  const { work, runs, rest } = parseCommonArgs(process.argv.slice(2));
  const prof = rest.get('cpu-prof');
  rest.delete('cpu-prof');
  const referenceArg = rest.get('reference');
  rest.delete('reference');
  if (rest.size) throw new Error(`unknown options: ${[...rest.keys()].join(', ')}`);
  const nodeArgs = prof ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(prof)] : [];
  console.log(machineInfo());
  const src = metaTree(work);
  const st = treeStats(src);
  const { nydus, squash } = cachedImages(work, 'meta', src, 'zstd');
  console.log(`tree: ${st.entries} entries (${st.files} regular files)`);
  const mnt = path.join(work, 'mnt');
  const walk = (dir: string) => {
    const r = timedSh(`find ${dir} -printf '%s %m %U %G %T@ %p\\n' | wc -l`);
    return r.seconds;
  };
  // the reference (nydus-rs) takes part when it is installed (`npm run peers`), or when --reference says so
  const reference = (referenceArg ?? (fs.existsSync(referenceNydusd) ? 'true' : 'false')) === 'true';
  const sides: Side[] = reference ? ['nydusd', 'nydusd-rs', 'squashfuse_ll'] : ['nydusd', 'squashfuse_ll'];
  const res = new Map<Side, { mount: number[]; cold: number[]; warm: number[]; cpu: number[]; rss: number[] }>(
    sides.map((s) => [s, { mount: [], cold: [], warm: [], cpu: [], rss: [] }]),
  );
  try {
    for (let r = 0; r < runs; r++) {
      for (let k = 0; k < sides.length; k++) {
        const side = sides[(k + r) % sides.length];
        let server: FuseServer | undefined;
        try {
          dropCaches();
          const t0 = nowSec();
          server =
            side === 'nydusd'
              ? await startNydusd(nydus.bootstrap, nydus.blobDir, work, mnt, nodeArgs)
              : side === 'nydusd-rs'
                ? await startReferenceNydusd(nydus.bootstrap, nydus.blobDir, work, mnt)
                : await startSquashfuse(squash.file, mnt);
          const x = res.get(side)!;
          x.mount.push(nowSec() - t0);
          const c0 = server.cpuSeconds();
          x.cold.push(walk(mnt));
          x.cpu.push(server.cpuSeconds() - c0);
          x.warm.push(walk(mnt));
          x.rss.push(server.peakRssMiB());
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
  const g = (s: Side) => res.get(s)!;
  const rows = sides.map((s) => [
    s, runsList(g(s).mount), runsList(g(s).cold), median(g(s).cold), fmt(st.entries / median(g(s).cold)), runsList(g(s).cpu), runsList(g(s).warm), median(g(s).warm), median(g(s).rss),
  ]);
  printTable(['server', 'mount s per run', 'cold find s per run', 'cold median s', 'cold entries/s', 'server CPU s during cold find', 'warm find s per run', 'warm median s', 'server peak RSS MiB'], rows);
  console.log('');
  printTable(
    ['ratio (time, nydusd / squashfuse_ll; <1 = we are faster)', 'value', 'target'],
    [
      ['cold find', fmt(median(g('nydusd').cold) / median(g('squashfuse_ll').cold)), '≤ 1.5'],
      ['server CPU during cold find', fmt(median(g('nydusd').cpu) / median(g('squashfuse_ll').cpu)), '-'],
      ['warm find', fmt(median(g('nydusd').warm) / median(g('squashfuse_ll').warm)), '-'],
      ['mount (start to first stat)', fmt(median(g('nydusd').mount) / median(g('squashfuse_ll').mount)), '-'],
    ],
  );
  if (reference) {
    console.log('');
    const r = (k: 'mount' | 'cold' | 'warm' | 'cpu' | 'rss') => fmt(median(g('nydusd')[k]) / median(g('nydusd-rs')[k]));
    printTable(
      ['against the reference (nydus-rs): nydusd / nydusd-rs, time or memory (< 1 = we are better)', 'value', 'target'],
      [
        ['cold find + stat', r('cold'), '≤ 1.0'],
        ['warm find + stat', r('warm'), '≤ 1.0'],
        ['spawn to mounted (first stat answered)', r('mount'), '≤ 1.0'],
        ['server CPU during cold find', r('cpu'), '-'],
        ['server peak RSS', r('rss'), '≤ 1.5'],
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
