// `nydus-image inspect` / `stat`: superblock, blob table, then the tree with inodes and chunks.
import type { Bootstrap, ChunkInfo } from '../../image-model.js';
import { walk } from '../../rafs/walk.js';
import { compressorName } from '../../compress.js';
import { digesterName } from '../../digest.js';
import { one, parseArgs, usage, UsageError, type OptSpec } from './args.js';
import { loadImage } from './common.js';
import { io } from './io.js';

export const inspectSpecs: OptSpec[] = [
  { long: 'bootstrap', short: 'B', value: true, help: 'Path to the RAFS metadata (bootstrap)' },
  { long: 'json', short: 'J', help: 'Print JSON instead of text' },
  { long: 'no-chunks', help: 'Do not list the chunks of every file' },
];

export function inspectUsage(cmd = 'inspect'): string {
  return usage(cmd, '[OPTIONS] [BOOTSTRAP]', inspectSpecs);
}

const TYPE_CHAR: Record<number, string> = {
  0o040000: 'd', 0o100000: '-', 0o120000: 'l', 0o020000: 'c', 0o060000: 'b', 0o010000: 'p', 0o140000: 's',
};

export function modeString(mode: number): string {
  const t = TYPE_CHAR[mode & 0o170000] ?? '?';
  const rwx = (v: number) => `${v & 4 ? 'r' : '-'}${v & 2 ? 'w' : '-'}${v & 1 ? 'x' : '-'}`;
  return t + rwx(mode >> 6) + rwx(mode >> 3) + rwx(mode);
}

export function runInspect(argv: string[], cmd = 'inspect'): number {
  const p = parseArgs(argv, inspectSpecs, cmd);
  const file = one(p, 'bootstrap') ?? p.positionals[0];
  if (!file) throw new UsageError(`${cmd}: a bootstrap is required (-B <file>)`);
  if (p.positionals.length > (one(p, 'bootstrap') ? 0 : 1)) throw new UsageError(`${cmd}: unexpected argument '${p.positionals.at(-1)}'`);
  const bs = loadImage(file);
  const withChunks = !p.flags.has('no-chunks');
  if (p.flags.has('json')) {
    io.stdout(JSON.stringify(inspectJson(bs, withChunks), null, 2) + '\n');
  } else {
    printText(bs, withChunks, (s) => io.stdout(s + '\n'));
  }
  return 0;
}

function superJson(bs: Bootstrap) {
  const sb = bs.superblock;
  return {
    version: sb.version,
    flags: '0x' + sb.flags.toString(16),
    compressor: compressorName(sb.compressor),
    digester: digesterName(sb.digester),
    chunk_size: sb.chunkSize,
    explicit_uid_gid: sb.explicitUidGid,
    block_size: sb.blockSize,
    root_ino: sb.rootIno,
    inode_count: sb.inodeCount,
    prefetch: sb.prefetch,
    bootstrap_size: bs.size,
  };
}

function blobJson(bs: Bootstrap) {
  return bs.blobs.map((b) => ({
    index: b.index,
    blob_id: b.blobId,
    compressor: compressorName(b.compressor),
    digester: digesterName(b.digester),
    chunk_size: b.chunkSize,
    chunk_count: b.chunkCount,
    features: '0x' + (b.features >>> 0).toString(16),
    compressed_size: b.compressedSize,
    uncompressed_size: b.uncompressedSize,
    ci_offset: b.ciOffset,
    ci_compressed_size: b.ciCompressedSize,
    ci_uncompressed_size: b.ciUncompressedSize,
    toc_size: b.tocSize,
  }));
}

function chunkJson(c: ChunkInfo) {
  return {
    blob_index: c.blobIndex,
    index: c.index,
    file_offset: c.fileOffset,
    compressed_offset: c.compressedOffset,
    compressed_size: c.compressedSize,
    uncompressed_offset: c.uncompressedOffset,
    uncompressed_size: c.uncompressedSize,
    flags: c.flags,
    digest: c.digest.toString('hex'),
  };
}

export function inspectJson(bs: Bootstrap, withChunks: boolean) {
  const entries: unknown[] = [];
  walk(bs, (p, i) => {
    const fmt = i.mode & 0o170000;
    entries.push({
      path: p.toString(),
      ino: i.ino,
      link_ino: i.linkIno,
      mode: '0' + i.mode.toString(8),
      uid: i.uid,
      gid: i.gid,
      size: i.size,
      nlink: i.nlink,
      rdev: i.rdev,
      mtime: i.mtime,
      mtime_nsec: i.mtimeNsec,
      symlink: fmt === 0o120000 ? bs.readlink(i.ino).toString() : undefined,
      xattrs: i.hasXattr ? Object.fromEntries([...bs.xattrs(i.ino)].map(([k, v]) => [k, v.toString('hex')])) : undefined,
      chunks: withChunks && fmt === 0o100000 ? bs.chunks(i.ino).map(chunkJson) : undefined,
    });
  });
  return { superblock: superJson(bs), blobs: blobJson(bs), entries };
}

function printText(bs: Bootstrap, withChunks: boolean, out: (s: string) => void): void {
  const s = superJson(bs);
  out(`RAFS v${s.version} bootstrap (${s.bootstrap_size} bytes)`);
  out(`  flags ${s.flags}  compressor ${s.compressor}  digester ${s.digester}  chunk size 0x${s.chunk_size.toString(16)}`);
  out(`  explicit uid/gid ${s.explicit_uid_gid}  block size ${s.block_size}  root inode ${s.root_ino}  inodes ${s.inode_count}`);
  out(`  prefetch table: ${s.prefetch.length > 0 ? s.prefetch.join(' ') : '(none)'}`);
  out(`Blobs (${bs.blobs.length}):`);
  for (const b of blobJson(bs)) {
    out(`  [${b.index}] ${b.blob_id}`);
    out(`      ${b.compressor}/${b.digester} chunks ${b.chunk_count} chunk size 0x${b.chunk_size.toString(16)} features ${b.features}`);
    out(`      compressed ${b.compressed_size} uncompressed ${b.uncompressed_size} CI at ${b.ci_offset} (${b.ci_compressed_size}/${b.ci_uncompressed_size})`);
  }
  out('Tree:');
  walk(bs, (p, i) => {
    const fmt = i.mode & 0o170000;
    let line = `  ${modeString(i.mode)} ${String(i.nlink).padStart(3)} ${i.uid}:${i.gid} ${String(i.size).padStart(10)} ino ${i.ino} ${p.toString()}`;
    if (fmt === 0o120000) line += ` -> ${bs.readlink(i.ino).toString()}`;
    if (fmt === 0o020000 || fmt === 0o060000) line += ` (rdev 0x${i.rdev.toString(16)})`;
    out(line);
    if (i.hasXattr) for (const [k, v] of bs.xattrs(i.ino)) out(`      xattr ${k}=0x${v.toString('hex')}`);
    if (withChunks && fmt === 0o100000) {
      for (const c of bs.chunks(i.ino)) {
        out(`      chunk @${c.fileOffset} blob ${c.blobIndex} #${c.index} c[${c.compressedOffset}+${c.compressedSize}] u[${c.uncompressedOffset}+${c.uncompressedSize}] ${c.digest.toString('hex').slice(0, 16)}`);
      }
    }
  });
}
