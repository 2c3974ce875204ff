// Where should the filesystem run? Measures two layouts on the real kernel (root):
//   A: Session as shipped: 2 reader threads do device I/O only, the filesystem runs on the main thread;
//   B: the filesystem runs inside each of 2 reader threads (worker.ts), replies written there.
// Each run mounts afresh (cold page cache and dentries), reads /big (1 GiB) with dd bs=1M, then stats 50,000
// distinct files with python (like native-perf.md's statbench). Usage: node dist/bench/fuse-layout/session.js [runs]
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { cloneDevice, closeDevice, MNT_DETACH, mountFuse, MS_NOATIME, MS_NODEV, MS_NOSUID, MS_RDONLY, openDevice, umount } from '../../src/fuse/device.js';
import { Session } from '../../src/fuse/session.js';
import { BenchFs } from './fs.js';

const runs = Number(process.argv[2] ?? 3);
const readAheadKb = Number(process.env.READ_AHEAD_KB ?? 128);
const bigSab = new SharedArrayBuffer(1 << 30);
const big = Buffer.from(bigSab);
for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;

function sh(cmd: string, args: string[]): Promise<{ out: string; err: string }> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { maxBuffer: 1 << 20 }, (e, out, err) => (e ? reject(new Error(`${cmd}: ${err}`)) : resolve({ out, err }))),
  );
}

async function measure(mnt: string): Promise<{ mbps: number; statUs: number }> {
  const t0 = process.hrtime.bigint();
  const elu0 = (performance as unknown as { eventLoopUtilization: (a?: unknown) => { utilization: number } }).eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  await sh('dd', [`if=${mnt}/big`, 'of=/dev/null', 'bs=1M']);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  if (process.env.VERBOSE) console.log(`  dd ${secs.toFixed(2)} s, main loop busy ${((performance as unknown as { eventLoopUtilization: (a?: unknown) => { utilization: number } }).eventLoopUtilization(elu0).utilization * 100).toFixed(0)}%, process cpu ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s`);
  const py = 'import os,sys,time\nm=sys.argv[1]\nt=time.perf_counter()\nfor d in range(50):\n  for f in range(1000):\n    os.stat(f"{m}/tree/d{d:02}/f{f:04}")\nprint(time.perf_counter()-t)';
  const { out } = await sh('python3', ['-c', py, mnt]);
  return { mbps: (1 << 30) / 1e6 / secs, statUs: (Number(out) / 50_000) * 1e6 };
}

function setReadAhead(mnt: string): void {
  const line = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === mnt)!;
  fs.writeFileSync(`/sys/class/bdi/${line.split(' ')[2]}/read_ahead_kb`, String(readAheadKb));
}

async function layoutA(mnt: string) {
  const s = await Session.mount(new BenchFs(big), { mountpoint: mnt, readAheadKb });
  try {
    return { ...(await measure(mnt)), maxRead: s.maxReadSize };
  } finally {
    await s.unmount({ lazy: true });
  }
}

async function layoutB(mnt: string) {
  const fd = openDevice();
  mountFuse('rafs', mnt, 'fuse', MS_NOSUID | MS_NODEV | MS_NOATIME | MS_RDONLY, `fd=${fd},rootmode=40000,user_id=0,group_id=0,max_read=1052672,default_permissions,allow_other`);
  const fds = [fd, cloneDevice(fd)];
  const workers = fds.map((f) => new Worker(new URL('./worker.js', import.meta.url), { workerData: { fd: f, big: bigSab } }));
  try {
    await fs.promises.stat(mnt); // answered once INIT is done
    setReadAhead(mnt);
    return { ...(await measure(mnt)), maxRead: 0 };
  } finally {
    umount(mnt, MNT_DETACH);
    await Promise.all(workers.map((w) => new Promise((r) => w.once('exit', r))));
    fds.forEach(closeDevice);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mnt = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'nydus-fuse-bench-')));
try {
  const layouts = [['A main-thread fs', layoutA], ['B fs in readers', layoutB]] as const;
  const results: { mbps: number; statUs: number; maxRead: number }[][] = [[], []];
  // interleaved, so both layouts see the same background load of the shared machine
  for (let i = 0; i < runs; i++) for (const l of [0, 1]) results[l]!.push(await layouts[l]![1](mnt));
  for (const l of [0, 1]) {
    const [name] = layouts[l]!;
    const rs = results[l]!;
    console.log(`${name}: read ${median(rs.map((r) => r.mbps)).toFixed(0)} MB/s (${rs.map((r) => r.mbps.toFixed(0)).join(' ')}), ` +
      `stat ${median(rs.map((r) => r.statUs)).toFixed(1)} us (${rs.map((r) => r.statUs.toFixed(1)).join(' ')}), read_ahead_kb=${readAheadKb}` +
      (rs[0]!.maxRead ? `, largest READ ${rs[0]!.maxRead}` : ''));
  }
} finally {
  fs.rmdirSync(mnt);
}
