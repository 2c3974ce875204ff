// Huge directories and layers of tiny files (issue 8 item 2) through nydusd against squashfuse_ll on the same
// tree, both images zstd: "flat" (200,000 files of a few bytes in one directory) and "tiny" (100,000 such
// files in 1,000 node_modules-like packages). Per mount, each step starts cold (page cache, dentries and
// inodes dropped; the servers keep their own memory): mount (start to first stat of the root), the first read
// of one file in the middle, `ls -l` of the directory (`ls -lR` of node_modules for "tiny"), `find` of the
// whole mount, and the server's peak RSS at the end. nydusd runs with enable_xattr as nydus-snapshotter
// configures it. `--cpu-prof DIR` runs nydusd under `node --cpu-prof`; `--trees flat,tiny` picks trees.
//   node dist/bench/nydusd-scale.js [--work /tmp/nydus-bench] [--runs 3] [--trees flat,tiny] [--cpu-prof DIR]
import path from 'node:path';
import {
  dropCaches, fileSize, fmt, loadavg, machineInfo, median, nowSec, parseCommonArgs, printTable, rmrf, runsList,
  startNydusd, startSquashfuse, stopAll, timed, timedSh, treeStats, type FuseServer,
} from './common.js';
import { flatTree, tinyTree } from './datasets.js';
import { cachedImages } from './images.js';

type Side = 'nydusd' | 'squashfuse_ll';
const SIDES: Side[] = ['nydusd', 'squashfuse_ll'];
const STEPS = ['mount', 'first read', 'ls -l', 'find'] as const;
type Step = (typeof STEPS)[number];

interface TreeSpec {
  name: 'flat' | 'tiny';
  make: (work: string) => string;
  /** the file read first, relative to the root */
  readFile: string;
  /** what `ls` lists, relative to the root, and whether recursively */
  lsDir: string;
  recursive: boolean;
}

const TREES: TreeSpec[] = [
  { name: 'flat', make: (w) => flatTree(w), readFile: 'big/f100000', lsDir: 'big', recursive: false },
  { name: 'tiny', make: (w) => tinyTree(w), readFile: 'node_modules/pkg0500/lib/m50.js', lsDir: 'node_modules', recursive: true },
];

interface Figures {
  time: Map<Step, number[]>;
  cpu: Map<Step, number[]>;
  rss: number[];
}

async function measure(spec: TreeSpec, work: string, runs: number, nodeArgs: string[]): Promise<void> {
  const src = spec.make(work);
  const st = treeStats(src);
  const { nydus, squash } = cachedImages(work, spec.name, src, 'zstd');
  const bootMiB = fileSize(nydus.bootstrap) / 2 ** 20;
  console.log(`\ntree "${spec.name}": ${st.entries} entries (${st.files} regular files, ${st.bytes} bytes); ` +
    `nydus bootstrap ${fmt(bootMiB)} MiB + blob ${fmt((nydus.bytes - fileSize(nydus.bootstrap)) / 2 ** 20)} MiB (built in ${fmt(nydus.seconds)} s), ` +
    `squashfs ${fmt(squash.bytes / 2 ** 20)} MiB (built in ${fmt(squash.seconds)} s)`);
  const mnt = path.join(work, 'mnt');
  const res = new Map<Side, Figures>(SIDES.map((s) => [s, { time: new Map(STEPS.map((k) => [k, []])), cpu: new Map(STEPS.map((k) => [k, []])), rss: [] }]));
  for (let r = 0; r < runs; r++) {
    for (let k = 0; k < SIDES.length; k++) {
      const side = SIDES[(k + r) % SIDES.length];
      const f = res.get(side)!;
      let server: FuseServer | undefined;
      try {
        dropCaches();
        const t0 = nowSec();
        server = side === 'nydusd' ? await startNydusd(nydus.bootstrap, nydus.blobDir, work, mnt, nodeArgs) : await startSquashfuse(squash.file, mnt);
        f.time.get('mount')!.push(nowSec() - t0);
        f.cpu.get('mount')!.push(server.cpuSeconds());
        const step = (name: Step, run: () => { seconds: number }) => {
          dropCaches();
          const c0 = server!.cpuSeconds();
          f.time.get(name)!.push(run().seconds);
          f.cpu.get(name)!.push(server!.cpuSeconds() - c0);
        };
        step('first read', () => {
          const out = timed('cat', [path.join(mnt, spec.readFile)]);
          if (out.stdout.length === 0) throw new Error(`${side}: ${spec.readFile} read empty`);
          return out;
        });
        step('ls -l', () => timedSh(`ls -l${spec.recursive ? 'R' : ''} ${path.join(mnt, spec.lsDir)} | wc -l`));
        step('find', () => timedSh(`find ${mnt} | wc -l`));
        f.rss.push(server.peakRssMiB());
      } finally {
        await server?.stop();
      }
    }
    console.log(`run ${r + 1}/${runs} done, load ${loadavg()}`);
  }
  const g = (s: Side) => res.get(s)!;
  const rows = SIDES.map((s) => [
    s,
    ...STEPS.flatMap((k) => [runsList(g(s).time.get(k)!), fmt(median(g(s).time.get(k)!))]),
    ...STEPS.map((k) => runsList(g(s).cpu.get(k)!)),
    runsList(g(s).rss),
  ]);
  printTable(['server', ...STEPS.flatMap((k) => [`${k} s per run`, `${k} median`]), ...STEPS.map((k) => `server CPU s, ${k}`), 'peak RSS MiB'], rows);
  console.log('');
  const rssBound = 2 * bootMiB + 100;
  printTable(
    ['ratio (time, nydusd / squashfuse_ll; <1 = we are faster)', 'value', 'target'],
    [
      ...STEPS.map((k) => [k, fmt(median(g('nydusd').time.get(k)!) / median(g('squashfuse_ll').time.get(k)!)), '≤ 1.5']),
      ['nydusd peak RSS MiB (median) / bound 2 × bootstrap + 100 MiB', `${fmt(median(g('nydusd').rss))} / ${fmt(rssBound)}`, '< 1'],
    ],
  );
}

async function main(): Promise<void> {
  const { work, runs, rest } = parseCommonArgs(process.argv.slice(2));
  const prof = rest.get('cpu-prof');
  const names = (rest.get('trees') ?? 'flat,tiny').split(',');
  rest.delete('cpu-prof');
  rest.delete('trees');
  if (rest.size) throw new Error(`unknown options: ${[...rest.keys()].join(', ')}`);
  const specs = names.map((n) => {
    const s = TREES.find((t) => t.name === n);
    if (!s) throw new Error(`unknown tree ${n} (flat, tiny)`);
    return s;
  });
  const nodeArgs = prof ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(prof)] : [];
  console.log(machineInfo());
  try {
    for (const spec of specs) await measure(spec, work, runs, nodeArgs);
  } finally {
    await stopAll();
    rmrf(path.join(work, 'nydusd-cache'));
  }
  console.log(`load average at end: ${loadavg()}`);
}

main().catch(async (e) => {
  await stopAll();
  console.error(e);
  process.exit(1);
});
