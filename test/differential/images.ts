// The images both daemons mount in the differential suites: the bootstrap samples (built by our nydus-image, every
// fs-version x compressor) and the shared fixtures built by the reference's nydus-image (v6 with a ToC, v5 with
// and without compression, and the historical v5 layout of 2022).
import path from 'node:path';
import { fixture, projectRoot, texture } from '../helpers/paths.js';
import type { Image } from './peer-daemons.js';

export function sample(name: string): Image {
  const dir = path.join(projectRoot, 'bootstrap-samples', name);
  return { name, bootstrap: path.join(dir, 'bootstrap'), blobDir: path.join(dir, 'blobs') };
}

export const SAMPLES: Image[] = ['v5-none', 'v5-lz4_block', 'v5-zstd', 'v6-none', 'v6-lz4_block', 'v6-zstd'].map(sample);

const HISTORICAL = 'nydus-at-5be153feb0c08571e88934e9020c208d85aefeb0';

export function fixtureImages(): Image[] {
  const repeatable = texture('repeatable', 'blobs');
  return [
    { name: 'fixture rafs-v6-2.2', bootstrap: texture('bootstrap', 'rafs-v6-2.2.boot'), blobDir: texture('blobs') },
    { name: 'fixture v5 sha256-nocompress', bootstrap: texture('repeatable', 'sha256-nocompress-repeatable'), blobDir: repeatable },
    { name: 'fixture v5 blake3-lz4_block', bootstrap: texture('repeatable', 'blake3-lz4_block-non_repeatable'), blobDir: repeatable },
    { name: 'fixture v5 (2022) blake3-lz4_block', bootstrap: fixture(HISTORICAL, 'tests', 'texture', 'repeatable', 'blake3-lz4_block-non_repeatable'), blobDir: repeatable },
    { name: 'fixture v5 (2022) sha256-nocompress', bootstrap: fixture(HISTORICAL, 'tests', 'texture', 'repeatable', 'sha256-nocompress-repeatable'), blobDir: repeatable },
  ];
}
