#!/usr/bin/env bash
# Idempotent setup for a Debian 12 machine (root, as CI is) and for repeat runs: installs only
# what is missing, rebuilds only what is stale, and never touches the network when nothing is missing.
# Usage: bash scripts/setup.sh   (or npm run setup)
set -euo pipefail

# Debian packages: build deps of the native addon, then tools the tests use. Add yours here.
APT_PACKAGES="librust-blake3-dev librust-libc-dev liblz4-dev libzstd-dev pkg-config fuse3 attr erofs-utils squashfs-tools squashfuse tree prometheus python3-venv"
# build deps of the reference peers (step 6, scripts/peers.sh): C/C++ and make, perl (vendored OpenSSL), cmake (zlib-ng)
APT_PACKAGES="$APT_PACKAGES build-essential cmake perl"
# registries for the registry backend and nydusify tests (issue 11): a Distribution server, OCI image tools, htpasswd,
# zstd, and the openssl CLI (self-signed certificates for the TLS tests of test/storage/backend/ and the JWT signing
# certificate of the token-auth registry tests)
APT_PACKAGES="$APT_PACKAGES docker-registry skopeo umoci apache2-utils zstd openssl"
# benchmarks: a Debian root filesystem for bench/python-start (mmdebstrap, from the configured mirror)
APT_PACKAGES="$APT_PACKAGES mmdebstrap"
# run-time companions of the real P2P engines (step 7, scripts/p2p-peers.sh): Dragonfly's manager keeps its state in
# MariaDB and its job queue in Redis; Kraken's tracker keeps peers in Redis and every Kraken server listens through nginx
APT_PACKAGES="$APT_PACKAGES mariadb-server redis-server nginx-light"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ADDON="native/nydus-native.linux-x64-gnu.node"

step() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# 1. Debian packages
missing=()
for pkg in $APT_PACKAGES; do
  status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
  [ "$status" = installed ] || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  step "apt packages: all present"
elif [ "$(id -u)" -ne 0 ]; then
  die "these Debian packages are missing and only root can install them: ${missing[*]}
  (as root: apt-get install -y --no-install-recommends ${missing[*]})"
else
  step "apt packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null \
    || die "apt-get install failed for: ${missing[*]}"
fi

# 2. npm dependencies (npm writes node_modules/.package-lock.json on every install)
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "npm ci"
  # the lock lists every platform's optional packages (@napi-rs/*-darwin-*, ...), which npm ci insists on;
  # regenerate it with `npm install --package-lock-only`, never by hand
  log="$(mktemp)"
  if ! npm ci --no-audit --no-fund --loglevel=error >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    die "npm ci failed (is package-lock.json in sync with package.json?)"
  fi
  rm -f "$log"
else
  step "node_modules: up to date"
fi

# 3. native addon, rebuilt when any of its inputs is newer than the .node file
cargo_bin="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin"
if [ ! -f "$ADDON" ] || [ -n "$(find native/src native/Cargo.toml native/Cargo.lock native/build.rs native/.cargo \
      -newer "$ADDON" -print -quit 2>/dev/null)" ]; then
  PATH="$cargo_bin:$PATH" command -v cargo >/dev/null \
    || die "cargo not found in $cargo_bin or PATH (install Rust with rustup)"
  step "native addon: building $ADDON"
  log="$(mktemp)"
  if ! npm run --silent build:native >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    die "native build failed"
  fi
  rm -f "$log"
  # cargo may leave the output's mtime unchanged when nothing needed recompiling.
  touch "$ADDON"
else
  step "native addon: up to date"
fi

# 4. schemathesis (PyPI), for test/api/schemathesis.test.ts. Debian's Python is externally managed, so it lives in a
# venv of its own under a cache directory this script owns; `schemathesis` there links to the pinned version's venv,
# which is complete only once its marker exists (an interrupted install is redone, never half-used).
SCHEMATHESIS_VERSION=4.32.5
TOOLS_CACHE="${NYDUS_TS_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/nydus-ts}"
st_venv="$TOOLS_CACHE/schemathesis-$SCHEMATHESIS_VERSION"
if [ -f "$st_venv/.installed" ] && [ -x "$st_venv/bin/st" ]; then
  step "schemathesis $SCHEMATHESIS_VERSION: present"
else
  step "schemathesis $SCHEMATHESIS_VERSION: installing into $st_venv"
  rm -rf "$st_venv"
  mkdir -p "$TOOLS_CACHE"
  log="$(mktemp)"
  if ! { python3 -m venv "$st_venv" && "$st_venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    die "installing schemathesis $SCHEMATHESIS_VERSION from PyPI failed"
  fi
  rm -f "$log"
  touch "$st_venv/.installed"
fi
ln -sfn "$st_venv" "$TOOLS_CACHE/schemathesis"

# 5. TypeScript (tsc emits even with type errors; its exit status reports them)
step "tsc"
if ! npx tsc -p tsconfig.json; then
  die "TypeScript reported errors (JS was still emitted into dist/)"
fi

# 6. reference peers: the real nydusd, nydus-image and nydusctl (crate nydus-rs) the differential tests and benchmarks
# run side by side with ours; built once into ~/.cargo/bin, a no-op when present (also `npm run peers`)
bash "$ROOT/scripts/peers.sh" || die "installing the reference peers failed"

# 7. the real P2P engines for the proxy, Kraken and preheat tests: Dragonfly and Kraken, Go programs built from the Go
# module proxy at pinned versions into ~/.cache/nydus-ts/p2p, a no-op when present
bash "$ROOT/scripts/p2p-peers.sh" || die "installing the P2P engines (Dragonfly, Kraken) failed"

step "done"
