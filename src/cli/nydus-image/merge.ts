// `nydus-image merge`: per-layer bootstraps (bottom first) -> one bootstrap over all their blobs.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build } from '../../builder/build.js';
import { defaultOptions } from '../../builder/context.js';
import { mergeLayers, type MergeLayer } from '../../builder/merge.js';
import { one, parseArgs, required, usage, UsageError, type OptSpec } from './args.js';
import { loadImage, writeJson } from './common.js';
import { checkOutputFile, writeOutputFile } from '../../input-file.js';

export const mergeSpecs: OptSpec[] = [
  { long: 'bootstrap', short: 'B', value: true, help: 'Output path of the merged bootstrap' },
  { long: 'parent-bootstrap', short: 'p', value: true, help: 'Bootstrap of the layers below the SOURCES' },
  { long: 'original-blob-ids', value: true, help: 'Comma-separated blob ids of the SOURCES, in order' },
  { long: 'output-json', short: 'J', value: true, help: 'File path to save the merged blob list as JSON' },
];

export function mergeUsage(): string {
  return usage('merge', '[OPTIONS] -B <OUTPUT> <SOURCE>...', mergeSpecs);
}

export async function runMerge(argv: string[]): Promise<number> {
  const p = parseArgs(argv, mergeSpecs, 'merge');
  const out = required(p, 'bootstrap', 'merge');
  if (p.positionals.length === 0) throw new UsageError('merge: at least one layer bootstrap (SOURCE) is required');
  const ids = one(p, 'original-blob-ids')?.split(',');
  if (ids && ids.length !== p.positionals.length) {
    throw new UsageError(`merge: --original-blob-ids has ${ids.length} ids for ${p.positionals.length} sources`);
  }
  checkOutputFile(out, 'merged bootstrap output');
  if (one(p, 'output-json')) checkOutputFile(one(p, 'output-json')!, 'JSON output');
  const layers: MergeLayer[] = p.positionals.map((f, i) => ({ bootstrap: loadImage(f), fileName: f, originalBlobId: ids?.[i] }));
  const parentPath = one(p, 'parent-bootstrap');
  const parent = parentPath ? { bootstrap: loadImage(parentPath), fileName: parentPath } : undefined;
  const m = mergeLayers(layers, parent);
  const options = defaultOptions({
    fsVersion: m.fsVersion,
    compressor: m.compressor,
    digester: m.digester,
    chunkSize: m.chunkSize,
    explicitUidGid: m.explicitUidGid,
  });
  // Every file already has its chunks, so the build stores no data; the scratch dir only guards that.
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'nydus-merge-'));
  try {
    const result = build({ root: m.root, options, outputDir: scratch, parentBlobs: m.blobs });
    if (result.blobPath) throw new Error('merge unexpectedly produced a data blob (a layer file had no chunks)');
    writeOutputFile(out, 'merged bootstrap output', result.bootstrap);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  writeJson(one(p, 'output-json'), { version: '0.1.0', bootstrap: out, blobs: m.blobs.map((b) => b.blobId) });
  return 0;
}
