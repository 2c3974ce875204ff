// What the blobcache metrics report about a group of instances (spec nydusd-runtime.md 8.5), read from their blob
// devices: the storage layer's counters, the ready chunks and the names of every cache file.
import { emptyCacheStats, type BlobCacheStats } from '../storage/cache/blob-cache.js';
import type { BlobcacheGroup } from './registry.js';

export interface BlobcacheSnapshot {
  storePath: string;
  /** names relative to storePath, each once */
  underlyingFiles: string[];
  stats: BlobCacheStats;
  readyChunks: number;
  /** cache.validate: hits are validated (`whole_hits`) rather than served straight from the file (`partial_hits`) */
  validated: boolean;
}

export async function blobcacheSnapshot(group: BlobcacheGroup): Promise<BlobcacheSnapshot> {
  const files = new Set<string>();
  let stats: BlobCacheStats | undefined;
  let readyChunks = 0;
  for (const m of group.instances) {
    const device = m.instance.device;
    for (const f of device.cacheFileNames()) files.add(f);
    const s = await device.stats();
    if (!stats) stats = s;
    else for (const k of Object.keys(stats) as (keyof BlobCacheStats)[]) stats[k] += s[k];
    readyChunks += await device.readyChunks();
  }
  const first = group.instances[0]?.instance.device;
  return {
    storePath: first?.workDir ?? '',
    underlyingFiles: [...files],
    stats: stats ?? emptyCacheStats(),
    readyChunks,
    validated: first?.validatesCache ?? false,
  };
}
