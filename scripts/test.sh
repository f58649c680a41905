#!/usr/bin/env bash
# The whole test suite, from a clean checkout: setup, typecheck, build the single
# executable and the Go conformance host, then unit, integration and conformance tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== typecheck"
npx tsc -p tsconfig.json
echo "== build"
node scripts/build.mjs --quiet
bash scripts/conformance-build.sh
echo "== tests"
npx vitest run "$@"
