#!/usr/bin/env bash
# Install everything the demo and the test suite need on a Debian machine with Node 20 or later
# (it runs npm; the executable, the build and the tests use the Node 24 that npm ci installs,
# see scripts/sea-node.mjs):
# Debian packages for the Go conformance host (Vault's real plugin client) and SoftHSM2,
# then the npm dependencies. Safe to run again; does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(
  golang-go                               # builds the conformance host
  golang-github-hashicorp-go-plugin-dev   # HashiCorp's go-plugin: the client Vault uses
  golang-google-grpc-dev
  golang-github-golang-protobuf-1-3-dev
  golang-github-lib-pq-dev                # lets the host check that issued credentials log in
  protoc-gen-go-1-3
  protobuf-compiler
  softhsm2                                # PKCS#11 token for managed-key tests
  openssl
)
missing=()
for p in "${DEBS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    SUDO=sudo
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then echo "setup: Node.js 20 or later is required (found $(node --version))" >&2; exit 1; fi

# npm ci when the lock file changed since the last install.
stamp=node_modules/.vpt-installed
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  echo "setup: installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi
