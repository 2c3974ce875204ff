// Listings of a mounted image in the formats the fixtures carry their expectations in:
// * the nydus smoke-test `.result` format: `tree -a -J -v <mnt>` then the sorted `md5sum` of every file,
//   with the mountpoint removed;
// * bootstrap-samples/tree.list (the format of scripts/build-samples.sh).
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { md5, run } from './helpers.js';

const C_LOCALE = { ...process.env, LC_ALL: 'C' };

/** Regenerates the `.result` text from a mount, as the nydus smoke tests produce it. */
export function smokeResult(mnt: string): string {
  const tree = run('tree', ['-a', '-J', '-v', mnt], { env: C_LOCALE });
  const sums = run('sh', ['-c', 'find "$1" -type f -exec md5sum {} + | sort', 'sh', mnt], { env: C_LOCALE });
  return (tree + sums).split(mnt).join('');
}

interface TreeNode {
  type: string;
  name: string;
  target?: string;
  contents?: TreeNode[];
}

/**
 * `tree -J` changed its JSON between versions (1.8 writes `"contents":[]` for empty directories and links,
 * 2.x leaves it out; 2.x counts the root in the report): compare the trees, not the renderings.
 */
export function canonicalTree(json: string): { tree: TreeNode[]; dirs: number; files: number } {
  const parsed = JSON.parse(json) as Array<TreeNode & { directories?: number; files?: number }>;
  let dirs = 0;
  let files = 0;
  const canon = (n: TreeNode, root: boolean): TreeNode => {
    if (n.type === 'directory' && !root) dirs++;
    else if (n.type !== 'directory') files++;
    const out: TreeNode = { type: n.type, name: n.name };
    if (n.target !== undefined) out.target = n.target;
    if (n.contents && n.contents.length > 0) out.contents = n.contents.map((c) => canon(c, false));
    return out;
  };
  const tree = parsed.filter((n) => n.type !== 'report').map((n) => canon(n, true));
  return { tree, dirs, files };
}

/** Splits a `.result` text into its tree JSON and its md5sum lines. */
export function splitResult(text: string): { treeJson: string; sums: string } {
  const end = text.indexOf('\n]\n');
  if (end < 0) throw new Error('not a .result text: no end of the tree JSON');
  return { treeJson: text.slice(0, end + 2), sums: text.slice(end + 3) };
}

/** The reported directory/file counts of a tree JSON, minus the root directory where tree 2.x counts it. */
export function reportedCounts(json: string): { directories: number; files: number } {
  const report = (JSON.parse(json) as Array<{ type: string; directories: number; files: number }>).find((n) => n.type === 'report');
  if (!report) throw new Error('tree JSON without a report');
  return { directories: report.directories, files: report.files };
}

/** bootstrap-samples/tree.list, rendered from a directory (a mount) by the same commands that wrote it. */
export function sampleListing(root: string): string {
  const script = `
    cd "$1"
    find . -mindepth 1 | sort | while IFS= read -r p; do
      rel=\${p#./}
      line=$(find "$p" -maxdepth 0 -printf '%M %s')
      if [ -d "$p" ] && [ ! -L "$p" ]; then line="\${line%% *} -"; fi
      line="$line $rel"
      if [ -L "$p" ]; then line="$line -> $(readlink "$p")"; fi
      x=$(getfattr -h -d -m - -e text --absolute-names "$p" 2>/dev/null | { grep -v -e '^#' -e '^$' || true; } | sort | tr '\\n' ' ' | sed 's/ $//')
      if [ -n "$x" ]; then line="$line [$x]"; fi
      printf '%s\\n' "$line"
    done`;
  return run('bash', ['-c', script, 'bash', root], { env: C_LOCALE });
}

/** md5 of every regular file under `root`, by path relative to it. */
export function fileDigests(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = path.join(dir, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) out.set(path.relative(root, p), md5(readFileSync(p)));
    }
  };
  walk(root);
  return out;
}
