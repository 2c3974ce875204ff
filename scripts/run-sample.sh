#!/usr/bin/env bash
# The main job on a bundled default: mounts bootstrap-samples/v6-zstd with nydusd (localfs backend over the
# sample's blobs, blob cache in a temp dir) and serves it in the foreground until Ctrl-C / SIGTERM.
# Usage: scripts/run-sample.sh [mountpoint] [sample]     (as root: FUSE mounts need it, or fusermount3)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MNT="${1:-/tmp/nydus-ts-sample/mnt}"
SAMPLE="${2:-v6-zstd}"
bash "$ROOT/scripts/setup.sh" >&2
IMAGE="$ROOT/bootstrap-samples/$SAMPLE"
[ -f "$IMAGE/bootstrap" ] || { echo "no such sample: $IMAGE" >&2; exit 1; }
WORK="$(dirname "$MNT")"
mkdir -p "$MNT" "$WORK/cache"
cat > "$WORK/config.json" <<JSON
{
  "device": {
    "backend": { "type": "localfs", "config": { "dir": "$IMAGE/blobs" } },
    "cache": { "type": "blobcache", "config": { "work_dir": "$WORK/cache" } }
  },
  "mode": "direct",
  "enable_xattr": true
}
JSON
echo "serving $SAMPLE at $MNT (cache in $WORK/cache); try: ls -la $MNT; stop with Ctrl-C" >&2
exec node "$ROOT/dist/src/cli/nydusd.cjs" fuse --config "$WORK/config.json" --bootstrap "$IMAGE/bootstrap" --mountpoint "$MNT" --log-level info
