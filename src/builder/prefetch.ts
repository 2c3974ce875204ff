// `--prefetch-policy fs`: prefetch patterns (one absolute path per line, read from stdin) resolved to
// tree nodes in pattern order. Patterns naming nothing are reported and skipped, as nydus-image does.
import type { TreeNode } from './tree.js';
import { isDir } from './tree.js';
import { getChild } from './overlay.js';

export function parsePrefetchPatterns(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (!line.startsWith('/')) throw new Error(`prefetch pattern '${line}' must be an absolute path`);
    const norm = '/' + line.split('/').filter((p) => p !== '' && p !== '.').join('/');
    if (norm.split('/').includes('..')) throw new Error(`prefetch pattern '${line}' must not contain '..'`);
    if (!out.includes(norm)) out.push(norm);
  }
  return out;
}

export function resolvePrefetch(root: TreeNode, patterns: string[], warn: (m: string) => void = () => {}): TreeNode[] {
  const nodes: TreeNode[] = [];
  for (const p of patterns) {
    let cur: TreeNode | undefined = root;
    for (const part of p.split('/').filter((x) => x !== '')) {
      cur = cur && isDir(cur) ? getChild(cur, Buffer.from(part)) : undefined;
    }
    if (!cur) warn(`prefetch pattern ${p} matches nothing in the image, ignored`);
    else if (!nodes.includes(cur)) nodes.push(cur);
  }
  return nodes;
}
