// The VFS's logic against in-memory filesystems (the kernel side is proven by test/api/shared-mode.test.ts):
// instance paths, node ids namespaced by slot, lookups counted until FORGET, retired instances, xattr answers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RequestContext } from '../../src/fuse/filesystem.js';
import { decodeDirents, DirentWriter } from '../../src/fuse/protocol.js';
import { InstancePathError, parseInstancePath, Vfs } from '../../src/service/vfs.js';
import { content, MemFs } from '../fuse/memfs.js';

const ctx: RequestContext = { uid: 0, gid: 0, pid: 1, unique: 1n, signal: new AbortController().signal };
const SLOT = (s: number, n: bigint) => (BigInt(s) << 56n) | n;

function image(tag: string): MemFs {
  const fs = new MemFs();
  fs.file(1n, 'file', content(tag, 100));
  const dir = fs.mkdir(1n, 'dir');
  fs.file(dir, 'inner', Buffer.from(`${tag} inner\n`));
  return fs;
}

function newVfs(): { vfs: Vfs<string>; released: string[]; notes: string[] } {
  const released: string[] = [];
  const notes: string[] = [];
  const vfs = new Vfs<string>({ uid: 0, gid: 0, startTime: 1, released: (o) => released.push(o) });
  vfs.notifier = {
    invalEntry: async (p, n) => void notes.push(`entry ${p} ${n.toString()}`),
    invalInode: async (n) => void notes.push(`inode ${n}`),
  };
  return { vfs, released, notes };
}

async function list(vfs: Vfs<string>, node: bigint, plus: boolean): Promise<ReturnType<typeof decodeDirents>> {
  const w = new DirentWriter(64 * 1024, plus);
  await vfs.readdirInto(node, 0n, 0n, w, ctx);
  return decodeDirents(w.finish(), plus);
}

const name = (s: string) => Buffer.from(s);

test('instance paths: absolute and normalised only, so nothing escapes the pseudo root', () => {
  assert.deepEqual(parseInstancePath('/'), []);
  assert.deepEqual(parseInstancePath('/a/b'), ['a', 'b']);
  for (const bad of ['', 'a', './a', '/a/', '//a', '/a//b', '/..', '/../x', '/a/../b', '/./a', '/a/.', '/a\0b', `/${'x'.repeat(256)}`, `/${Array(33).fill('d').join('/')}`]) {
    assert.throws(() => parseInstancePath(bad), InstancePathError, JSON.stringify(bad));
  }
});

test('node ids: pseudo directories are small, instance nodes carry their slot in the top byte', async () => {
  const { vfs } = newVfs();
  vfs.attach('/a', image('a'), 'A');
  vfs.attach('/x/b', image('b'), 'B');
  const a = await vfs.lookup(1n, name('a'), ctx);
  assert.equal(a.nodeId, SLOT(1, 1n), 'the instance root in slot 1');
  const x = await vfs.lookup(1n, name('x'), ctx);
  assert.ok(x.nodeId > 1n && x.nodeId < 1n << 56n, 'a pseudo directory');
  const b = await vfs.lookup(x.nodeId, name('b'), ctx);
  assert.equal(b.nodeId, SLOT(2, 1n));
  const f = await vfs.lookup(b.nodeId, name('file'), ctx);
  assert.equal(f.nodeId >> 56n, 2n);
  const data = await vfs.read(f.nodeId, 0n, 0n, 1000, ctx);
  assert.deepEqual(data, content('b', 100));
  await assert.rejects(vfs.lookup(1n, name('nothing'), ctx), { code: 'ENOENT' });
  // READDIRPLUS of an instance directory: node ids in its slot, "." and ".." without one
  const entries = await list(vfs, b.nodeId, true);
  assert.deepEqual(entries.map((e) => e.name), ['.', '..', 'file', 'dir']);
  for (const e of entries.slice(2)) assert.equal(e.entry!.nodeId >> 56n, 2n, e.name);
  assert.equal(entries[0]!.entry!.nodeId, 0n);
  // the pseudo root lists its children in name order, instance roots with their slot
  const root = await list(vfs, 1n, true);
  assert.deepEqual(root.map((e) => e.name), ['.', '..', 'a', 'x']);
  assert.equal(root[2]!.entry!.nodeId, SLOT(1, 1n));
});

test('an instance at / serves the FUSE root; nothing can be attached inside it', async () => {
  const { vfs } = newVfs();
  vfs.attach('/', image('r'), 'R');
  const f = await vfs.lookup(1n, name('file'), ctx);
  assert.equal(f.nodeId, SLOT(1, f.nodeId & ((1n << 56n) - 1n)));
  assert.deepEqual(await vfs.read(f.nodeId, 0n, 0n, 1000, ctx), content('r', 100));
  assert.throws(() => vfs.attach('/sub', image('s'), 'S'), /inside the instance at \//);
  assert.throws(() => vfs.attach('/', image('s'), 'S'), /already exists/);
});

test('a detached instance is released only when the kernel has forgotten every node it was given', async () => {
  const { vfs, released, notes } = newVfs();
  vfs.attach('/a', image('a'), 'A');
  const root = await vfs.lookup(1n, name('a'), ctx);
  const f = await vfs.lookup(root.nodeId, name('file'), ctx);
  await vfs.lookup(root.nodeId, name('file'), ctx); // a second reference to the same node
  notes.length = 0;
  vfs.detach('/a');
  await new Promise((r) => setImmediate(r));
  assert.ok(notes.includes('entry 1 a'), `the kernel is told to drop the dentry: ${notes.join(', ')}`);
  assert.deepEqual(released, [], 'three references are still held');
  await assert.rejects(vfs.lookup(1n, name('a'), ctx), { code: 'ENOENT' });
  // the held nodes still read the detached image (an open file keeps working)
  assert.deepEqual(await vfs.read(f.nodeId, 0n, 0n, 1000, ctx), content('a', 100));
  // its slot is not reused meanwhile
  vfs.attach('/a', image('a2'), 'A2');
  assert.equal((await vfs.lookup(1n, name('a'), ctx)).nodeId, SLOT(2, 1n));
  vfs.forget(f.nodeId, 2n);
  assert.deepEqual(released, []);
  vfs.forget(root.nodeId, 1n);
  assert.deepEqual(released, ['A']);
  await assert.rejects(vfs.getattr(f.nodeId, ctx), { code: 'ESTALE' });
});

test('a replaced instance keeps serving the nodes handed out before; new lookups see the new one', async () => {
  const { vfs, released } = newVfs();
  vfs.attach('/b', image('old'), 'OLD');
  const oldRoot = await vfs.lookup(1n, name('b'), ctx);
  const oldFile = await vfs.lookup(oldRoot.nodeId, name('file'), ctx);
  const { old, now } = vfs.replace('/b', image('new'), 'NEW');
  assert.equal(old.owner, 'OLD');
  assert.notEqual(now.slot, old.slot);
  assert.deepEqual(vfs.attached().map((a) => a.owner), ['NEW']);
  assert.deepEqual(await vfs.read(oldFile.nodeId, 0n, 0n, 1000, ctx), content('old', 100));
  const newRoot = await vfs.lookup(1n, name('b'), ctx);
  const newFile = await vfs.lookup(newRoot.nodeId, name('file'), ctx);
  assert.deepEqual(await vfs.read(newFile.nodeId, 0n, 0n, 1000, ctx), content('new', 100));
  vfs.forget(oldFile.nodeId, 1n);
  vfs.forget(oldRoot.nodeId, 1n);
  assert.deepEqual(released, ['OLD']);
  assert.throws(() => vfs.replace('/nothing', image('n'), 'N'), /doesn't exist/);
});

test('lookups through READDIRPLUS count too, "." and ".." excepted', async () => {
  const { vfs, released } = newVfs();
  vfs.attach('/a', image('a'), 'A');
  const root = await vfs.lookup(1n, name('a'), ctx);
  const entries = await list(vfs, root.nodeId, true);
  vfs.detach('/a');
  vfs.forget(root.nodeId, 1n);
  assert.deepEqual(released, [], 'the two listed entries are still held');
  for (const e of entries.slice(2)) vfs.forget(e.entry!.nodeId, 1n);
  assert.deepEqual(released, ['A']);
});

test('emptied pseudo directories disappear with their last instance; a listing change invalidates the directory', async () => {
  const { vfs, notes } = newVfs();
  vfs.attach('/x/y/z', image('z'), 'Z');
  const x = await vfs.lookup(1n, name('x'), ctx);
  notes.length = 0;
  vfs.detach('/x/y/z');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual((await list(vfs, 1n, false)).map((e) => e.name), ['.', '..']);
  await assert.rejects(vfs.getattr(x.nodeId, ctx), { code: 'ENOENT' });
  assert.ok(notes.includes(`entry 1 x`) && notes.includes('inode 1'), notes.join(', '));
  assert.throws(() => vfs.detach('/x/y/z'), /doesn't exist/);
});

test('notified() resolves only once the kernel has taken the notifications of a detach, and is bounded', async () => {
  const { vfs } = newVfs();
  vfs.attach('/a', image('a'), 'A');
  // a kernel that takes notifications only when told to
  const held: (() => void)[] = [];
  const taken: string[] = [];
  vfs.notifier = {
    invalEntry: (p, n) => new Promise<void>((r) => held.push(() => (taken.push(`entry ${p} ${n.toString()}`), r()))),
    invalInode: (n) => new Promise<void>((r) => held.push(() => (taken.push(`inode ${n}`), r()))),
  };
  vfs.detach('/a');
  let done = false;
  const waiting = vfs.notified(60_000).then(() => (done = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(done, false, 'notified() resolved before the kernel took anything');
  assert.ok(held.length >= 2, `${held.length} notifications issued`);
  for (const release of held.splice(0)) release();
  await waiting;
  assert.ok(taken.includes('entry 1 a') && taken.includes('inode 1'), taken.join(', '));
  // a notification the kernel never takes holds notified() for its bound only
  vfs.attach('/b', image('b'), 'B');
  const t0 = Date.now();
  await vfs.notified(50);
  assert.ok(Date.now() - t0 < 5_000);
  assert.ok(held.length > 0);
  // nothing pending: at once
  for (const release of held.splice(0)) release();
  await vfs.notified(60_000);
});

test('ENOSYS for xattrs only from an instance alone at the root: in a pseudo tree it would switch xattrs off for all', async () => {
  const noXattr = () => {
    const fs = image('n');
    fs.getxattr = async () => {
      throw Object.assign(new Error('ENOSYS'), { code: 'ENOSYS' });
    };
    return fs;
  };
  const shared = newVfs().vfs;
  shared.attach('/n', noXattr(), 'N');
  const n = await shared.lookup(1n, name('n'), ctx);
  await assert.rejects(shared.getxattr(n.nodeId, name('user.x'), ctx), { code: 'ENODATA' });
  await assert.rejects(shared.getxattr(1n, name('user.x'), ctx), { code: 'ENODATA' });
  const dedicated = newVfs().vfs;
  dedicated.attach('/', noXattr(), 'D');
  await assert.rejects(dedicated.getxattr(1n, name('user.x'), ctx), { code: 'ENOSYS' });
});

test('255 slots: the 256th live instance is refused with a clear error', () => {
  const { vfs } = newVfs();
  for (let i = 0; i < 255; i++) vfs.attach(`/i${i}`, image('i'), `I${i}`);
  assert.throws(() => vfs.attach('/one-more', image('i'), 'X'), /no free instance slot/);
  assert.throws(() => vfs.checkAttach('/one-more'), /no free instance slot/);
  vfs.detach('/i7');
  vfs.attach('/one-more', image('i'), 'X');
  assert.equal(vfs.find('/one-more')!.slot, 8);
});
