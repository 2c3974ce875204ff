#!/usr/bin/env bash
# Installs the reference Nydus tools ("peers": nydusd, nydus-image, nydusctl of the crate nydus-rs) into
# ${CARGO_HOME:-~/.cargo}/bin, where test/helpers/peers.ts finds them for the differential suites and the benchmarks.
# Idempotent: when the three binaries run and cargo's install record names the pinned version, it does nothing and
# never touches the network. The build takes ~15 minutes on two cores (once; cargo keeps the binaries).
# Usage: bash scripts/peers.sh   (or npm run peers); scripts/setup.sh runs it as its step 5.
# Its Debian build dependencies (a C/C++ toolchain and make for zstd-sys/lz4-sys, perl for the vendored OpenSSL,
# cmake for libz-sys' zlib-ng) are in APT_PACKAGES of scripts/setup.sh.
set -euo pipefail

# 2.2.0 is the newest nydus-rs on crates.io (later Nydus releases were not published there); keep
# PEER_VERSION in test/helpers/peers.ts in step.
PEERS_CRATE=nydus-rs
PEERS_VERSION=2.2.0

cargo_bin="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin"
peer() { printf 'peers: %s\n' "$*"; }
peer_die() { printf 'peers: error: %s\n' "$*" >&2; exit 1; }

peers_present() {
  local b
  for b in nydusd nydus-image nydusctl; do
    [ -x "$cargo_bin/$b" ] && "$cargo_bin/$b" --version >/dev/null 2>&1 || return 1
  done
  # the binaries print "Version: unknown" (a crate build has no git tag), so the version is cargo's record
  local installed
  installed="$("$cargo_bin/cargo" install --list 2>/dev/null)" || return 1
  grep -qx "$PEERS_CRATE v$PEERS_VERSION:" <<<"$installed"
}

if peers_present; then
  peer "$PEERS_CRATE $PEERS_VERSION: present in $cargo_bin"
else
  [ -x "$cargo_bin/cargo" ] || peer_die "cargo not found in $cargo_bin (install Rust with rustup)"
  for tool in cc c++ make perl cmake; do
    command -v "$tool" >/dev/null || peer_die "'$tool' is missing, needed to build $PEERS_CRATE (run npm run setup as root, which installs the Debian packages)"
  done
  peer "$PEERS_CRATE $PEERS_VERSION: building into $cargo_bin (about 15 minutes)"
  log="$(mktemp)"
  # --locked: the crate's own Cargo.lock, the dependency versions 2.2.0 was released and tested with
  if ! PATH="$cargo_bin:$PATH" cargo install "$PEERS_CRATE@$PEERS_VERSION" --locked >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    rm -f "$log"
    peer_die "cargo install $PEERS_CRATE@$PEERS_VERSION --locked failed"
  fi
  rm -f "$log"
  peers_present || peer_die "$PEERS_CRATE $PEERS_VERSION installed but its binaries do not run from $cargo_bin"
  peer "$PEERS_CRATE $PEERS_VERSION: installed"
fi
