// RafsFs listings as the kernel pages through them (READDIR and READDIRPLUS replies continued at the last cookie),
// checked against the bootstrap's own sorted child list and LOOKUP answers, on images built by our builder with names
// that sort before '.' (so '.' and '..' sit mid-block) and directories of many dirent blocks, v5 and v6.
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FuseError } from '../../src/fuse/filesystem.js';
import { loadBootstrap, openBootstrap } from '../../src/rafs/bootstrap.js';
import { RafsFs } from '../../src/rafs/fs.js';
import type { Bootstrap } from '../../src/image-model.js';
import type { BlobDevice } from '../../src/storage/device.js';
import { cleanup, nydusImageInProcess, tempDir } from '../image/helpers.js';
import { listAll, listPage } from './helpers/fs-listing.js';

/** listings never touch file data */
const NO_DEVICE = {} as BlobDevice;
/** names below '.' (0x2e) in byte order, and around it */
const ODD_NAMES = ['!bang', '#hash', '+plus', '-dash', '.hidden', '..dots', '0zero', 'Z', '~tilde'];
const MANY = 1500;

describe('RafsFs listings page through directories by cookie', () => {
  let work: string;
  before(() => {
    work = tempDir('fs-listing');
    const big = path.join(work, 'src', 'big');
    mkdirSync(big, { recursive: true });
    for (const n of ODD_NAMES) writeFileSync(path.join(big, n), n);
    // long names: a 4 KiB dirent block holds ~50 of them, so the directory spans ~30 blocks
    for (let i = 0; i < MANY; i++) writeFileSync(path.join(big, `file-with-a-long-name-${String(i).padStart(5, '0')}-padding-padding`), `${i}`);
    mkdirSync(path.join(big, 'sub'));
    symlinkSync('sub', path.join(big, 'to-sub'));
    linkSync(path.join(big, 'Z'), path.join(big, 'Z-hardlink'));
  });
  after(() => cleanup(work));

  for (const version of [5, 6]) {
    describe(`v${version}`, () => {
      let bs: Bootstrap;
      let fs: RafsFs;
      let bigNode: bigint;
      before(async () => {
        const boot = path.join(work, `boot-v${version}`);
        const r = await nydusImageInProcess(['create', '--fs-version', String(version), '-B', boot, '-D', path.join(work, `blobs-${version}`), path.join(work, 'src')]);
        assert.equal(r.status, 0, r.stderr);
        bs = loadBootstrap(boot);
        fs = new RafsFs(bs, NO_DEVICE, { amplifyIo: 0 });
        bigNode = (await fs.lookup(1n, Buffer.from('big'))).nodeId;
        assert.notEqual(bigNode, 0n);
      });

      for (const plus of [false, true]) {
        for (const size of [4096, 200, 131072]) {
          it(`${plus ? 'READDIRPLUS' : 'READDIR'} in ${size}-byte replies lists '.', '..' and every child once, in order, with consecutive cookies`, async () => {
            const { entries, pages } = await listAll(fs, bigNode, plus, size);
            const children = bs.readdir(Number(bigNode));
            assert.equal(children.length, ODD_NAMES.length + MANY + 3);
            assert.deepEqual(entries.map((e) => e.name), ['.', '..', ...children.map((c) => c.name.toString())]);
            assert.deepEqual(entries.map((e) => e.off), entries.map((_, k) => BigInt(k + 1)));
            assert.ok(entries.slice(2).map((e) => e.name).includes('-dash'), 'a name below "." is listed');
            if (size === 200) assert.ok(pages > entries.length / 4, `${pages} pages of a few entries each`);
            assert.equal(entries[0]!.ino, bigNode);
            assert.equal(entries[1]!.ino, 1n);
            for (const e of entries.slice(2)) {
              const looked = await fs.lookup(bigNode, Buffer.from(e.name));
              assert.equal(e.ino, looked.nodeId, `${e.name}: the listed inode is the one LOOKUP answers`);
              assert.equal(e.type, (looked.attr.mode >>> 12) & 0xf, `${e.name}: d_type`);
              if (plus) {
                assert.equal(e.entry!.nodeId, looked.nodeId);
                const want = looked.attr;
                const got = e.entry!.attr;
                assert.deepEqual([got.ino, got.size, got.mode, got.nlink, got.uid, got.gid, got.mtime], [BigInt(want.ino), BigInt(want.size), want.mode, want.nlink, want.uid, want.gid, want.mtime! + (want.mtimeNsec ?? 0) / 1e9], e.name);
              }
            }
            if (plus) {
              assert.equal(entries[0]!.entry!.nodeId, 0n, "'.' carries no entry (no lookup reference)");
              assert.equal(entries[1]!.entry!.nodeId, 0n);
            }
            const z = entries.find((e) => e.name === 'Z')!;
            assert.equal(entries.find((e) => e.name === 'Z-hardlink')!.ino, z.ino, 'hardlinks list as one inode');
          });
        }
      }

      it('continues after any cookie with exactly the entries that follow it, and past the end with none', async () => {
        const whole = (await listAll(fs, bigNode, false, 1 << 20)).entries;
        for (const cookie of [0, 1, 2, 3, 7, 50, 51, 52, 777, whole.length - 1]) {
          const page = await listPage(fs, bigNode, BigInt(cookie), false, 1 << 20);
          assert.deepEqual(page.map((e) => e.name), whole.slice(cookie).map((e) => e.name), `after cookie ${cookie}`);
        }
        assert.deepEqual(await listPage(fs, bigNode, BigInt(whole.length), false), []);
        assert.deepEqual(await listPage(fs, bigNode, 2n ** 63n, false), []);
      });

      it('Bootstrap.list starts at the asked child and stops when the visitor says so', () => {
        const all = bs.readdir(Number(bigNode));
        const seen: string[] = [];
        bs.list(Number(bigNode), 1000, (src, start, end) => seen.push(src.toString('latin1', start, end)) < 5);
        assert.deepEqual(seen, all.slice(1000, 1005).map((c) => c.name.toString()));
      });

      if (version === 6) {
        it('a damaged dirent block fails what reads it, naming it, and only that: lookups elsewhere in the directory still answer', async () => {
          const img = readFileSync(path.join(work, 'boot-v6'));
          const nid = Number(bigNode);
          const inode = img.readUInt32LE(1024 + 40) * 4096 + 32 * nid;
          const blocks = Math.ceil(bs.getInode(nid).size / 4096);
          assert.ok(blocks > 8, `${blocks} dirent blocks`);
          assert.ok([0, 2].includes((img.readUInt16LE(inode) >> 1) & 7), 'FLAT_PLAIN or FLAT_INLINE: all blocks but an inline tail start at i_u');
          const k = blocks - 2;
          const block = (img.readUInt32LE(inode + 16) + k) * 4096;
          const inDamaged = Buffer.from(img.subarray(block + img.readUInt16LE(block + 20), block + img.readUInt16LE(block + 32))); // its second name
          img[block + img.readUInt16LE(block + 8)] = 0x2f; // the block's first name now holds a '/'
          const damaged = new RafsFs(openBootstrap(img), NO_DEVICE, { amplifyIo: 0 });
          const first = await damaged.lookup(bigNode, Buffer.from('!bang'));
          assert.equal(first.nodeId, (await fs.lookup(bigNode, Buffer.from('!bang'))).nodeId);
          const cause = `v6 inode nid ${nid} dirent block ${k}: dirent 0 name contains NUL or '/'`;
          const eio = (e: unknown) => e instanceof FuseError && e.code === 'EIO' && e.message === cause;
          await assert.rejects(listAll(damaged, bigNode, true), eio);
          await assert.rejects(listAll(damaged, bigNode, false), eio);
          assert.notEqual((await fs.lookup(bigNode, inDamaged)).nodeId, 0n, `${inDamaged} is in the directory`);
          await assert.rejects(damaged.lookup(bigNode, inDamaged), eio);
        });
      }

      it('refuses to list a file (ENOTDIR)', async () => {
        const file = (await fs.lookup(bigNode, Buffer.from('Z'))).nodeId;
        await assert.rejects(listPage(fs, file, 0n, false), (e: unknown) => e instanceof FuseError && e.code === 'ENOTDIR');
      });
    });
  }
});
