// The `nydus-image create` pipeline after the tree exists: number the tree, dump file chunks into a
// new data blob, write the v5 or v6 bootstrap, and (inline-meta) append the bootstrap to the blob.
import type { BlobInfo, ChunkInfo } from '../image-model.js';
import { dumpBlob, type DumpedBlob } from './blob-writer.js';
import { buildOrder, dumpOrder } from './build-order.js';
import { BuildContext, type BuildOptions } from './context.js';
import { isReg, type TreeInode, type TreeNode } from './tree.js';
import { writeV5 } from './v5-writer.js';
import { writeV6 } from './v6-writer.js';

export interface BuildInput {
  root: TreeNode;
  options: BuildOptions;
  /** where the data blob is written (required when any file still has content to store) */
  outputDir?: string;
  /** blobs of a parent bootstrap, in its blob-table order (chunks of the tree refer to them) */
  parentBlobs?: BlobInfo[];
  /** chunks that may be referenced instead of stored (digest hex -> chunk of a parent blob) */
  chunkDict?: Map<string, ChunkInfo>;
  /** explicit dump order of regular-file inodes (tar sources: tar-stream order); others follow */
  fileOrder?: TreeInode[];
}

export interface BuildResult {
  bootstrap: Buffer;
  /** id and path of the new data blob, when one was written */
  blobId?: string;
  blobPath?: string;
  /** the blob table of the bootstrap */
  blobs: BlobInfo[];
}

export function build(input: BuildInput): BuildResult {
  const ctx = new BuildContext(input.options, input.parentBlobs, input.chunkDict);
  const order = buildOrder(input.root);
  let files = dumpOrder(order, input.options.prefetch);
  if (input.fileOrder) {
    const first = new Set(input.fileOrder);
    for (const f of input.fileOrder) {
      if (!f.source && !f.chunks) throw new Error('fileOrder lists an inode without content');
    }
    files = [...input.fileOrder, ...files.filter((f) => !first.has(f))];
  }
  for (const f of files) if (!f.chunks && f.size === 0) f.chunks = [];
  let dumped: DumpedBlob | undefined;
  if (files.some((f) => !f.chunks)) {
    if (!input.outputDir) throw new Error('an output directory for the data blob is required: some files have content');
    dumped = dumpBlob({ ctx, files, outputDir: input.outputDir });
  }
  try {
    for (const e of order.entries) {
      if (isReg(e.node) && !e.node.inode.chunks) throw new Error(`file "${e.node.name.toString()}" has no chunks after dumping`);
    }
    const bootstrap = input.options.fsVersion === 6 ? writeV6(ctx, order).bootstrap : writeV5(ctx, order);
    if (!dumped) return { bootstrap, blobs: ctx.blobs };
    if (input.options.blobInlineMeta) {
      const { blobId, blobPath } = dumped.finishInline(bootstrap);
      return { bootstrap, blobId, blobPath, blobs: ctx.blobs };
    }
    return { bootstrap, blobId: dumped.blobId, blobPath: dumped.blobPath, blobs: ctx.blobs };
  } catch (e) {
    dumped?.abort();
    throw e;
  }
}
