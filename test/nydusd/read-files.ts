// Child process of the registry tests: reads files of a mount with O_DIRECT (every read goes to the daemon, none is
// answered from the page cache) and prints one JSON object `{ "<rel>": { "md5": …, "ms": … } | { "error": "EIO", "ms": … } }`.
// A read that fails ends that file (its error is reported); the others are still read. Run in a child so that a
// read that hangs in the kernel cannot freeze the test process: the parent bounds it and kills it.
//   node read-files.js <root> <rel>...
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const [root, ...files] = process.argv.slice(2);
if (!root) throw new Error('usage: read-files.js <root> <rel>...');
const out: Record<string, { md5?: string; error?: string; ms: number }> = {};
const buf = Buffer.alloc(128 * 1024);
for (const rel of files) {
  const started = Date.now();
  const hash = createHash('md5');
  let fd: number | undefined;
  try {
    fd = fs.openSync(path.join(root, rel), fs.constants.O_RDONLY | fs.constants.O_DIRECT);
    for (let off = 0; ; ) {
      const n = fs.readSync(fd, buf, 0, buf.length, off);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      off += n;
    }
    out[rel] = { md5: hash.digest('hex'), ms: Date.now() - started };
  } catch (err) {
    out[rel] = { error: (err as NodeJS.ErrnoException).code ?? String(err), ms: Date.now() - started };
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
process.stdout.write(`${JSON.stringify(out)}\n`);
