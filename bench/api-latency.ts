// Management API latency under read load (issue 9, bench goal: p99 < 5 ms): p50/p99/max of GET /api/v1/daemon and
// GET /api/v1/metrics on one keep-alive connection (as nydus-snapshotter polls), first with the daemon idle, then
// while 4 readers stream the big tree's files from the mount (dd iflag=direct, so every read reaches the daemon:
// a cold pass that fetches and decodes, then cache hits), and the ratio loaded / idle. nydusd is dedicated, on the
// `big` image (6 × 192 MiB), with --apisock; a fresh daemon and an empty blob cache per run. The peer, side by side
// in each run (the order alternates): the reference nydusd (nydus-rs, `npm run peers`) under the same load, when
// installed. A route is measured only when it answers 200; otherwise its rows read "n/a (<status>)".
// Each figure comes from back-to-back requests for a fixed time (--seconds, default 5), so both servers are
// sampled over the same stretch of their readers' work however fast they answer.
//   node dist/bench/api-latency.js [--work /tmp/nydus-bench] [--runs 3] [--seconds 5]
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {
  dropCaches, fmt, loadavg, machineInfo, median, parseCommonArgs, printTable, referenceNydusd, rmrf, runsList, startNydusd, startReferenceNydusd, stopAll,
  waitFor, type FuseServer,
} from './common.js';
import { bigTree } from './datasets.js';
import { cachedImages } from './images.js';

const ROUTES = ['/api/v1/daemon', '/api/v1/metrics'] as const;
const READERS = 4;

function get(agent: http.Agent, sock: string, url: string): Promise<{ status: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request({ socketPath: sock, path: url, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`GET ${url}: no answer within 30 s`)));
    req.on('error', reject);
    req.end();
  });
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

interface Figures {
  p50: number;
  p99: number;
  max: number;
  /** requests answered */
  n: number;
}

/** Sequential GETs on one kept-alive connection for `seconds`; the status instead when the route does not answer 200. */
async function measure(sock: string, url: string, seconds: number): Promise<Figures | number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const first = await get(agent, sock, url);
    if (first.status !== 200) return first.status;
    // warm-up: the route's first answers include compiling its code
    for (let i = 0; i < 200; i++) await get(agent, sock, url);
    const ms: number[] = [];
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      const r = await get(agent, sock, url);
      if (r.status !== 200) throw new Error(`GET ${url}: ${r.status} during the measurement`);
      ms.push(r.ms);
    }
    return { p50: percentile(ms, 50), p99: percentile(ms, 99), max: Math.max(...ms), n: ms.length };
  } finally {
    agent.destroy();
  }
}

/** A reader: reads the files in turn with O_DIRECT (each read a FUSE request), round after round, until killed. */
function startReader(files: string[], first: number): ChildProcess {
  const order = files.map((_, i) => files[(first + i) % files.length]!);
  const script = `while :; do for f in ${order.map((f) => `'${f}'`).join(' ')}; do dd if="$f" of=/dev/null bs=1M iflag=direct status=none || exit 1; done; done`;
  return spawn('sh', ['-c', script], { stdio: 'ignore', detached: true });
}

async function main(): Promise<void> {
  const { work, runs, rest } = parseCommonArgs(process.argv.slice(2));
  const seconds = Number(rest.get('seconds') ?? '5');
  console.log(machineInfo());
  const src = bigTree(work);
  const { nydus } = cachedImages(work, 'big', src, 'zstd');
  // daemon state of its own, so that other benchmarks sharing --work are not disturbed
  const own = path.join(work, `api-latency-${process.pid}`);
  const mnt = path.join(own, 'mnt');
  const sock = path.join(own, 'api.sock');
  const sides = ['nydusd', ...(fs.existsSync(referenceNydusd) ? ['nydusd-rs (reference)'] : [])];
  if (sides.length === 1) console.log(`the reference nydusd is not installed (${referenceNydusd}): ours only`);
  const key = (side: string, route: string) => `${side} ${route}`;
  const idle = new Map<string, (Figures | number)[]>();
  const loaded = new Map<string, (Figures | number)[]>();
  const push = (m: Map<string, (Figures | number)[]>, k: string, v: Figures | number) => m.set(k, [...(m.get(k) ?? []), v]);
  try {
    for (let r = 0; r < runs; r++) {
      for (let k = 0; k < sides.length; k++) {
        const side = sides[(k + r) % sides.length]!;
        dropCaches();
        fs.mkdirSync(own, { recursive: true });
        const server: FuseServer = side === 'nydusd'
          ? await startNydusd(nydus.bootstrap, nydus.blobDir, own, mnt, [], { args: ['--apisock', sock] })
          : await startReferenceNydusd(nydus.bootstrap, nydus.blobDir, own, mnt, { args: ['--apisock', sock] });
        const readers: ChildProcess[] = [];
        try {
          await waitFor(() => fs.existsSync(sock), 'the API socket');
          for (const route of ROUTES) push(idle, key(side, route), await measure(sock, route, seconds));
          const files = fs.readdirSync(mnt).sort().map((f) => path.join(mnt, f));
          const cpu0 = server.cpuSeconds();
          const t0 = Date.now();
          for (let i = 0; i < READERS; i++) readers.push(startReader(files, i));
          for (const route of ROUTES) push(loaded, key(side, route), await measure(sock, route, seconds));
          console.log(`run ${r + 1}/${runs}, ${side}: loaded phase ${((Date.now() - t0) / 1000).toFixed(1)} s, daemon CPU ${(server.cpuSeconds() - cpu0).toFixed(1)} s, load ${loadavg()}`);
        } finally {
          for (const p of readers) {
            try {
              process.kill(-p.pid!, 'SIGKILL');
            } catch {
              // already gone
            }
          }
          await server.stop();
          rmrf(own);
        }
      }
    }
  } finally {
    await stopAll();
    rmrf(own);
  }
  const cell = (xs: (Figures | number)[], k: keyof Figures) =>
    typeof xs[0] === 'number' ? `n/a (${xs[0]})` : `${runsList(xs.map((x) => (x as Figures)[k]))} (median ${fmt(median(xs.map((x) => (x as Figures)[k])))})`;
  const rows: string[][] = [];
  for (const route of ROUTES) {
    for (const side of sides) {
      for (const [phase, m] of [['idle', idle], [`${READERS} readers (O_DIRECT)`, loaded]] as const) {
        const xs = m.get(key(side, route))!;
        rows.push([`GET ${route}`, side, phase, cell(xs, 'n'), cell(xs, 'p50'), cell(xs, 'p99'), cell(xs, 'max')]);
      }
    }
  }
  console.log('');
  printTable(['route', 'server', 'daemon', `requests in ${seconds} s per run`, 'p50 ms per run', 'p99 ms per run', 'max ms per run'], rows);
  console.log('');
  const p99 = (m: Map<string, (Figures | number)[]>, side: string, route: string) => {
    const xs = m.get(key(side, route)) ?? [];
    return typeof xs[0] === 'number' || !xs.length ? NaN : median(xs.map((x) => (x as Figures).p99));
  };
  const ratioRows = ROUTES.map((route) => {
    const l = loaded.get(key('nydusd', route))!;
    if (typeof l[0] === 'number') return [`GET ${route}`, `n/a (${l[0]})`, `n/a (${l[0]})`, '-', '< 5 ms'];
    const ours = p99(loaded, 'nydusd', route);
    const ref = sides.length > 1 ? p99(loaded, sides[1]!, route) : NaN;
    return [`GET ${route}`, fmt(ours), fmt(ours / p99(idle, 'nydusd', route)), Number.isFinite(ref) ? fmt(ours / ref) : 'n/a', '< 5 ms'];
  });
  printTable(['route', 'nydusd p99 under load, median ms', 'nydusd p99 under load / idle', 'nydusd / reference, p99 under load', 'goal'], ratioRows);
  console.log(`load average at end: ${loadavg()}`);
}

main().catch(async (e) => {
  await stopAll();
  console.error(e);
  process.exit(1);
});
