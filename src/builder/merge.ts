// `nydus-image merge` (rafs-format.md 5.5): per-layer bootstraps, bottom layer first, stacked with OCI
// whiteouts into one tree whose blob table lists only the blobs still referenced, numbered by first
// use in a breadth-first walk. The caller lays the result out with the bootstrap writer.
import path from 'node:path';
import type { BlobInfo, Bootstrap, Compressor, Digester } from '../image-model.js';
import { SuperFlag } from '../image-model.js';
import type { TreeInode, TreeNode } from './tree.js';
import { isDir, isReg } from './tree.js';
import { treeFromBootstrap } from './from-bootstrap.js';
import { applyLayer } from './overlay.js';

export interface MergeLayer {
  bootstrap: Bootstrap;
  /** the file it came from: a 64-hex file name names the layer's blob, as nydus-image does */
  fileName?: string;
  /** `--original-blob-ids[i]` */
  originalBlobId?: string;
}

export interface MergeResult {
  root: TreeNode;
  blobs: BlobInfo[];
  fsVersion: 5 | 6;
  chunkSize: number;
  explicitUidGid: boolean;
  /** of the last layer (rafs-format.md 5.5 step 5) */
  compressor: Compressor;
  digester: Digester;
}

const HEX64 = /^[0-9a-f]{64}$/;

export function mergeLayers(layers: MergeLayer[], parent?: MergeLayer): MergeResult {
  const all = parent ? [parent, ...layers] : layers;
  if (layers.length === 0) throw new Error('merge needs at least one layer bootstrap');
  const first = all[0].bootstrap.superblock;
  const explicit = (sb: Bootstrap['superblock']) => (sb.flags & SuperFlag.EXPLICIT_UID_GID) !== 0n;
  const tarfs = (sb: Bootstrap['superblock']) => (sb.flags & SuperFlag.TARFS_MODE) !== 0n;
  all.forEach((l, i) => {
    const sb = l.bootstrap.superblock;
    const name = l.fileName ?? `layer ${i}`;
    if (sb.version !== first.version) throw new Error(`${name}: RAFS v${sb.version} cannot be merged with v${first.version}`);
    if (sb.chunkSize !== first.chunkSize) {
      throw new Error(`${name}: chunk size 0x${sb.chunkSize.toString(16)} differs from 0x${first.chunkSize.toString(16)}`);
    }
    if (explicit(sb) !== explicit(first)) throw new Error(`${name}: explicit uid/gid setting differs from the other layers`);
    if (tarfs(sb) !== tarfs(first)) throw new Error(`${name}: tarfs mode differs from the other layers`);
    if (sb.version === 5 && sb.digester !== first.digester) throw new Error(`${name}: v5 layers must use the same digester`);
  });

  // Blobs by id across all layers; chunk blob indexes become indexes into `pool`.
  const pool: BlobInfo[] = [];
  const poolIndex = new Map<string, number>();
  let merged: TreeNode | undefined;
  for (const layer of all) {
    const bs = layer.bootstrap;
    const remap = bs.blobs.map((b, i) => {
      const own = i === bs.blobs.length - 1;
      let id = b.blobId;
      if (own && layer.originalBlobId !== undefined) id = normaliseId(layer.originalBlobId);
      else if (own && layer.fileName && HEX64.test(path.basename(layer.fileName))) id = path.basename(layer.fileName);
      let gi = poolIndex.get(id);
      if (gi === undefined) {
        gi = pool.length;
        poolIndex.set(id, gi);
        pool.push({ ...b, blobId: id });
      }
      return gi;
    });
    const tree = treeFromBootstrap(bs);
    forEachFile(tree, (inode) => {
      for (const c of inode.chunks ?? []) {
        const gi = remap[c.blobIndex];
        if (gi === undefined) throw new Error(`${layer.fileName ?? 'layer'}: chunk refers to missing blob index ${c.blobIndex}`);
        c.blobIndex = gi;
      }
    });
    merged = merged ? applyLayer(merged, tree, 'oci') : stripFirstLayerWhiteouts(tree);
  }
  const root = merged!;

  // Renumber blobs by first use, breadth-first.
  const newIndex = new Map<number, number>();
  const blobs: BlobInfo[] = [];
  const queue: TreeNode[] = [root];
  const seen = new Set<TreeInode>();
  for (let q = 0; q < queue.length; q++) {
    for (const c of queue[q].children ?? []) {
      if (isDir(c)) queue.push(c);
      else if (isReg(c) && !seen.has(c.inode)) {
        seen.add(c.inode);
        for (const ch of c.inode.chunks ?? []) {
          let ni = newIndex.get(ch.blobIndex);
          if (ni === undefined) {
            ni = blobs.length;
            newIndex.set(ch.blobIndex, ni);
            blobs.push({ ...pool[ch.blobIndex], index: ni });
          }
          ch.blobIndex = ni;
        }
      }
    }
  }
  const last = layers[layers.length - 1].bootstrap.superblock;
  return {
    root,
    blobs,
    fsVersion: first.version,
    chunkSize: first.chunkSize,
    explicitUidGid: explicit(first),
    compressor: last.compressor,
    digester: last.digester,
  };
}

function normaliseId(id: string): string {
  const s = id.startsWith('sha256:') ? id.slice(7) : id;
  if (!HEX64.test(s)) throw new Error(`original blob id '${id}' is not a 64-character hex digest`);
  return s;
}

/** The bottom layer's whiteouts have nothing below them to hide: applying it onto an empty root drops them. */
function stripFirstLayerWhiteouts(tree: TreeNode): TreeNode {
  const base: TreeNode = { name: tree.name, inode: tree.inode, children: [] };
  return applyLayer(base, tree, 'oci');
}

function forEachFile(root: TreeNode, fn: (inode: TreeInode) => void): void {
  const seen = new Set<TreeInode>();
  const stack = [root];
  while (stack.length > 0) {
    const d = stack.pop()!;
    for (const c of d.children ?? []) {
      if (isDir(c)) stack.push(c);
      else if (isReg(c) && !seen.has(c.inode)) {
        seen.add(c.inode);
        fn(c.inode);
      }
    }
  }
}
