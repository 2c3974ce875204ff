// A reader thread: blocking read(2)s of /dev/fuse into one reusable shared buffer, each request copied out and
// handed to the main thread, where the filesystem runs and replies are written. Device I/O only, so blocking here
// never stalls the event loop (see the measurement at the top of session.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { readRequest } from './device.js';

export interface ReaderInit {
  fd: number;
  index: number;
  bufferSize: number;
  /** Int32Array over it: [0] = 1 once the session is stopping. */
  control: SharedArrayBuffer;
}

export type ReaderMessage =
  | { t: 'req'; data: Uint8Array }
  | { t: 'closed' }
  | { t: 'stopped' }
  | { t: 'error'; code?: string; message: string };

const { fd, bufferSize, control } = workerData as ReaderInit;
const port = parentPort!;
const stopFlag = new Int32Array(control);
const buf = new Uint8Array(new SharedArrayBuffer(bufferSize));

function post(m: ReaderMessage, transfer?: ArrayBuffer[]): void {
  port.postMessage(m, transfer);
}

for (;;) {
  let n: number;
  try {
    n = readRequest(fd, buf);
  } catch (e) {
    const code = (e as { code?: string }).code;
    // ENOENT: the request was interrupted while being read; EINTR: a signal
    if (code === 'ENOENT' || code === 'EINTR') continue;
    if (code === 'EAGAIN') {
      // an inherited fd may carry O_NONBLOCK (status flags are shared with the sender's copy): poll, never spin
      Atomics.wait(stopFlag, 0, 0, 1);
      if (Atomics.load(stopFlag, 0) === 1) {
        post({ t: 'stopped' });
        break;
      }
      continue;
    }
    if (code === 'ENODEV') {
      post({ t: 'closed' });
    } else {
      post({ t: 'error', code, message: (e as Error).message });
    }
    break;
  }
  if (n === 0) {
    post({ t: 'closed' });
    break;
  }
  // slice() copies into a plain ArrayBuffer that can be transferred; the shared buffer is reused at once
  const data = buf.slice(0, n);
  post({ t: 'req', data }, [data.buffer]);
  if (Atomics.load(stopFlag, 0) === 1) {
    post({ t: 'stopped' });
    break;
  }
}
