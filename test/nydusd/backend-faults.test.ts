// Backend fault injection at the chunk level (issue 8, test class): nydusd's localfs backend reads its blob from a
// FUSE filesystem (fault-blob-server.ts, our own FUSE session on the real kernel) that flips bytes inside a chunk,
// ends the blob in the middle of a chunk (short read), delays reads, or fails them with EIO, for every compressor,
// RAFS v5 and v6, with validation on and off. Validation on means cache.validate (both versions; RAFS v6 refuses
// digest_validate) plus digest_validate on v5.
// Asserted: with validation on no wrong byte is ever served (every read returns the source's bytes or fails with
// EIO); with validation off a flip the codec detects is EIO too (a flip in an uncompressed chunk without
// validation cannot be detected and is left out); short and failing reads are EIO and the daemon keeps serving other
// files; slow reads are served right; with the faults removed the same daemon serves every byte right; and nothing
// wrong was cached: every chunk marked ready holds its source bytes, and a daemon restarted on the same work_dir
// with a healthy backend serves every file right.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decompress } from '../../src/compress.js';
import { ChunkFlag, type ChunkInfo } from '../../src/image-model.js';
import { loadImageFile } from '../image/helpers.js';
import {
  buildImage, checkReadyChunks, cleanupDaemons, fileChunks, isMounted, mixedBytes, mountImage, removeDir, requireEnv, tempDir, writeConfig, type BuiltImage, tryReadRange,
} from './helpers.js';

const CHUNK = 0x10000;
const FILES = ['a-flip.bin', 'b-fail.bin', 'c-slow.bin', 'd-other.bin', 'z-short.bin'];

/** The fault server as a child process; `command` resolves once the fault is in force. */
class FaultServer {
  private out = '';
  private acks = 0;
  private constructor(readonly child: ChildProcess, readonly mountpoint: string) {}

  static async start(mountpoint: string, dir: string): Promise<FaultServer> {
    mkdirSync(mountpoint, { recursive: true });
    const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fault-blob-server.js');
    const child = spawn(process.execPath, [script, mountpoint, dir], { stdio: ['pipe', 'pipe', 'inherit'] });
    const s = new FaultServer(child, mountpoint);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (s.out += d));
    await s.until(() => s.out.includes('ready\n'), 'get ready');
    return s;
  }

  private async until(cond: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!cond()) {
      if (this.child.exitCode !== null) throw new Error(`fault-blob-server exited (${this.child.exitCode}) before it could ${what}`);
      if (Date.now() > deadline) throw new Error(`fault-blob-server did not ${what} within 10 s`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async command(cmd: object): Promise<void> {
    const want = ++this.acks;
    this.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
    await this.until(() => (this.out.match(/^ok$/gm) ?? []).length >= want, `acknowledge ${JSON.stringify(cmd)}`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      this.child.kill('SIGTERM');
      await new Promise((r) => this.child.once('close', r));
    }
    if (isMounted(this.mountpoint)) throw new Error(`fault-blob-server left ${this.mountpoint} mounted`);
  }
}

/**
 * Reads `file` one chunk-sized piece at a time: each piece must be the source's bytes or EIO (never other bytes).
 * Returns the file offsets of the pieces that failed.
 */
function readPieces(file: string, want: Buffer): number[] {
  const failed: number[] = [];
  for (let off = 0; off < want.length; off += CHUNK) {
    const got = tryReadRange(file, off, Math.min(CHUNK, want.length - off));
    if (typeof got === 'string') {
      assert.equal(got, 'EIO', `${path.basename(file)} at ${off}: a failing read must be EIO`);
      failed.push(off);
    } else {
      assert.ok(got.equals(want.subarray(off, off + CHUNK)), `${path.basename(file)} at ${off}: WRONG BYTES SERVED`);
    }
  }
  return failed;
}

/** A position inside a compressed chunk where flipping a byte makes the codec itself fail (our decoder is the judge). */
function detectableFlip(blob: Buffer, c: ChunkInfo, compressor: number): number | undefined {
  const stored = blob.subarray(c.compressedOffset, c.compressedOffset + c.compressedSize);
  for (let p = 0; p < Math.min(64, stored.length); p++) {
    const bad = Buffer.from(stored);
    bad[p]! ^= 0xff;
    try {
      decompress(compressor, bad, c.uncompressedSize);
    } catch {
      return p;
    }
  }
  return undefined;
}

describe('nydusd with backend faults at the chunk level', () => {
  let work: string;
  let src: string;
  const images: Record<string, BuiltImage> = {};
  const servers: FaultServer[] = [];

  before(() => {
    requireEnv();
    work = tempDir('backend-faults');
    src = path.join(work, 'src');
    mkdirSync(src, { recursive: true });
    FILES.forEach((f, i) => writeFileSync(path.join(src, f), mixedBytes(6 * CHUNK + 1234 * (i + 1), 40 + i)));
    for (const compressor of ['none', 'lz4_block', 'zstd']) {
      for (const version of [5, 6] as const) {
        images[`v${version}-${compressor}`] = buildImage(src, path.join(work, `v${version}-${compressor}`), { version, compressor, chunkSize: `0x${CHUNK.toString(16)}` });
      }
    }
  });
  after(async () => {
    await cleanupDaemons();
    await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
    removeDir(work);
  });

  for (const compressor of ['none', 'lz4_block', 'zstd']) {
    for (const version of [5, 6] as const) {
      for (const validate of [true, false]) {
        const name = `v${version}-${compressor}-${validate ? 'validated' : 'unvalidated'}`;
        it(`${name}: flipped, short, slow and failing backend reads never serve a wrong byte or cache one`, { timeout: 120_000 }, async () => {
          const img = images[`v${version}-${compressor}`]!;
          const dir = path.join(work, name);
          const blobs = path.join(dir, 'blobs');
          const workDir = path.join(dir, 'cache');
          const mnt = path.join(dir, 'mnt');
          const server = await FaultServer.start(blobs, img.blobDir);
          servers.push(server);
          const cfg = writeConfig(path.join(dir, 'cfg.json'), {
            blobDir: blobs, workDir, timeout: 5, amplifyIo: 0, cacheValidate: validate, digestValidate: version === 5 ? validate : undefined,
          });
          const args = ['fuse', '--config', cfg, '--bootstrap', img.bootstrap, '--mountpoint', mnt];
          const d = await mountImage(args, mnt);
          const want = Object.fromEntries(FILES.map((f) => [f, readFileSync(path.join(src, f))]));
          const at = (f: string) => path.join(mnt, f);
          // healthy first: the blob is opened (and a v6 CI table cached) before anything goes wrong
          assert.ok(readFileSync(at('d-other.bin')).equals(want['d-other.bin']!));

          const bs = loadImageFile(img.bootstrap);
          const blob = readFileSync(path.join(img.blobDir, img.blobId));
          const second = (f: string) => fileChunks(bs, f)[1]!;
          // flip: in the middle of a chunk when validation is on; without it only where the codec fails on the flip
          let flip: { chunk: ChunkInfo; offset: number } | undefined;
          if (validate) {
            const c = second('a-flip.bin');
            flip = { chunk: c, offset: c.compressedOffset + (c.compressedSize >>> 1) };
          } else if (compressor !== 'none') {
            for (const c of fileChunks(bs, 'a-flip.bin').filter((x) => x.flags & ChunkFlag.COMPRESSED)) {
              const p = detectableFlip(blob, c, bs.blobs[0]!.compressor);
              if (p !== undefined) {
                flip = { chunk: c, offset: c.compressedOffset + p };
                break;
              }
            }
            assert.ok(flip, `no compressed chunk of a-flip.bin where a flipped byte breaks ${compressor} decoding`);
          }
          if (flip) await server.command({ file: img.blobId, kind: 'flip', offset: flip.offset, length: 1 });
          const failing = second('b-fail.bin');
          await server.command({ file: img.blobId, kind: 'fail', offset: failing.compressedOffset, length: failing.compressedSize });
          const slow = fileChunks(bs, 'c-slow.bin');
          await server.command({ file: img.blobId, kind: 'slow', offset: slow[0]!.compressedOffset, length: slow.at(-1)!.compressedOffset + slow.at(-1)!.compressedSize - slow[0]!.compressedOffset, ms: 200 });
          const cut = second('z-short.bin');
          await server.command({ file: img.blobId, kind: 'short', offset: cut.compressedOffset + (cut.compressedSize >>> 1) });

          for (let pass = 0; pass < 2; pass++) {
            if (flip) assert.ok(readPieces(at('a-flip.bin'), want['a-flip.bin']!).includes(flip.chunk.fileOffset), `pass ${pass}: the flipped chunk is EIO`);
            assert.ok(readPieces(at('b-fail.bin'), want['b-fail.bin']!).includes(failing.fileOffset), `pass ${pass}: the failing chunk is EIO`);
            assert.deepEqual(readPieces(at('c-slow.bin'), want['c-slow.bin']!), [], `pass ${pass}: slow reads are served`);
            assert.ok(readPieces(at('z-short.bin'), want['z-short.bin']!).includes(cut.fileOffset), `pass ${pass}: the chunk cut short is EIO`);
            // the daemon keeps serving what the faults do not touch
            assert.ok(readFileSync(at('d-other.bin')).equals(want['d-other.bin']!));
          }

          // faults removed: the same daemon serves every byte
          await server.command({ clear: true });
          for (const f of FILES) assert.ok(readFileSync(at(f)).equals(want[f]!), `${f} after the faults are removed`);
          assert.ok(d.running);
          assert.equal((await d.stop()).code, 0);
          await server.stop();
          // the flipped chunk is named in a WARN: by validation, or by the codec when decoding caught it first
          // (the whole log is in once the daemon has exited)
          if (flip) {
            assert.match(d.stderr, new RegExp(`WARN (blob ${img.blobId} chunk ${flip.chunk.index} .*fails validation|READ on node \\d+: EIO \\(chunk ${flip.chunk.index} of blob ${img.blobId}: )`));
          }
          // short and failing reads are logged as backend failures
          assert.match(d.stderr, new RegExp(`WARN backend localfs: read blob ${img.blobId} offset \\d+ length \\d+ failed: .*EIO`));
          assert.match(d.stderr, new RegExp(`WARN backend localfs: read blob ${img.blobId} offset \\d+ length \\d+ failed: localfs: blob ${img.blobId} is truncated`));

          // nothing wrong was cached: chunk map against the source, then a restart with a healthy backend
          checkReadyChunks(img, workDir);
          const healthy = writeConfig(path.join(dir, 'healthy.json'), { blobDir: img.blobDir, workDir, amplifyIo: 0, cacheValidate: false });
          const d2 = await mountImage(['fuse', '--config', healthy, '--bootstrap', img.bootstrap, '--mountpoint', mnt], mnt);
          for (const f of FILES) assert.ok(readFileSync(at(f)).equals(want[f]!), `${f} after a restart on the same cache`);
          assert.equal((await d2.stop()).code, 0);
        });
      }
    }
  }
});
