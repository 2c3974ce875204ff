import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { native, type NativeSysError } from '../../src/native/index.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'nydus-native-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function sysError(fn: () => unknown): NativeSysError {
  try {
    fn();
  } catch (e) {
    return e as NativeSysError;
  }
  assert.fail('expected a throw');
}

describe('fd passing', () => {
  it('sends data and fds over a socketpair', () => {
    const [a, b] = native.socketpair();
    const file = path.join(scratch, 'passed');
    const fd = openSync(file, 'w');
    try {
      assert.equal(native.sendFds(a, Buffer.from('hello'), [fd]), 5);
      const got = native.recvFds(b, 64);
      assert.equal(got.data.toString(), 'hello');
      assert.equal(got.fds.length, 1);
      assert.notEqual(got.fds[0], fd);
      writeSync(got.fds[0], 'through the passed fd');
      closeSync(got.fds[0]);
      assert.equal(readFileSync(file, 'utf8'), 'through the passed fd');

      assert.equal(native.sendFds(a, Buffer.from('plain'), []), 5);
      assert.deepEqual(native.recvFds(b, 64), { data: Buffer.from('plain'), fds: [] });
    } finally {
      closeSync(fd);
      closeSync(a);
      closeSync(b);
    }
  });

  it('passes several fds and reports EOF', () => {
    const [a, b] = native.socketpair();
    const [c, d] = native.socketpair();
    native.sendFds(a, Buffer.from([1]), [c, d]);
    const got = native.recvFds(b, 1);
    assert.equal(got.fds.length, 2);
    // The received pair is still connected.
    assert.equal(native.writeFd(got.fds[0], Buffer.from('ping')), 4);
    const buf = Buffer.alloc(16);
    assert.equal(native.readFd(got.fds[1], buf), 4);
    assert.equal(buf.subarray(0, 4).toString(), 'ping');
    for (const fd of [...got.fds, c, d, a]) closeSync(fd);
    assert.deepEqual(native.recvFds(b, 16), { data: Buffer.alloc(0), fds: [] });
    assert.equal(native.readFd(b, buf), 0);
    closeSync(b);
  });

  it('rejects bad arguments and reports errno', () => {
    const [a, b] = native.socketpair();
    assert.throws(() => native.sendFds(a, Buffer.alloc(0), [a]), /data must not be empty/);
    assert.throws(() => native.sendFds(a, Buffer.from('x'), new Array(300).fill(a)), /at most 253/);
    assert.throws(() => native.sendFds(a, Buffer.from('x'), [-1]), /'fds' must be an integer/);
    assert.throws(() => native.recvFds(a, 0), /'maxData'/);
    closeSync(a);
    closeSync(b);
    const e = sysError(() => native.readFd(a, Buffer.alloc(4)));
    assert.equal(e.code, 'EBADF');
    assert.equal(e.errno, -9);
    assert.equal(e.syscall, 'read');
    assert.equal(sysError(() => native.writeFd(a, Buffer.alloc(4))).code, 'EBADF');
    assert.equal(sysError(() => native.sendFds(a, Buffer.from('x'), [])).code, 'EBADF');
    assert.equal(sysError(() => native.recvFds(a, 4)).code, 'EBADF');
  });
});

describe('mount and umount2', () => {
  // mount(2) needs root; CI runs as root, and anywhere else these tests fail rather than skip
  before(() => assert.equal(process.getuid?.(), 0, 'the mount tests need root (CI runs as root)'));

  it('umount2 of a non-mountpoint throws', () => {
    const e = sysError(() => native.umount2(scratch, 0));
    assert.equal(e.code, 'EINVAL');
    assert.equal(e.syscall, 'umount2');
    assert.equal(e.path, scratch);
    assert.match(e.message, new RegExp(`^${e.code}: .*, umount2 '${scratch}'$`));
  });

  it('umount2 of a missing path throws ENOENT', () => {
    assert.equal(sysError(() => native.umount2(path.join(scratch, 'missing'), 0)).code, 'ENOENT');
  });

  it('mount errors carry the errno name', () => {
    assert.equal(sysError(() => native.mount('none', scratch, 'no-such-fs', 0, null)).code, 'ENODEV');
    assert.equal(sysError(() => native.mount('none', path.join(scratch, 'missing'), 'tmpfs', 0, null)).code, 'ENOENT');
  });

  it('mount as non-root throws EPERM', () => {
    // drop to nobody in a child so the unprivileged path is exercised too
    const addon = fileURLToPath(new URL('../../src/native/index.js', import.meta.url));
    const script = `import(${JSON.stringify(addon)}).then(({ native }) => { try { native.mount('none', '/tmp', 'tmpfs', 0, null); console.log('mounted'); } catch (e) { console.log(e.code); } })`;
    const out = execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(out.trim(), 'EPERM');
  });

  it('mounts and unmounts a tmpfs', () => {
    const target = path.join(scratch, 'mnt');
    mkdirSync(target);
    native.mount('nydus-test', target, 'tmpfs', 0, 'size=1m');
    try {
      assert.match(readFileSync('/proc/self/mountinfo', 'utf8'), new RegExp(` ${target} `));
    } finally {
      native.umount2(target, 0);
    }
    assert.equal(sysError(() => native.umount2(target, 0)).code, 'EINVAL');
  });

  it('rejects non-string paths and NUL bytes', () => {
    assert.throws(() => native.umount2(5 as unknown as string, 0), /'target' must be a string/);
    assert.throws(() => native.umount2('/a\0b', 0), /NUL/);
  });
});

describe('openFuseClone', () => {
  it('fails cleanly for an fd that is not a FUSE session', () => {
    const [a, b] = native.socketpair();
    try {
      const e = sysError(() => native.openFuseClone(a));
      assert.ok(['EINVAL', 'ENOENT', 'ENODEV', 'EPERM', 'EACCES', 'ENOTTY'].includes(e.code), e.message);
    } finally {
      closeSync(a);
      closeSync(b);
    }
  });
});

describe('worker threads', () => {
  it('loads the addon in a worker and does a blocking read there', async () => {
    const { Worker } = await import('node:worker_threads');
    const [a, b] = native.socketpair();
    const indexUrl = new URL('../../src/native/index.js', import.meta.url).href;
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       import(workerData.indexUrl).then(({ native }) => {
         const buf = Buffer.alloc(64);
         const n = native.readFd(workerData.fd, buf);
         parentPort.postMessage({ text: buf.subarray(0, n).toString(), hash: native.blake3(buf.subarray(0, n)).toString('hex') });
       });`,
      { eval: true, workerData: { fd: b, indexUrl } },
    );
    try {
      const reply = new Promise<{ text: string; hash: string }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      native.writeFd(a, Buffer.from('abc'));
      const got = await reply;
      assert.equal(got.text, 'abc');
      assert.equal(got.hash, '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85');
    } finally {
      await worker.terminate();
      closeSync(a);
      closeSync(b);
    }
  });
});
