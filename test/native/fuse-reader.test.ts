// The native FUSE reader thread (native/src/reader.rs), driven over a socketpair instead of /dev/fuse: each message
// arrives once, in order, from a ring slot that is reused only after its event returned; the end of the connection,
// a failing read and the stop flag each end the thread with their own event followed by EXITED.
import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import { describe, it } from 'node:test';

import { FuseReaderEvent, native } from '../../src/native/index.js';

interface Seen {
  kind: FuseReaderEvent;
  slot: number;
  text?: string;
  code?: string;
  message?: string;
}

/** Starts a reader on `fd`; `events` fills as they arrive, `next()` waits for the next one. */
function reader(fd: number, slots: number, slotSize = 4096) {
  const ring = Buffer.alloc(slots * slotSize);
  const control = new SharedArrayBuffer(4);
  const events: Seen[] = [];
  let waiting: (() => void) | undefined;
  native.startFuseReader(fd, ring, slotSize, new Uint8Array(control), (kind, slot, length, code, message) => {
    const e: Seen = { kind, slot };
    if (kind === FuseReaderEvent.REQUEST) {
      e.text = ring.subarray(slot * slotSize, slot * slotSize + length).toString();
      // scribble over the slot: the reader must not deliver it again before reading into it afresh
      ring.fill(0x2a, slot * slotSize, (slot + 1) * slotSize);
    }
    if (code !== undefined) e.code = code;
    if (message !== undefined) e.message = message;
    events.push(e);
    waiting?.();
  });
  let taken = 0;
  const next = async (): Promise<Seen> => {
    const deadline = Date.now() + 10_000;
    while (events.length <= taken) {
      if (Date.now() > deadline) assert.fail(`no reader event within 10 s after ${JSON.stringify(events)}`);
      await new Promise<void>((r) => {
        waiting = r;
        setTimeout(r, 100);
      });
    }
    return events[taken++]!;
  };
  return { events, next, stop: () => Atomics.store(new Int32Array(control), 0, 1) };
}

describe('native FUSE reader thread', () => {
  it('delivers each message once and in order, reusing its two slots, and ends with CLOSED, EXITED at EOF', async () => {
    const [a, b] = native.socketpair();
    const r = reader(b, 2);
    try {
      for (let i = 0; i < 20; i++) {
        native.writeFd(a, Buffer.from(`request ${i}`));
        const e = await r.next();
        assert.deepEqual(e, { kind: FuseReaderEvent.REQUEST, slot: i % 2, text: `request ${i}` });
      }
      closeSync(a);
      assert.equal((await r.next()).kind, FuseReaderEvent.CLOSED);
      assert.equal((await r.next()).kind, FuseReaderEvent.EXITED);
    } finally {
      closeSync(b);
    }
  });

  it('reports a failing read with its errno name, then EXITED', async () => {
    const fd = openSync('/dev/null', 'w'); // read(2) on a write-only fd: EBADF
    try {
      const r = reader(fd, 1);
      const e = await r.next();
      assert.equal(e.kind, FuseReaderEvent.ERROR);
      assert.equal(e.code, 'EBADF');
      assert.match(e.message!, /^EBADF: .*, read$/);
      assert.equal((await r.next()).kind, FuseReaderEvent.EXITED);
    } finally {
      closeSync(fd);
    }
  });

  it('stops after the next message once the stop flag is set', async () => {
    const [a, b] = native.socketpair();
    const r = reader(b, 4);
    try {
      native.writeFd(a, Buffer.from('first'));
      assert.equal((await r.next()).text, 'first');
      r.stop();
      native.writeFd(a, Buffer.from('wakes it'));
      assert.equal((await r.next()).text, 'wakes it');
      assert.equal((await r.next()).kind, FuseReaderEvent.STOPPED);
      assert.equal((await r.next()).kind, FuseReaderEvent.EXITED);
      // it no longer reads: this message stays in the socket for whoever reads next
      native.writeFd(a, Buffer.from('left'));
      const buf = Buffer.alloc(16);
      assert.equal(buf.subarray(0, native.readFd(b, buf)).toString(), 'left');
    } finally {
      closeSync(a);
      closeSync(b);
    }
  });

  it('refuses a ring that is not a whole number of slots', () => {
    const [a, b] = native.socketpair();
    try {
      assert.throws(() => native.startFuseReader(b, Buffer.alloc(6000), 4096, new Uint8Array(new SharedArrayBuffer(4)), () => undefined), /whole number of 4096-byte slots/);
    } finally {
      closeSync(a);
      closeSync(b);
    }
  });
});
