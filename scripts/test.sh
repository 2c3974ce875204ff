#!/usr/bin/env bash
# Runs every compiled test file (dist/test/**/*.test.js) one file at a time: FUSE and kernel-mount tests
# must not race each other. Node 20's runner has no glob support, and given a directory it would also run
# the helper modules that live under test/, so the files are listed here. Extra args go to node --test (a later
# --test-timeout overrides the default below).
#
# --test-timeout turns a hang into a failure instead of a stalled CI run. Node 20 runs each file in its own
# process and applies the timeout to that process as a whole (it is killed and its unfinished tests are reported
# as cancelled), so it bounds the slowest FILE, even one stuck in synchronous code. The
# slowest files take well under a minute today (nydusd/bad-input about 35 s); 20 minutes leaves room for the
# scale tests, which bound their own steps with per-test `timeout` options.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
[ ${#files[@]} -gt 0 ] || { echo "test: no compiled tests under dist/test (run scripts/setup.sh)" >&2; exit 1; }
exec node --test --test-concurrency=1 --test-timeout=1200000 "$@" "${files[@]}"
