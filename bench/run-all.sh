#!/usr/bin/env bash
# Builds the project and runs every benchmark in turn (as root: FUSE mounts and drop_caches need it),
# then removes the generated trees and images unless KEEP=1 (images are rebuilt at every start, trees reused).
# Output goes to stdout; paste the tables into BENCHMARKS.md. Usage: bench/run-all.sh [--runs N] [--work DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK=/tmp/nydus-bench
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do [ "${args[$i]}" = --work ] && WORK="${args[$((i + 1))]}"; done
npx tsc -p tsconfig.json >/dev/null || true   # emits even when unrelated files have type errors
# Images are rebuilt with the code being measured; the generated trees are kept if present.
rm -rf "$WORK/images"
for b in builder walk nydusd-meta nydusd-read nydusd-scale api-latency rss registry-read registry-small-file python-start; do
  echo "=== $b ($(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg))"
  node "dist/bench/$b.js" "$@"
  echo
done
if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; fi
