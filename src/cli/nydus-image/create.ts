// `nydus-image create`: directory / tar / tar.gz -> bootstrap + data blob.
import { createHash } from 'node:crypto';
import { closeSync, readFileSync, renameSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { parseCompressor } from '../../compress.js';
import { parseDigester } from '../../digest.js';
import { build } from '../../builder/build.js';
import { defaultOptions, type BuildOptions } from '../../builder/context.js';
import { treeFromBootstrap } from '../../builder/from-bootstrap.js';
import { applyLayer, parseWhiteoutSpec, type WhiteoutSpec } from '../../builder/overlay.js';
import { parsePrefetchPatterns, resolvePrefetch } from '../../builder/prefetch.js';
import { treeFromDirectory } from '../../builder/source-dir.js';
import { isGzipFile, treeFromTarFile } from '../../builder/source-tar.js';
import type { TreeNode } from '../../builder/tree.js';
import type { ChunkInfo } from '../../image-model.js';
import { choice, one, parseArgs, parseSize, usage, UsageError, type OptSpec } from './args.js';
import { loadImage, writeJson } from './common.js';
import {
  checkInputDirectory, checkOutputFile, ensureOutputDirectory, fileTypeName, inputError, openInputFile, writeOutputFile,
} from '../../input-file.js';

export const createSpecs: OptSpec[] = [
  { long: 'bootstrap', short: 'B', value: true, help: 'File path to save the generated RAFS metadata blob' },
  { long: 'blob', short: 'b', value: true, help: 'File path to save the generated RAFS data blob' },
  { long: 'blob-dir', short: 'D', value: true, help: 'Directory path to save generated RAFS metadata and data blobs' },
  { long: 'fs-version', short: 'v', value: true, help: 'RAFS version: 5 or 6 (default 6)' },
  { long: 'compressor', short: 'c', value: true, help: 'none, lz4_block, zstd or gzip (default zstd)' },
  { long: 'digester', value: true, help: 'blake3 or sha256 (default blake3)' },
  { long: 'chunk-size', value: true, help: 'chunk size, power of two between 0x1000 and 0x1000000 (default 0x100000)' },
  { long: 'blob-inline-meta', help: 'Inline the RAFS metadata into the data blob' },
  { long: 'features', value: true, multiple: true, help: 'Enable features: blob-toc' },
  { long: 'prefetch-policy', short: 'P', value: true, help: 'none or fs (fs reads prefetch paths from stdin)' },
  { long: 'whiteout-spec', short: 'W', value: true, help: 'oci, overlayfs or none (default oci)' },
  { long: 'parent-bootstrap', short: 'p', value: true, help: 'Path to the parent (lower layer) bootstrap' },
  { long: 'type', short: 't', value: true, help: 'dir-rafs, tar-rafs or targz-rafs (detected when absent)' },
  { long: 'repeatable', short: 'R', help: 'Generate reproducible images (no explicit uid/gid)' },
  { long: 'aligned-chunk', short: 'A', help: 'Align uncompressed chunk data to 4K (v5; v6 always aligns)' },
  { long: 'output-json', short: 'J', value: true, help: 'File path to save build information as JSON' },
];

const TYPES = ['dir-rafs', 'directory', 'tar-rafs', 'targz-rafs'] as const;

export function createUsage(): string {
  return usage('create', '[OPTIONS] <SOURCE>', createSpecs);
}

export async function runCreate(argv: string[]): Promise<number> {
  const p = parseArgs(argv, createSpecs, 'create');
  if (p.positionals.length !== 1) throw new UsageError('create: exactly one SOURCE (directory, tar or tar.gz) is required');
  const source = p.positionals[0];
  const bootstrapPath = one(p, 'bootstrap');
  const blobPath = one(p, 'blob');
  const blobDir = one(p, 'blob-dir');
  if (!bootstrapPath && !blobDir) throw new UsageError("create: one of '--bootstrap' or '--blob-dir' is required");
  if (!blobPath && !blobDir && !p.flags.has('blob-inline-meta')) {
    throw new UsageError("create: one of '--blob', '--blob-dir' or '--blob-inline-meta' is required");
  }
  const fsVersion = Number(choice(one(p, 'fs-version') ?? '6', ['5', '6'] as const, 'fs version')) as 5 | 6;
  const features = (p.opts.get('features') ?? []).flatMap((f) => f.split(',')).filter((f) => f !== '');
  for (const f of features) choice(f, ['blob-toc'] as const, 'feature');
  let compressor, digester;
  try {
    compressor = parseCompressor(one(p, 'compressor') ?? 'zstd');
    digester = parseDigester(one(p, 'digester') ?? 'blake3');
  } catch (e) {
    throw new UsageError(`create: ${(e as Error).message}`);
  }
  const chunkSize = parseSize(one(p, 'chunk-size') ?? '0x100000', 'chunk size');
  const whiteout: WhiteoutSpec = parseWhiteoutSpecUsage(one(p, 'whiteout-spec') ?? 'oci');
  const prefetchPolicy = choice(one(p, 'prefetch-policy') ?? 'none', ['none', 'fs'] as const, 'prefetch policy');
  const blobToc = features.includes('blob-toc');
  let options: BuildOptions;
  try {
    options = defaultOptions({
      fsVersion,
      compressor,
      digester,
      chunkSize,
      blobToc,
      blobInlineMeta: p.flags.has('blob-inline-meta'),
      explicitUidGid: !p.flags.has('repeatable'),
      alignedChunk: p.flags.has('aligned-chunk'),
    });
  } catch (e) {
    throw new UsageError(`create: ${(e as Error).message}`);
  }

  const sourceIsDir = checkSource(source);
  // outputs are checked before the build, so that a bad one fails at once rather than after it
  if (bootstrapPath) checkOutputFile(bootstrapPath, 'bootstrap output');
  if (blobPath) checkOutputFile(blobPath, 'blob output');
  if (one(p, 'output-json')) checkOutputFile(one(p, 'output-json')!, 'JSON output');
  let type = one(p, 'type');
  if (type !== undefined) type = choice(type, TYPES, 'conversion type');
  else type = sourceIsDir ? 'dir-rafs' : (await isGzipFile(source)) ? 'targz-rafs' : 'tar-rafs';
  if (type === 'directory') type = 'dir-rafs';

  const outDir = blobDir ?? path.dirname(path.resolve(blobPath ?? bootstrapPath!));
  ensureOutputDirectory(outDir, blobDir ? 'blob directory' : 'output directory');
  let root: TreeNode;
  let fileOrder: TreeNode[] | undefined;
  let cleanup = (): void => {};
  if (type === 'dir-rafs') {
    if (!sourceIsDir) throw new Error(`create: source ${source} is a regular file, not a directory (type dir-rafs)`);
    // Against a parent the whiteouts are applied below, so they must survive the scan.
    const scanSpec = one(p, 'parent-bootstrap') ? 'none' : whiteout;
    root = treeFromDirectory(source, { whiteoutSpec: scanSpec }).root;
  } else {
    if (sourceIsDir) throw new Error(`create: source ${source} is a directory, not a tar (type ${type})`);
    if (type === 'targz-rafs' && !(await isGzipFile(source))) throw new Error(`create: source ${source} is not gzip-compressed (type targz-rafs)`);
    const t = await treeFromTarFile(source, { tempDir: outDir });
    root = t.root;
    fileOrder = t.files;
    cleanup = t.cleanup;
  }
  try {
    let parentBlobs = undefined;
    let chunkDict: Map<string, ChunkInfo> | undefined;
    const parentPath = one(p, 'parent-bootstrap');
    if (parentPath) {
      const parent = loadImage(parentPath);
      if (parent.superblock.version !== fsVersion) {
        throw new Error(`create: parent bootstrap is RAFS v${parent.superblock.version}, but this build is v${fsVersion}`);
      }
      if (parent.superblock.chunkSize !== chunkSize) {
        throw new Error(`create: parent bootstrap chunk size 0x${parent.superblock.chunkSize.toString(16)} differs from 0x${chunkSize.toString(16)}`);
      }
      const lower = treeFromBootstrap(parent);
      chunkDict = new Map();
      collectChunks(lower, chunkDict);
      // Whiteouts only mean something against a parent; a `none` build keeps them as files.
      root = applyLayer(lower, root, whiteout);
      parentBlobs = parent.blobs;
    }
    if (prefetchPolicy === 'fs') {
      const patterns = parsePrefetchPatterns(readFileSync(0, 'utf8'));
      options.prefetch = resolvePrefetch(root, patterns, (m) => process.stderr.write(`warning: ${m}\n`));
    }
    const result = build({
      root,
      options,
      outputDir: outDir,
      parentBlobs,
      chunkDict,
      fileOrder: fileOrder?.map((n) => n.inode),
    });
    let finalBlob = result.blobPath;
    if (result.blobPath && blobPath && path.resolve(blobPath) !== path.resolve(result.blobPath)) {
      renameSync(result.blobPath, blobPath);
      finalBlob = blobPath;
    }
    // With only --blob-dir the bootstrap is stored beside the blobs, named by its sha256 as nydus-image does.
    const bootOut = bootstrapPath ?? path.join(outDir, createHash('sha256').update(result.bootstrap).digest('hex'));
    ensureOutputDirectory(path.dirname(path.resolve(bootOut)), 'bootstrap output directory');
    writeOutputFile(bootOut, 'bootstrap output', result.bootstrap);
    writeJson(one(p, 'output-json'), {
      version: '0.1.0',
      bootstrap: bootOut,
      // Every blob the image references (parent blobs first), with the new blob's final id.
      blobs: result.blobs.map((b, i) => (result.blobId && i === result.blobs.length - 1 ? result.blobId : b.blobId)),
      blob_path: finalBlob ?? null,
      fs_version: String(fsVersion),
      compressor: one(p, 'compressor') ?? 'zstd',
    });
    return 0;
  } finally {
    cleanup();
  }
}

/**
 * The source must be a directory (listable) or a regular file (a tar, maybe gzip'ed): a FIFO or device would
 * block or never end, and /dev/zero would read as an empty tar. Returns whether it is a directory.
 */
function checkSource(source: string): boolean {
  let st: Stats;
  try {
    st = statSync(source);
  } catch (e) {
    throw new Error(`create: ${inputError(e, source, 'source').message}`);
  }
  if (st.isDirectory()) {
    checkInputDirectory(source, 'source directory');
    return true;
  }
  if (!st.isFile()) throw new Error(`create: source ${source} is ${fileTypeName(st.mode)}, not a directory or a tar file`);
  closeSync(openInputFile(source, 'source tar').fd);
  return false;
}

function parseWhiteoutSpecUsage(s: string): WhiteoutSpec {
  try {
    return parseWhiteoutSpec(s);
  } catch (e) {
    throw new UsageError(`create: ${(e as Error).message}`);
  }
}

function collectChunks(root: TreeNode, dict: Map<string, ChunkInfo>): void {
  const stack = [root];
  while (stack.length > 0) {
    const d = stack.pop()!;
    for (const c of d.children ?? []) {
      if (c.children) stack.push(c);
      for (const ch of c.inode.chunks ?? []) {
        if (ch.digest.length > 0) dict.set(ch.digest.toString('hex'), ch);
      }
    }
  }
}

