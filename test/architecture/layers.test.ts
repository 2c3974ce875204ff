// The layering of src/ (README, Architecture): every import of every source file is checked against what its
// folder may import, so an inverted dependency fails here rather than in a review.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { projectRoot } from '../helpers/paths.js';

const SRC = path.join(projectRoot, 'src');

/**
 * What each layer may import (besides itself), bottom to top. `base` is src/*.ts and src/native: leaf modules anything
 * may use (the image data model, little-endian reads, codecs, digests, input files, the addon). The request path runs
 * downwards: fuse <- rafs (the RAFS filesystem) -> storage -> blob; service assembles them, api and metrics sit on it.
 */
const ALLOWED: Record<string, string[]> = {
  base: [],
  config: [],
  blob: ['base'],
  fuse: ['base', 'config'],
  storage: ['base', 'config', 'blob'],
  rafs: ['base', 'config', 'blob', 'storage', 'fuse'],
  builder: ['base', 'config', 'blob', 'rafs'],
  convert: ['base', 'config', 'blob', 'rafs', 'storage', 'builder', 'unpack'],
  unpack: ['base', 'config', 'blob', 'rafs', 'storage', 'builder'],
  service: ['base', 'config', 'blob', 'rafs', 'fuse', 'storage'],
  metrics: ['base', 'config', 'blob', 'rafs', 'fuse', 'storage', 'service'],
  api: ['base', 'config', 'blob', 'rafs', 'fuse', 'storage', 'service', 'metrics'],
  cli: ['base', 'config', 'blob', 'rafs', 'fuse', 'storage', 'builder', 'unpack', 'convert', 'service', 'metrics', 'api'],
};

function layerOf(file: string): string {
  const rel = path.relative(SRC, file).split(path.sep);
  if (rel.length === 1 || rel[0] === 'native') return 'base';
  return rel[0]!;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.[cm]?ts$/.test(e.name) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Relative module specifiers of static imports, re-exports and dynamic imports. */
export function importsOf(text: string): string[] {
  const out: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.[^'"]+)['"]/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[1]!);
  return out;
}

test('the import scanner sees static, side-effect, re-export and dynamic imports', () => {
  const text = [
    "import fs from 'node:fs';",
    "import { a } from '../x/a.js';",
    "import type {\n  B,\n} from './b.js';",
    "import './side.js';",
    "export { c } from '../c.js';",
    "void import('./lazy.js');",
  ].join('\n');
  assert.deepEqual(importsOf(text), ['../x/a.js', './b.js', './side.js', '../c.js', './lazy.js']);
});

test('no source file imports from a layer above its own', () => {
  const files = sources(SRC);
  assert.ok(files.length > 50, `found only ${files.length} source files under ${SRC}`);
  const violations: string[] = [];
  for (const file of files) {
    const from = layerOf(file);
    const allowed = ALLOWED[from];
    if (!allowed) {
      violations.push(`${path.relative(projectRoot, file)}: folder "${from}" has no place in the layering (add it to ALLOWED and the README)`);
      continue;
    }
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const target = path.resolve(path.dirname(file), spec);
      if (!target.startsWith(SRC + path.sep)) {
        violations.push(`${path.relative(projectRoot, file)} imports ${spec}, outside src/`);
        continue;
      }
      const to = layerOf(target);
      if (to !== from && !allowed.includes(to)) violations.push(`${path.relative(projectRoot, file)} (${from}) imports ${spec} (${to})`);
    }
  }
  assert.deepEqual(violations, []);
});
