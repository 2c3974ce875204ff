// Layout B of the benchmark: the filesystem runs inside each reader thread, which reads, handles and replies
// itself. A blocking read(2) holds the thread, so pending promises only settle between requests (setImmediate).
import { workerData } from 'node:worker_threads';
import { readRequest, writeMessage } from '../../src/fuse/device.js';
import { Dispatcher } from '../../src/fuse/dispatcher.js';
import { BenchFs } from './fs.js';

const { fd, big } = workerData as { fd: number; big: SharedArrayBuffer };
const d = new Dispatcher(new BenchFs(Buffer.from(big)), { readOnly: true }, {
  write: writeMessage,
  onInit: () => undefined,
  onDestroy: () => undefined,
  log: (level, msg) => level === 'error' && process.stderr.write(`${msg}\n`),
});
const buf = new Uint8Array(new SharedArrayBuffer((1 << 20) + 4096));
for (;;) {
  let n: number;
  try {
    n = readRequest(fd, buf);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT' || code === 'EINTR' || code === 'EAGAIN') continue;
    break;
  }
  d.handle(fd, Buffer.from(buf.buffer, 0, n));
  // let the handler's promise chain run to its reply before blocking in read(2) again
  await new Promise((r) => setImmediate(r));
}
