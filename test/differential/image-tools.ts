// Either tool's nydus-image (ours, or the reference's of test/helpers/peers.ts) run on the same inputs, and the
// cross-acceptance of their images: each tool's `check` and `inspect` on the other's.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REF_NYDUS_IMAGE } from '../helpers/peers.js';
import { loadImageFile, nydusImageOk } from '../image/helpers.js';
import type { Which as Tool } from './peer-daemons.js';

export type { Tool };

export interface ToolRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The reference nydus-image; a run longer than a minute is a hang. */
export function refImage(args: string[]): ToolRun {
  const r = spawnSync(REF_NYDUS_IMAGE, args, { encoding: 'utf8', maxBuffer: 1 << 28, timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs `nydus-image <args>` of either tool and fails with its stderr when it does not exit 0. */
export function imageOk(tool: Tool, args: string[]): string {
  if (tool === 'ours') return nydusImageOk(args);
  const r = refImage(args);
  if (r.status !== 0) throw new Error(`reference nydus-image ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/**
 * Both tools' `check` accept the image (ours also reads and verifies every chunk with -D), and both tools' `inspect`
 * count the same inodes and the same blobs with the same sizes.
 */
export function crossCheck(boot: string, blobs: string, what: string): void {
  const ours = nydusImageOk(['check', '-B', boot, '-D', blobs]);
  assert.match(ours, /^RAFS v[56] image OK: \d+ entries/, `our check of the ${what} image`);
  const ref = refImage(['check', '-B', boot, '-D', blobs]);
  assert.equal(ref.status, 0, `reference check of the ${what} image: ${ref.stderr}`);
  assert.match(ref.stdout, /^RAFS filesystem metadata is valid, referenced data blobs:/, `reference check of the ${what} image`);

  const mine = JSON.parse(nydusImageOk(['inspect', '-J', '--no-chunks', '-B', boot])) as {
    superblock: { inode_count: number };
    blobs: Array<{ blob_id: string; compressed_size: number; uncompressed_size: number }>;
  };
  const inspect = (request: string): unknown => {
    const r = refImage(['inspect', '-R', request, '-B', boot]);
    assert.equal(r.status, 0, `reference inspect -R ${request} of the ${what} image: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  assert.deepEqual(inspect('stats'), { inodes_count: mine.superblock.inode_count }, `inode count of the ${what} image`);
  const refBlobs = (inspect('blobs') as Array<{ blob_id: string; compressed_size: number; decompressed_size: number }>)
    .map((b) => ({ blob_id: b.blob_id, compressed_size: b.compressed_size, uncompressed_size: b.decompressed_size }));
  assert.deepEqual(refBlobs, mine.blobs.map((b) => ({ blob_id: b.blob_id, compressed_size: b.compressed_size, uncompressed_size: b.uncompressed_size })),
    `blob table of the ${what} image`);
  for (const b of mine.blobs) assert.ok(ref.stdout.includes(b.blob_id), `reference check names blob ${b.blob_id} of the ${what} image`);
}


/** One way the data blobs two tools built from the same input differ. */
export interface BlobDifference {
  field: string;
  ref: unknown;
  ours: unknown;
}

/**
 * The single data blobs of two images of the same input, compared: chunk count and sizes, features, the CI table's
 * compressor and sizes, and the blob's bytes, the chunk data (before the CI table) apart from the rest.
 */
export function blobDifferences(ref: { boot: string; blobs: string }, ours: { boot: string; blobs: string }): BlobDifference[] {
  const [a, b] = [ref, ours].map((x) => {
    const bs = loadImageFile(x.boot);
    assert.equal(bs.blobs.length, 1, `one blob in ${x.boot}`);
    const info = bs.blobs[0]!;
    return { info, bytes: readFileSync(path.join(x.blobs, info.blobId)) };
  });
  const out: BlobDifference[] = [];
  const fields = ['chunkCount', 'compressor', 'digester', 'features', 'uncompressedSize', 'ciOffset', 'ciUncompressedSize', 'ciCompressor', 'ciCompressedSize'] as const;
  for (const f of fields) if (a!.info[f] !== b!.info[f]) out.push({ field: f, ref: a!.info[f], ours: b!.info[f] });
  // v5 blobs have no CI table: all of the blob is chunk data
  const dataEnd = (x: typeof a) => (x!.info.ciOffset > 0 ? x!.info.ciOffset : x!.bytes.length);
  if (!a!.bytes.subarray(0, dataEnd(a)).equals(b!.bytes.subarray(0, dataEnd(b)))) out.push({ field: 'chunk data bytes', ref: dataEnd(a), ours: dataEnd(b) });
  if (!a!.bytes.subarray(dataEnd(a)).equals(b!.bytes.subarray(dataEnd(b)))) out.push({ field: 'CI table and header bytes', ref: a!.bytes.length - dataEnd(a), ours: b!.bytes.length - dataEnd(b) });
  return out;
}
