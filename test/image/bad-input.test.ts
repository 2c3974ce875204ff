// Bad input gets a clear message and exit status 1: never a stack trace, a hang or a half-written image.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { makeTarHeader } from '../../src/blob/tar-header.js';
import { cleanup, nydusImage, nydusImageInProcess, nydusImageOk, tempDir } from './helpers.js';

/** In-process by default (fast); `spawn` runs the real executable to check its exit status. */
async function expectFailure(args: string[], pattern: RegExp, spawn = false): Promise<void> {
  const r = spawn ? nydusImage(args) : await nydusImageInProcess(args);
  assert.equal(r.status, 1, `nydus-image ${args.join(' ')} should exit 1, got ${r.status}: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at .*\.js:\d+/, 'no stack trace');
}

/** A valid ustar header for a regular file (checksum included). */
function ustar(name: string, size: number, type = '0'): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write(type, 156);
  h.write('ustar\x0000', 257, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

describe('bad input', () => {
  let work: string;
  let out: string;
  before(() => {
    work = tempDir('bad');
    out = path.join(work, 'out');
    mkdirSync(path.join(work, 'src'));
    writeFileSync(path.join(work, 'src', 'f'), 'hello');
  });
  after(() => cleanup(work));

  const create = (...args: string[]) => ['create', '-B', path.join(out, 'boot'), '-D', path.join(out, 'blobs'), ...args];

  it('usage errors', async () => {
    const src = path.join(work, 'src');
    await expectFailure(['frobnicate'], /unknown command 'frobnicate'/, true);
    await expectFailure(create('--chunk-size', '0x1001', src), /chunk size/, true);
    await expectFailure(create('--no-such-flag', src), /unknown option '--no-such-flag'/);
    await expectFailure(create('--compressor', 'brotli', src), /compressor.*brotli/i);
    await expectFailure(create('--digester', 'md5', src), /digester.*md5/i);
    await expectFailure(create('--chunk-size', '0x1001', src), /chunk size/);
    await expectFailure(create('--chunk-size', '0x2000000', src), /chunk size/);
    await expectFailure(create('--chunk-size', 'big', src), /invalid chunk size 'big'/);
    await expectFailure(create('--fs-version', '7', src), /invalid fs version '7'/);
    await expectFailure(create('--whiteout-spec', 'aufs', src), /whiteout spec 'aufs'/);
    await expectFailure(create('--type', 'zip-rafs', src), /conversion type 'zip-rafs'/);
    await expectFailure(create('--features', 'turbo', src), /invalid feature 'turbo'/);
    await expectFailure(create('-v', '5', '--features', 'blob-toc', src), /v5 does not support the blob-toc/);
    await expectFailure(create(), /exactly one SOURCE/);
    await expectFailure(['create', src], /--bootstrap/);
    await expectFailure(create('--compressor'), /needs a value/);
    await expectFailure(['check'], /--bootstrap' is required/);
    await expectFailure(['unpack', '-B', 'x'], /cannot read bootstrap x|--output/);
    await expectFailure(['merge', '-B', path.join(out, 'm')], /at least one layer/);
    const help = await nydusImageInProcess(['create', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--chunk-size/);
    assert.match(nydusImageOk(['--version']), /Git Commit:/);
  });

  it('missing or wrong sources', async () => {
    await expectFailure(create(path.join(work, 'nope')), /does not exist/);
    await expectFailure(create('-t', 'dir-rafs', path.join(work, 'src', 'f')), /not a directory/);
    await expectFailure(create('-t', 'tar-rafs', path.join(work, 'src')), /is a directory/);
    await expectFailure(create('-t', 'targz-rafs', path.join(work, 'src', 'f')), /not gzip-compressed/);
    await expectFailure(['check', '-B', path.join(work, 'nope')], /cannot read bootstrap.*ENOENT/);
    await expectFailure(['inspect', '-B', path.join(work, 'src', 'f')], /invalid bootstrap/);
  });

  it('corrupt tars', async () => {
    const t = (name: string, data: Buffer) => {
      const p = path.join(work, name);
      writeFileSync(p, data);
      return p;
    };
    const garbage = Buffer.alloc(2048, 0x41);
    await expectFailure(create(t('garbage.tar', garbage)), /corrupt tar .*garbage\.tar: .*checksum/, true);
    // A header that claims more data than the file has.
    await expectFailure(create(t('short.tar', Buffer.concat([ustar('f', 1 << 30), Buffer.alloc(512)]))), /runs past the end/);
    // A header cut in the middle.
    await expectFailure(create(t('cut.tar', ustar('f', 0).subarray(0, 300))), /truncated header/);
    // Checksum flipped.
    const bad = ustar('f', 0);
    bad[0] ^= 1;
    await expectFailure(create(t('cksum.tar', Buffer.concat([bad, Buffer.alloc(1024)]))), /checksum mismatch/);
    // Hardlink to nothing.
    const link = ustar('l', 0, '1');
    await expectFailure(create(t('link.tar', Buffer.concat([fixLink(link, 'missing'), Buffer.alloc(1024)]))), /hardlink 'l' points to 'missing'/);
    // Path escaping the root.
    await expectFailure(create(t('dotdot.tar', Buffer.concat([ustar('../evil', 0), Buffer.alloc(1024)]))), /contains '\.\.'/);
    // Gzip magic, then garbage.
    await expectFailure(create(t('bad.tar.gz', Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08]), garbage]))), /corrupt gzip/);
    // Truncated gzip stream of a valid tar.
    const gz = gzipSync(Buffer.concat([ustar('f', 5), Buffer.from('hello'), Buffer.alloc(507 + 1024)]));
    await expectFailure(create(t('trunc.tar.gz', gz.subarray(0, gz.length - 12))), /corrupt gzip/);
    // Unsupported entry types are named.
    await expectFailure(create(t('sparse.tar', Buffer.concat([ustar('s', 0, 'S'), Buffer.alloc(1024)]))), /sparse/);
    // Nothing half-written was left behind by the failures.
    const left = readdirSync(path.join(out, 'blobs')).filter((n) => !/^[0-9a-f]{64}$/.test(n));
    assert.deepEqual(left, []);
  });

  it('check names the corrupted chunk', async () => {
    const img = path.join(work, 'img');
    writeFileSync(path.join(work, 'src', 'g'), Buffer.alloc(100000, 7));
    nydusImageOk(['create', '-c', 'none', '-B', path.join(img, 'boot'), '-D', path.join(img, 'blobs'), path.join(work, 'src')]);
    const blob = path.join(img, 'blobs', readdirSync(path.join(img, 'blobs'))[0]);
    nydusImageOk(['check', '-B', path.join(img, 'boot'), '-D', path.join(img, 'blobs')]);
    const data = readFileSync(blob);
    data[10] ^= 0xff;
    writeFileSync(blob, data);
    await expectFailure(['check', '-B', path.join(img, 'boot'), '-D', path.join(img, 'blobs')], /chunk \d+ of blob [0-9a-f]{64}: digest mismatch/, true);
    await expectFailure(['check', '-B', path.join(img, 'boot'), '-D', work], /cannot open blob [0-9a-f]{64}/);
    await expectFailure(['unpack', '-B', path.join(img, 'boot'), '-o', path.join(work, 'x.tar')], /--blob' or '--blob-dir' is required/);
  });

  it('the tar-after-data header encoder agrees with our tar reader', () => {
    // A blob trailer header is a valid tar header, so our tar parser must accept it.
    const p = path.join(work, 'trailer.tar');
    writeFileSync(p, Buffer.concat([makeTarHeader('image.boot', 0), Buffer.alloc(1024)]));
    nydusImageOk(['create', '-B', path.join(work, 'tr', 'boot'), '-D', path.join(work, 'tr'), p]);
  });
});

function fixLink(h: Buffer, target: string): Buffer {
  h.write(target, 157);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}
