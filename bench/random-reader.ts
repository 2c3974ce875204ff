// Child process of the random-read benchmark: `ops` reads of 4 KiB at offsets drawn from a seeded xorshift over every
// file of a directory (aligned to 4 KiB), one at a time with pread, as a database or a dynamic loader reads. Prints the
// per-read latencies' median, p99 and mean (µs) and the reads per second as JSON on stdout.
//   node dist/bench/random-reader.js <dir> [ops] [seed]
import fs from 'node:fs';
import path from 'node:path';

function main(): void {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: random-reader.js <dir> [ops] [seed]');
  const ops = Number(process.argv[3] ?? '2000');
  let x = Number(process.argv[4] ?? '12345') >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  const files = fs.readdirSync(dir).sort().map((f) => path.join(dir, f)).filter((f) => fs.statSync(f).isFile());
  const fds = files.map((f) => fs.openSync(f, 'r'));
  const sizes = files.map((f) => fs.statSync(f).size);
  const buf = Buffer.alloc(4096);
  const lat: number[] = [];
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ops; i++) {
    const k = Math.floor(next() * fds.length);
    const pages = Math.max(1, Math.floor(sizes[k]! / 4096));
    const off = Math.floor(next() * pages) * 4096;
    const s = process.hrtime.bigint();
    const n = fs.readSync(fds[k]!, buf, 0, 4096, off);
    lat.push(Number(process.hrtime.bigint() - s) / 1000);
    if (n <= 0 && off < sizes[k]!) throw new Error(`short read at ${files[k]}:${off}`);
  }
  const total = Number(process.hrtime.bigint() - t0) / 1e9;
  lat.sort((a, b) => a - b);
  const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!;
  console.log(JSON.stringify({ p50: pct(0.5), p99: pct(0.99), mean: lat.reduce((a, b) => a + b, 0) / lat.length, iops: ops / total }));
}

main();
