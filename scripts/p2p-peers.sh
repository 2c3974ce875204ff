#!/usr/bin/env bash
# Installs the real P2P engines the proxy, Kraken and preheat tests run on loopback (issue 11; spec p2p-seeds.md,
# nydusd-runtime.md 7.5): Dragonfly (manager, scheduler, dfget, whose `dfget daemon` is the proxy) and Kraken (agent,
# origin, tracker, build-index). Both are Go programs built from the Go module proxy at pinned versions into
# ${NYDUS_TS_CACHE:-~/.cache/nydus-ts}/p2p/<engine>-<version>/bin, where test/helpers/dragonfly.ts and kraken.ts find
# them. Idempotent: an engine whose directory has its completion marker is left alone (no network).
# Usage: bash scripts/p2p-peers.sh; scripts/setup.sh runs it as its step 7. MariaDB, Redis and nginx (the engines'
# run-time companions) and gcc (Kraken's sqlite3 is cgo) come from Debian, in setup's APT_PACKAGES.
set -euo pipefail

# Dragonfly v2.0.9 is the newest Dragonfly whose Go module the module proxy serves here (2.1.x is refused; from 2.2 the
# dfdaemon is a Rust program and left the module). It has the manager's job API (`/api/v1/jobs`) and the older
# `/preheats` but not yet the Open API (`/oapi/v1/jobs`, personal access tokens). Kraken v0.1.4 is its newest tag.
# Keep DRAGONFLY_VERSION / KRAKEN_VERSION in test/helpers/p2p-engines.ts in step.
DRAGONFLY_MODULE=d7y.io/dragonfly/v2
DRAGONFLY_VERSION=v2.0.9
DRAGONFLY_CMDS="cmd/manager cmd/scheduler cmd/dfget"
KRAKEN_MODULE=github.com/uber/kraken
KRAKEN_VERSION=v0.1.4
KRAKEN_CMDS="agent origin tracker build-index"

P2P_DIR="${NYDUS_TS_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/nydus-ts}/p2p"
say() { printf 'p2p-peers: %s\n' "$*"; }
die() { printf 'p2p-peers: error: %s\n' "$*" >&2; exit 1; }

GO="$(command -v go || true)"
[ -n "$GO" ] || GO=/usr/local/go/bin/go

# install NAME MODULE VERSION "PKG..."
install_engine() {
  local name=$1 module=$2 version=$3 pkgs=$4
  local dir="$P2P_DIR/$name-$version" marker
  marker="$dir/.installed"
  if [ -f "$marker" ]; then
    say "$name $version: present in $dir/bin"
    return 0
  fi
  [ -x "$GO" ] || die "the Go toolchain is missing (looked for 'go' in PATH and $GO); $name needs it"
  command -v cc >/dev/null || die "'cc' is missing (build-essential, installed by scripts/setup.sh as root)"
  say "$name $version: building into $dir/bin (a few minutes)"
  rm -rf "$dir"
  mkdir -p "$dir/bin" "$dir/build"
  # `go install module/cmd@version` would be the usual way, but it first asks the module proxy for the module's version
  # list (to report deprecations), which the proxy refuses here; a throwaway module requiring the exact version builds
  # the same packages with the same dependency versions (the module's own go.mod, checked against the checksum
  # database as usual).
  printf 'module nydus-ts.local/p2p-build\n\ngo 1.20\n\nrequire %s %s\n' "$module" "$version" >"$dir/build/go.mod"
  local targets=() p
  for p in $pkgs; do targets+=("$module/$p"); done
  local log="$dir/build/build.log"
  if ! (cd "$dir/build" && CGO_ENABLED=1 GOFLAGS=-buildvcs=false nice -n 10 "$GO" build -mod=mod -o "$dir/bin/" "${targets[@]}") >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "building $module@$version failed (log: $log)"
  fi
  for p in $pkgs; do
    [ -x "$dir/bin/$(basename "$p")" ] || die "$name $version: $(basename "$p") missing after the build"
  done
  printf '%s %s\n' "$module" "$version" >"$marker"
  say "$name $version: installed"
}

install_engine dragonfly "$DRAGONFLY_MODULE" "$DRAGONFLY_VERSION" "$DRAGONFLY_CMDS"
install_engine kraken "$KRAKEN_MODULE" "$KRAKEN_VERSION" "$KRAKEN_CMDS"
