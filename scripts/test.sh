#!/usr/bin/env bash
# Runs every compiled test file (dist/test/**/*.test.js) one file at a time: FUSE and kernel-mount tests
# must not race each other. Node 20's runner has no glob support, and given a directory it would also run
# the helper modules that live under test/, so the files are listed here. Extra args go to node --test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
[ ${#files[@]} -gt 0 ] || { echo "test: no compiled tests under dist/test (run scripts/setup.sh)" >&2; exit 1; }
exec node --test --test-concurrency=1 "$@" "${files[@]}"
