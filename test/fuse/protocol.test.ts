// Wire layouts and INIT negotiation, checked against linux/fuse.h offsets without a kernel; and the dispatcher
// driven with hand-made requests (playing the kernel) for the cases a real mount rarely produces.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Dispatcher } from '../../src/fuse/dispatcher.js';
import { FuseError, type FileSystem } from '../../src/fuse/filesystem.js';
import { negotiate, requestBufferSize } from '../../src/fuse/negotiate.js';
import { Session, type SessionState } from '../../src/fuse/session.js';
import {
  ATTR_OUT_SIZE,
  decodeDirents,
  decodeInHeader,
  decodeInitOut,
  DirentWriter,
  direntPlusSize,
  direntSize,
  encodeAttrOut,
  encodeEntryOut,
  encodeInitOut,
  encodeNotifyInvalEntry,
  encodeNotifyInvalInode,
  encodeReadIn,
  encodeRequest,
  ENTRY_OUT_SIZE,
  InitFlag,
  Op,
  ProtocolError,
} from '../../src/fuse/protocol.js';
import { buildTestFs } from './memfs.js';

function initIn(minor: number, flags: number, maxReadahead = 131072): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32LE(7, 0);
  b.writeUInt32LE(minor, 4);
  b.writeUInt32LE(maxReadahead, 8);
  b.writeUInt32LE(flags >>> 0, 12);
  return b;
}

describe('FUSE struct layouts', () => {
  it('has the sizes of linux/fuse.h', () => {
    assert.equal(ENTRY_OUT_SIZE, 128);
    assert.equal(ATTR_OUT_SIZE, 104);
    assert.equal(encodeInitOut({ major: 7, minor: 38, maxReadahead: 1, flags: 1, maxBackground: 1, congestionThreshold: 1, maxWrite: 1, timeGran: 1, maxPages: 1 }).length, 64);
    assert.equal(direntSize(1), 32);
    assert.equal(direntSize(8), 32);
    assert.equal(direntSize(9), 40);
    assert.equal(direntPlusSize(1), 128 + 32);
  });

  it('encodes entry_out and attr_out at the header offsets', () => {
    const e = encodeEntryOut({ nodeId: 5n, generation: 2n, entryTimeout: 1.5, attrTimeout: 2 ** 32, attr: { ino: 7n, size: 4097, mode: 0o100644, nlink: 1, uid: 3, gid: 4, mtime: 10.25 } });
    assert.equal(e.readBigUInt64LE(0), 5n);
    assert.equal(e.readBigUInt64LE(8), 2n);
    assert.equal(e.readBigUInt64LE(16), 1n); // entry_valid
    assert.equal(e.readBigUInt64LE(24), 2n ** 32n); // attr_valid
    assert.equal(e.readUInt32LE(32), 500_000_000); // entry_valid_nsec
    assert.equal(e.readBigUInt64LE(40), 7n); // attr.ino
    assert.equal(e.readBigUInt64LE(48), 4097n); // attr.size
    assert.equal(e.readBigUInt64LE(56), 9n); // attr.blocks (512-byte units)
    assert.equal(e.readBigUInt64LE(72), 10n); // attr.mtime
    assert.equal(e.readUInt32LE(92), 250_000_000); // attr.mtimensec
    assert.equal(e.readUInt32LE(100), 0o100644); // attr.mode
    assert.equal(e.readUInt32LE(108), 3); // attr.uid
    const a = encodeAttrOut({ ino: 1n, size: 0, mode: 0o40755 }, 60);
    assert.equal(a.readBigUInt64LE(0), 60n);
    assert.equal(a.readUInt32LE(16 + 60), 0o40755);
  });

  it('writes u64 fields the same from numbers and bigints, beyond 32 bits too', () => {
    const big = 2 ** 40 + 3;
    const fromNumber = encodeAttrOut({ ino: big, size: 2 ** 33 + 1, mode: 0o100644, mtime: 2 ** 35 + 0.5 }, 2 ** 70);
    const fromBigint = encodeAttrOut({ ino: BigInt(big), size: 2n ** 33n + 1n, mode: 0o100644, mtime: 2 ** 35 + 0.5 }, 2 ** 70);
    assert.ok(fromNumber.equals(fromBigint));
    assert.equal(fromNumber.readBigUInt64LE(0), 2n ** 64n - 1n, 'a timeout beyond 2^64 - 1 s saturates');
    assert.equal(fromNumber.readBigUInt64LE(16), BigInt(big)); // attr.ino
    assert.equal(fromNumber.readBigUInt64LE(24), 2n ** 33n + 1n); // attr.size
    assert.equal(fromNumber.readBigUInt64LE(32), 2n ** 24n + 1n); // attr.blocks: rounded up
    assert.equal(fromNumber.readBigUInt64LE(16 + 32), 2n ** 35n); // attr.mtime
    assert.equal(fromNumber.readUInt32LE(16 + 52), 500_000_000);
    assert.throws(() => encodeAttrOut({ ino: 1, size: 1.5, mode: 0o100644 }, 1), RangeError);
    assert.throws(() => encodeAttrOut({ ino: -1, size: 0, mode: 0o100644 }, 1), RangeError);
  });

  it('packs directory entries and stops when full', () => {
    const w = new DirentWriter(100, false);
    assert.ok(w.add(Buffer.from('a'), 2n, 1n, 8));
    assert.ok(w.add(Buffer.from('bbbbbbbbb'), 3n, 2n, 4));
    assert.ok(!w.add(Buffer.from('c'.repeat(40)), 4n, 3n, 8), 'a 64-byte record does not fit the remaining 28 bytes');
    const d = decodeDirents(w.finish(), false);
    assert.deepEqual(d.map((x) => [x.name, x.ino, x.off, x.type]), [['a', 2n, 1n, 8], ['bbbbbbbbb', 3n, 2n, 4]]);
    assert.throws(() => w.add(Buffer.alloc(0), 1n, 1n, 0), ProtocolError);
  });

  it('encodes invalidation notifications with unique 0 and the notify code in the error field', () => {
    const i = encodeNotifyInvalInode(9n, 0n, -1n);
    assert.deepEqual([i.readUInt32LE(0), i.readInt32LE(4), i.readBigUInt64LE(8), i.readBigUInt64LE(16), i.readBigInt64LE(32)], [40, 2, 0n, 9n, -1n]);
    const e = encodeNotifyInvalEntry(1n, 'name');
    assert.deepEqual([e.readUInt32LE(0), e.readInt32LE(4), e.readBigUInt64LE(16), e.readUInt32LE(24)], [16 + 16 + 5, 3, 1n, 4]);
    assert.equal(e.toString('utf8', 32, 37), 'name\0');
  });

  it('rejects truncated requests with a clear error', () => {
    assert.throws(() => decodeInHeader(Buffer.alloc(10)), /shorter than its 40-byte header/);
    const r = encodeRequest(Op.GETATTR, 1n, 1n, Buffer.alloc(16));
    assert.throws(() => decodeInHeader(r.subarray(0, 50)), /says 56 bytes but 50 were read/);
  });
});

describe('INIT negotiation', () => {
  it('takes the intersection with what the kernel offers, 1 MiB requests and READDIRPLUS auto', () => {
    const n = negotiate({ major: 7, minor: 45, maxReadahead: 131072, flags: 0x73fffffb, flags2: 0 });
    assert.equal(n.protoMinor, 38);
    assert.equal(n.maxPages, 256);
    assert.equal(n.maxWrite, 1 << 20);
    assert.equal(requestBufferSize(n), (1 << 20) + 4096);
    for (const f of [InitFlag.ASYNC_READ, InitFlag.PARALLEL_DIROPS, InitFlag.MAX_PAGES, InitFlag.CACHE_SYMLINKS, InitFlag.DO_READDIRPLUS, InitFlag.READDIRPLUS_AUTO, InitFlag.NO_OPEN_SUPPORT, InitFlag.NO_OPENDIR_SUPPORT]) {
      assert.ok(n.flags & f, `missing ${f}`);
    }
    assert.equal(n.flags & InitFlag.WRITEBACK_CACHE, 0);
    assert.equal(n.flags & InitFlag.POSIX_LOCKS, 0);
  });

  it('does not ask for what the kernel lacks, and refuses other major versions', () => {
    const n = negotiate({ major: 7, minor: 31, maxReadahead: 65536, flags: InitFlag.ASYNC_READ, flags2: 0 }, { readdirplus: 'never' });
    assert.equal(n.flags, InitFlag.ASYNC_READ);
    assert.equal(n.maxPages, 32);
    assert.equal(n.maxWrite, 32 * 4096);
    assert.equal(n.protoMinor, 31);
    assert.throws(() => negotiate({ major: 8, minor: 0, maxReadahead: 0, flags: 0, flags2: 0 }), /only major version 7/);
    assert.throws(() => negotiate({ major: 7, minor: 12, maxReadahead: 0, flags: 0, flags2: 0 }), /older than the minimum/);
  });
});

describe('dispatcher without a kernel', () => {
  /** `failWrite` makes a reply's write throw ENOENT, as for a request the kernel already gave up. */
  function harness(fs: FileSystem, failWrite: () => boolean = () => false) {
    const out: Buffer[] = [];
    const d = new Dispatcher(fs, { readOnly: true }, {
      write: (_fd, parts, written) => {
        try {
          if (failWrite()) throw Object.assign(new Error('gone'), { code: 'ENOENT' });
          out.push(Buffer.concat(parts));
        } finally {
          written?.();
        }
      },
      onInit: () => undefined,
      onDestroy: () => undefined,
      log: () => undefined,
    });
    const tick = () => new Promise((r) => setImmediate(r));
    return { d, out, tick };
  }
  const errOf = (b: Buffer) => b.readInt32LE(4);
  /** INTERRUPT request `unique` for the request `target` */
  const interrupt = (unique: bigint, target: bigint) => {
    const body = Buffer.alloc(8);
    body.writeBigUInt64LE(target);
    return encodeRequest(Op.INTERRUPT, unique, 0n, body);
  };

  it('answers INIT, then EROFS for writes and ENOSYS for unknown opcodes', async () => {
    const { d, out, tick } = harness(buildTestFs());
    d.handle(3, encodeRequest(Op.INIT, 1n, 0n, initIn(38, 0x73fffffb)));
    d.handle(3, encodeRequest(Op.MKDIR, 2n, 1n, Buffer.from('\0\0\0\0\0\0\0\0x\0')));
    d.handle(3, encodeRequest(Op.GETLK, 3n, 1n, Buffer.alloc(48)));
    await tick();
    assert.equal(out.length, 3);
    const init = decodeInitOut(out[0]!.subarray(16));
    assert.equal(init.maxPages, 256);
    assert.equal(errOf(out[1]!), -30); // EROFS
    assert.equal(errOf(out[2]!), -38); // ENOSYS
  });

  it('answers the getxattr size probe and ERANGE', async () => {
    const { d, out, tick } = harness(buildTestFs());
    const tagged = (await buildTestFs().lookup(1n, Buffer.from('tagged'))).nodeId;
    const req = (size: number, name: string) => {
      const b = Buffer.alloc(8 + name.length + 1);
      b.writeUInt32LE(size, 0);
      b.write(name, 8);
      return b;
    };
    d.handle(3, encodeRequest(Op.GETXATTR, 10n, tagged, req(0, 'user.color')));
    d.handle(3, encodeRequest(Op.GETXATTR, 11n, tagged, req(2, 'user.color')));
    d.handle(3, encodeRequest(Op.GETXATTR, 12n, tagged, req(100, 'user.color')));
    d.handle(3, encodeRequest(Op.GETXATTR, 13n, tagged, req(100, 'user.nope')));
    await tick();
    assert.equal(out[0]!.readUInt32LE(16), 4);
    assert.equal(errOf(out[1]!), -34); // ERANGE
    assert.equal(out[2]!.toString('utf8', 16), 'blue');
    assert.equal(errOf(out[3]!), -61); // ENODATA
  });

  it('answers an interrupted request with EINTR once, even when the interrupt arrives first', async () => {
    let release!: () => void;
    const fs = buildTestFs();
    const slow: FileSystem = Object.assign(Object.create(fs) as FileSystem, {
      read: (_n: bigint, _f: bigint, _o: bigint, _s: number, ctx: { signal: AbortSignal }) =>
        new Promise<Buffer>((resolve, reject) => {
          release = () => resolve(Buffer.from('late'));
          ctx.signal.addEventListener('abort', () => reject(new FuseError('EINTR')));
        }),
    });
    const { d, out, tick } = harness(slow);
    d.handle(3, encodeRequest(Op.READ, 20n, 2n, encodeReadIn(0n, 0n, 4096)));
    await tick();
    d.handle(3, interrupt(21n, 20n));
    await tick();
    release();
    await tick();
    assert.equal(out.length, 1);
    assert.equal(errOf(out[0]!), -4);
    assert.equal(out[0]!.readBigUInt64LE(8), 20n);
    // interrupt seen before its request (two reader threads race): the request is answered EINTR on arrival
    d.handle(3, interrupt(31n, 30n));
    d.handle(3, encodeRequest(Op.READ, 30n, 2n, encodeReadIn(0n, 0n, 4096)));
    await tick();
    assert.equal(out.length, 2);
    assert.equal(errOf(out[1]!), -4);
    assert.equal(d.inflightCount, 0);
  });

  it('releases leased read data exactly once: after its reply, after a failed write, and for a late answer', async () => {
    const released: string[] = [];
    let answerLate!: () => void;
    const fs = buildTestFs();
    const leased: FileSystem = Object.assign(Object.create(fs) as FileSystem, {
      read: (_n: bigint, _f: bigint, offset: bigint) => {
        const tag = `read@${offset}`;
        const data = { data: [Buffer.from(tag)], release: () => released.push(tag) };
        if (offset !== 2n) return Promise.resolve(data);
        // this one answers only after it was interrupted (it does not watch the abort signal)
        return new Promise((resolve) => (answerLate = () => resolve(data)));
      },
    });
    let failNext = false;
    const { d, out, tick } = harness(leased, () => {
      const fail = failNext;
      failNext = false;
      return fail;
    });

    d.handle(3, encodeRequest(Op.READ, 40n, 2n, encodeReadIn(0n, 0n, 4096)));
    await tick();
    assert.equal(out.length, 1);
    assert.equal(out[0]!.toString('utf8', 16), 'read@0');
    assert.deepEqual(released, ['read@0']);

    failNext = true;
    d.handle(3, encodeRequest(Op.READ, 41n, 2n, encodeReadIn(0n, 1n, 4096)));
    await tick();
    assert.equal(out.length, 1);
    assert.deepEqual(released, ['read@0', 'read@1']);

    d.handle(3, encodeRequest(Op.READ, 42n, 2n, encodeReadIn(0n, 2n, 4096)));
    await tick();
    d.handle(3, interrupt(43n, 42n));
    await tick();
    assert.equal(errOf(out[1]!), -4);
    assert.deepEqual(released, ['read@0', 'read@1'], 'not released before the filesystem answers');
    answerLate();
    await tick();
    assert.equal(out.length, 2, 'the late answer is dropped');
    assert.deepEqual(released, ['read@0', 'read@1', 'read@2']);
    assert.equal(d.inflightCount, 0);
  });

  it('turns a filesystem bug into EIO and a malformed body into EINVAL', async () => {
    const fs = buildTestFs();
    const broken: FileSystem = Object.assign(Object.create(fs) as FileSystem, { statfs: async () => { throw new TypeError('oops'); } });
    const { d, out, tick } = harness(broken);
    d.handle(3, encodeRequest(Op.STATFS, 40n, 1n, Buffer.alloc(0)));
    d.handle(3, encodeRequest(Op.READ, 41n, 2n, Buffer.alloc(4)));
    d.handle(3, encodeRequest(Op.LOOKUP, 42n, 1n, Buffer.from('no-terminator')));
    await tick();
    const byUnique = new Map(out.map((b) => [b.readBigUInt64LE(8), errOf(b)]));
    assert.deepEqual([byUnique.get(40n), byUnique.get(41n), byUnique.get(42n)], [-5, -22, -22]);
  });
});

describe('Session.resume input checks', () => {
  it('refuses a state it cannot use before touching the fd', async () => {
    await assert.rejects(Session.resume(-1, { version: 2 } as unknown as SessionState, buildTestFs()), /unsupported FUSE session state version 2/);
    await assert.rejects(Session.resume(-1, { version: 1, mountpoint: '/x' } as unknown as SessionState, buildTestFs()), /lacks protoMinor/);
    await assert.rejects(Session.resume(-1, null as unknown as SessionState, buildTestFs()), /state version undefined/);
  });
});
