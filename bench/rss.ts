// Memory of a dedicated nydusd (issue 9 bench goals): its resident set idle after a tree walk, during and after a
// ≥ 1 GiB cold read, and once that read has ended and the daemon settled, against a bare Node process that imports
// the same modules (the daemon core, the API server and what they import, the native addon included) plus the
// bootstrap's size. Goals: idle ≤ 1.3 × (bare + bootstrap); settled after the read ≤ idle + 16 MiB.
// The daemon runs on the `big` image (6 × 192 MiB) with --apisock, as the snapshotter starts it; fresh blob cache.
// Each figure "idle" or "settled" is read after IDLE_WINDOW_S seconds without work (see quietRss); the bare node
// processes idle through the same window, side by side with the daemon's first one.
// The peer, measured the same way right after ours in each run: the reference nydusd (nydus-rs, `npm run peers`),
// when installed. The shared daemon with ten images is bench/shared-rss.ts.
// `--node-args '--max-semi-space-size=4 ...'` passes V8/node flags to nydusd (for finding where the memory goes).
//   node dist/bench/rss.js [--work /tmp/nydus-bench] [--runs 3] [--node-args FLAGS]
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import {
  dropCaches, fileSize, fmt, loadavg, machineInfo, median, nowSec, parseCommonArgs, printTable, projectRoot, rmrf, rssMiB, runsList,
  referenceNydusd, sh, startNydusd, startReferenceNydusd, stopAll, waitFor, type FuseServer,
} from './common.js';
import { bigTree } from './datasets.js';
import { cachedImages } from './images.js';

/**
 * What nydusd loads besides its entry, on the `big` localfs image with --apisock, no more and no less (checked by
 * logging every module both processes load): nydusd-main.ts imports the first three; the metrics, the daemon core,
 * the socket check and the API server come with --apisock (each imported on demand); the RAFS instance (bootstrap,
 * blob device, localfs backend) with the image. The network backends (undici) and the YAML parser are not loaded for
 * this image. The FUSE reader threads' modules load in their own threads and are not counted here.
 */
const DAEMON_MODULES = [
  'src/service/args.js', 'src/service/logger.js', 'src/service/version.js', 'src/metrics/registry.js', 'src/service/daemon.js',
  'src/service/rafs-instance.js', 'src/api/socket-path.js', 'src/api/server.js',
];
/**
 * What fastify requires only when the server is built and started: its logger stub. Its schema compilers (with ajv)
 * load on the first request that has a query string or body to validate (src/api/validators.ts), which an idle
 * dedicated daemon polled with GET /api/v1/daemon never gets.
 */
const FASTIFY_RUNTIME_PACKAGES = ['abstract-logging'];

/** The files the bare process imports: DAEMON_MODULES, and FASTIFY_RUNTIME_PACKAGES resolved as fastify requires them. */
function daemonFiles(): string[] {
  const fromFastify = createRequire(createRequire(path.join(projectRoot, 'package.json')).resolve('fastify'));
  return [...DAEMON_MODULES.map((m) => path.join(projectRoot, 'dist', m)), ...FASTIFY_RUNTIME_PACKAGES.map((p) => fromFastify.resolve(p))];
}

const IDLE_WINDOW_S = 60;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The resident set after `windowS` seconds without work, polled every 250 ms: V8 gives back the heap it grew
 * (its memory reducer) only about 30 s after allocation stops, so a shorter wait measures memory it would free.
 */
async function quietRss(pid: number, windowS = IDLE_WINDOW_S): Promise<{ rss: number; anon: number; file: number; max: number }> {
  const end = nowSec() + windowS;
  let max = 0;
  for (;;) {
    const r = rssMiB(pid);
    max = Math.max(max, r.rss);
    if (nowSec() >= end) return { ...r, max };
    await sleep(250);
  }
}

/** A bare node process (same node, same UV_THREADPOOL_SIZE as nydusd.cjs) that imports `files` and idles. */
async function startBareNode(files: string[]): Promise<ChildProcess> {
  const imports = files.map((f) => `await import(${JSON.stringify(f)});`).join(' ');
  const child = spawn(process.execPath, ['--input-type=module', '-e', `${imports} process.stdout.write('ready\\n'); setInterval(() => {}, 1 << 30);`], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, UV_THREADPOOL_SIZE: '8' },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  await waitFor(() => out.includes('ready') || child.exitCode !== null, 'the bare node process to load its modules');
  if (child.exitCode !== null) throw new Error(`the bare node process exited ${child.exitCode}`);
  return child;
}

interface DaemonFigures {
  /** the largest resident set of the idle window (before V8 gives back its heap) */
  idleMax: number;
  idle: number;
  idleAnon: number;
  peak: number;
  atEnd: number;
  settled: number;
  settledAnon: number;
  readMiBs: number;
}

/** Starts a daemon, walks its tree, idles, reads every file cold, idles again; `onIdle` runs at the end of the first idle. */
async function measureDaemon(start: () => Promise<FuseServer>, sock: string, mnt: string, onIdle: () => void): Promise<DaemonFigures> {
  dropCaches();
  const server = await start();
  try {
    await waitFor(() => fs.existsSync(sock), 'the API socket');
    const pid = server.pid!;
    // the tree walk: every entry looked up and stat'ed
    sh(`find '${mnt}' -ls > /dev/null`);
    const i = await quietRss(pid);
    onIdle();
    // the cold read: every file once, sampling the resident set meanwhile
    dropCaches();
    const files = fs.readdirSync(mnt).sort().map((f) => path.join(mnt, f));
    const bytes = files.reduce((n, f) => n + fs.statSync(f).size, 0);
    let top = 0;
    const sampler = setInterval(() => (top = Math.max(top, rssMiB(pid).rss)), 100);
    // dd in the background so that this process can sample
    const reading = new Promise<void>((resolve, reject) => {
      const p = spawn('sh', ['-c', files.map((f) => `dd if='${f}' of=/dev/null bs=1M status=none`).join(' && ')], { stdio: 'ignore' });
      p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`reading the mount failed (${code})`))));
    });
    const t0 = nowSec();
    await reading.finally(() => clearInterval(sampler));
    const seconds = nowSec() - t0;
    const end = rssMiB(pid);
    const s = await quietRss(pid);
    return {
      idleMax: i.max, idle: i.rss, idleAnon: i.anon, peak: Math.max(top, end.rss, server.peakRssMiB()), atEnd: end.rss,
      settled: s.rss, settledAnon: s.anon, readMiBs: bytes / 2 ** 20 / seconds,
    };
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const { work, runs, rest } = parseCommonArgs(process.argv.slice(2));
  const nodeArgs = rest.get('node-args')?.split(' ').filter(Boolean) ?? [];
  if (nodeArgs.length) console.log(`nydusd node flags: ${nodeArgs.join(' ')}`);
  console.log(machineInfo());
  const src = bigTree(work);
  const { nydus } = cachedImages(work, 'big', src, 'zstd');
  const bootstrapMiB = fileSize(nydus.bootstrap) / 2 ** 20;
  const own = path.join(work, `rss-${process.pid}`);
  const mnt = path.join(own, 'mnt');
  const sock = path.join(own, 'api.sock');
  const withRef = fs.existsSync(referenceNydusd);
  if (!withRef) console.log(`the reference nydusd is not installed (${referenceNydusd}): ours only`);
  const bare: number[] = [];
  const bareEmpty: number[] = [];
  const ours: DaemonFigures[] = [];
  const ref: DaemonFigures[] = [];
  try {
    for (let r = 0; r < runs; r++) {
      const bareProcs = [await startBareNode(daemonFiles()), await startBareNode([])];
      try {
        fs.mkdirSync(own, { recursive: true });
        ours.push(
          await measureDaemon(() => startNydusd(nydus.bootstrap, nydus.blobDir, own, mnt, nodeArgs, { args: ['--apisock', sock] }), sock, mnt, () => {
            // the bare processes idled through the same window
            bare.push(rssMiB(bareProcs[0]!.pid!).rss);
            bareEmpty.push(rssMiB(bareProcs[1]!.pid!).rss);
          }),
        );
      } finally {
        for (const b of bareProcs) b.kill('SIGKILL');
        rmrf(own);
      }
      console.log(`run ${r + 1}/${runs}, nydusd: cold read at ${fmt(ours.at(-1)!.readMiBs)} MiB/s; load ${loadavg()}`);
      if (withRef) {
        try {
          fs.mkdirSync(own, { recursive: true });
          ref.push(await measureDaemon(() => startReferenceNydusd(nydus.bootstrap, nydus.blobDir, own, mnt, { args: ['--apisock', sock] }), sock, mnt, () => undefined));
        } finally {
          rmrf(own);
        }
        console.log(`run ${r + 1}/${runs}, reference: cold read at ${fmt(ref.at(-1)!.readMiBs)} MiB/s; load ${loadavg()}`);
      }
    }
  } finally {
    await stopAll();
    rmrf(own);
  }
  const col = (xs: DaemonFigures[], k: keyof DaemonFigures) => (xs.length ? `${runsList(xs.map((x) => x[k]))} (${fmt(median(xs.map((x) => x[k])))})` : '-');
  const m = (xs: DaemonFigures[], k: keyof DaemonFigures) => median(xs.map((x) => x[k]));
  console.log('');
  printTable(
    ['process', 'RSS MiB per run (median)'],
    [
      ['bare node, nothing imported', `${runsList(bareEmpty)} (${fmt(median(bareEmpty))})`],
      [`bare node importing ${DAEMON_MODULES.length} nydusd modules (and theirs) and fastify's start-time package${FASTIFY_RUNTIME_PACKAGES.length === 1 ? '' : 's'}`, `${runsList(bare)} (${fmt(median(bare))})`],
      ['bootstrap file', fmt(bootstrapMiB)],
    ],
  );
  console.log('');
  const rows: [string, keyof DaemonFigures][] = [
    ['after the tree walk, largest of the idle window', 'idleMax'],
    [`idle after the tree walk (${IDLE_WINDOW_S} s quiet)`, 'idle'],
    ['  of which anonymous', 'idleAnon'],
    ['peak during the cold read', 'peak'],
    ['when the read ends', 'atEnd'],
    [`settled after the read (${IDLE_WINDOW_S} s quiet)`, 'settled'],
    ['  of which anonymous', 'settledAnon'],
    ['cold read MiB/s', 'readMiBs'],
  ];
  printTable(['RSS MiB', 'nydusd per run (median)', 'reference nydusd per run (median)', 'nydusd / reference'], rows.map(([label, k]) => [label, col(ours, k), col(ref, k), ref.length ? fmt(m(ours, k) / m(ref, k)) : '-']));
  console.log('');
  const ratio = m(ours, 'idle') / (median(bare) + bootstrapMiB);
  const back = m(ours, 'settled') - m(ours, 'idle');
  printTable(
    ['measure', 'value', 'goal', 'met'],
    [
      ['idle RSS / (bare node with the same modules + bootstrap)', fmt(ratio), '≤ 1.3', ratio <= 1.3 ? 'yes' : 'no'],
      ['settled after the read - idle, MiB', fmt(back), '≤ 16', back <= 16 ? 'yes' : 'no'],
      ['peak during the read - idle, MiB', fmt(m(ours, 'peak') - m(ours, 'idle')), '-', '-'],
      ...(ref.length ? [['reference: settled after the read - idle, MiB', fmt(m(ref, 'settled') - m(ref, 'idle')), '-', '-']] : []),
    ],
  );
  console.log(`load average at end: ${loadavg()}`);
}

main().catch(async (e) => {
  await stopAll();
  console.error(e);
  process.exit(1);
});
