// Where tests find the project and the shared fixtures. Tests run from dist/test/..., so paths are
// resolved from the project root rather than from the compiled file.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(start: string): string {
  let dir = start;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${start}`);
    dir = up;
  }
  return dir;
}

export const projectRoot = findRoot(path.dirname(fileURLToPath(import.meta.url)));

/** ../shared/fixtures beside the checkout, or NYDUS_FIXTURES. Missing fixtures fail loudly. */
export const fixturesDir = process.env.NYDUS_FIXTURES ?? path.resolve(projectRoot, '..', 'shared', 'fixtures');

export function fixture(...parts: string[]): string {
  const p = path.join(fixturesDir, ...parts);
  if (!existsSync(p)) throw new Error(`fixture missing: ${p} (the shared fixtures must sit beside the checkout)`);
  return p;
}

export const texture = (...parts: string[]): string => fixture('nydus', 'tests', 'texture', ...parts);
