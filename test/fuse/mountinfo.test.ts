// The one mountinfo parser (src/fuse/mountinfo.ts): fields, optional fields, the kernel's octal escapes, and which
// mount holds a path; then against this process's real mountinfo.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeField, mountAt, mountContaining, parseMountinfo, readMounts } from '../../src/fuse/mountinfo.js';
import { native } from '../../src/native/index.js';

const TEXT = [
  '22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
  '23 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw',
  '24 22 0:23 / /sys rw,nosuid shared:7 master:2 - sysfs sysfs rw',
  '30 22 0:40 / /mnt/with\\040space\\011tab\\012nl\\134back rw - tmpfs my\\040src rw,size=1024k',
  '31 22 0:41 /sub /mnt/a rw - tmpfs t rw',
  '32 31 0:42 / /mnt/a rw - fuse.nydusd nydusd rw,user_id=0',
  '33 22 0:43 / /mnt/ab rw - tmpfs t rw',
  '34 22 0:44 / /mnt/caf\\303\\251 rw - tmpfs t rw',
  'garbage line',
  '',
].join('\n');

test('fields, optional fields and escapes are parsed', () => {
  const m = parseMountinfo(TEXT);
  assert.equal(m.length, 8, 'malformed and empty lines skipped');
  assert.deepEqual(m[2], {
    id: 24, parentId: 22, major: 0, minor: 23, root: '/', mountPoint: '/sys', options: 'rw,nosuid', fsType: 'sysfs', source: 'sysfs', superOptions: 'rw',
  });
  assert.equal(m[3]!.mountPoint, '/mnt/with space\ttab\nnl\\back');
  assert.equal(m[3]!.source, 'my src');
  assert.equal(m[4]!.root, '/sub');
  assert.equal(m[5]!.fsType, 'fuse.nydusd');
  assert.equal(m[7]!.mountPoint, '/mnt/café', 'escaped UTF-8 bytes decode to the name');
  assert.equal(decodeField('a\\040b\\134\\1340'), 'a b\\\\0');
});

test('mountAt takes the top of a stack; mountContaining the longest mount point above a path', () => {
  const m = parseMountinfo(TEXT);
  assert.equal(mountAt('/mnt/a', m)?.id, 32);
  assert.equal(mountAt('/mnt/with space\ttab\nnl\\back', m)?.id, 30);
  assert.equal(mountAt('/mnt', m), undefined);
  assert.equal(mountContaining('/proc/self', m)?.fsType, 'proc');
  assert.equal(mountContaining('/proc', m)?.fsType, 'proc');
  assert.equal(mountContaining('/processes', m)?.fsType, 'ext4', 'a name prefix is not a path prefix');
  assert.equal(mountContaining('/sys/fs/fuse', m)?.fsType, 'sysfs');
  assert.equal(mountContaining('/mnt/a/x', m)?.id, 32);
  assert.equal(mountContaining('/mnt/ab/x', m)?.id, 33);
  assert.equal(mountContaining('/etc', m)?.id, 22);
});

test('a real mount whose path needs every escape is found by its plain name', () => {
  if (process.getuid?.() !== 0) throw new Error('this test mounts a tmpfs and must run as root');
  const base = path.join(os.tmpdir(), `mountinfo-${process.pid}`);
  const dir = path.join(base, 'a b\tc\\d\ne');
  mkdirSync(dir, { recursive: true });
  native.mount('tmpfs', dir, 'tmpfs', 0, 'size=64k');
  try {
    const m = mountAt(dir, readMounts());
    assert.ok(m, 'found in /proc/self/mountinfo');
    assert.equal(m.fsType, 'tmpfs');
    assert.equal(mountContaining(path.join(dir, 'x'))?.mountPoint, dir);
  } finally {
    native.umount2(dir, 0);
    rmSync(base, { recursive: true, force: true });
  }
});
