#!/usr/bin/env bash
# Rebuilds the committed RAFS sample images in bootstrap-samples/ (or in the directory given as $1)
# from bootstrap-samples/tree/. Git cannot carry hardlinks, xattrs, modes of directories or mtimes,
# and a > 1 MiB file would bloat the repo, so those are added to a temporary copy of the tree here,
# deterministically: running this twice gives byte-identical images.
# Needs: a built project (npm run build), setfattr (package attr).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$ROOT/bootstrap-samples}
CLI=(node "$ROOT/dist/src/cli/nydus-image.js")
command -v setfattr >/dev/null || { echo "build-samples: setfattr not found (install attr)" >&2; exit 1; }
[ -f "$ROOT/dist/src/cli/nydus-image.js" ] || { echo "build-samples: build the project first (npm run build)" >&2; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
SRC=$TMP/tree
cp -a "$ROOT/bootstrap-samples/tree" "$SRC"

# What git cannot store.
mkdir -p "$SRC/empty-dir"
ln "$SRC/docs/readme.txt" "$SRC/data/readme-hardlink"
setfattr -n user.sample -v "hello xattr" "$SRC/docs/readme.txt"
setfattr -n user.empty-value "$SRC/data/empty"
# 1 MiB + 1000 bytes: a repeating 4 KiB pattern (compressible) and a pseudo-random tail.
node -e '
  const b = Buffer.alloc(0x100000 + 1000);
  let x = 12345;
  for (let i = 0; i < b.length; i++) {
    if (i < 0x100000 && i >= 4096) { b[i] = b[i - 4096]; continue; }
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  process.stdout.write(b);
' > "$SRC/data/big.bin"

# Fixed modes and times; ownership is left out of the images with --repeatable.
find "$SRC" -type d -exec chmod 755 {} +
find "$SRC" -type f -exec chmod 644 {} +
chmod 755 "$SRC/bin/hello.sh"
find "$SRC" -exec touch -h -d @1700000000 {} +

for v in 5 6; do
  for c in none lz4_block zstd; do
    dir="$OUT/v$v-$c"
    rm -rf "$dir"
    mkdir -p "$dir"
    "${CLI[@]}" create --repeatable --fs-version "$v" --compressor "$c" -B "$dir/bootstrap" -D "$dir/blobs" "$SRC"
  done
done

# The expected listing: type/permissions, size (not for directories), path, link target, xattrs.
(
  cd "$SRC"
  LC_ALL=C find . -mindepth 1 | LC_ALL=C sort | while IFS= read -r p; do
    rel=${p#./}
    line=$(LC_ALL=C find "$p" -maxdepth 0 -printf '%M %s')
    if [ -d "$p" ] && [ ! -L "$p" ]; then line="${line%% *} -"; fi
    line="$line $rel"
    if [ -L "$p" ]; then line="$line -> $(readlink "$p")"; fi
    x=$(getfattr -h -d -m - -e text --absolute-names "$p" 2>/dev/null | { grep -v -e '^#' -e '^$' || true; } | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')
    if [ -n "$x" ]; then line="$line [$x]"; fi
    printf '%s\n' "$line"
  done
) > "$OUT/tree.list"
echo "build-samples: wrote $OUT/v{5,6}-{none,lz4_block,zstd} and $OUT/tree.list"
