// Layering of the management API (issue 9): src/api may import service, config, storage, rafs, fuse and the base
// modules; nothing below it imports src/api, and src/api never imports the executables in src/cli.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../helpers/paths.js';

const SRC = path.join(projectRoot, 'src');

function* sources(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* sources(p);
    else if (/\.(ts|cts|mts)$/.test(e.name)) yield p;
  }
}

/** The src/ folders a file imports from (relative imports only). */
function importedFolders(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
    const target = path.relative(SRC, path.resolve(path.dirname(file), m[1]!));
    out.push(target.split(path.sep)[0]!);
  }
  return out;
}

test('nothing below src/api imports it, and src/api does not import src/cli', () => {
  const bad: string[] = [];
  for (const file of sources(SRC)) {
    const folder = path.relative(SRC, file).split(path.sep)[0]!;
    for (const imported of importedFolders(file)) {
      if (imported === 'api' && folder !== 'api' && folder !== 'cli') bad.push(`${path.relative(projectRoot, file)} imports src/api`);
      if (folder === 'api' && imported === 'cli') bad.push(`${path.relative(projectRoot, file)} imports src/cli`);
    }
  }
  assert.deepEqual(bad, []);
  // the check sees imports at all: src/cli/nydusd-main.ts does import src/api
  assert.ok(importedFolders(path.join(SRC, 'cli', 'nydusd-main.ts')).includes('api'));
});
