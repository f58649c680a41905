#!/usr/bin/env bash
# The whole test suite, from a clean checkout: setup, typecheck, build the single
# executable and the Go conformance host, then unit, integration and conformance tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Everything below runs on the Node the executable is made of (scripts/sea-node.mjs), not the
# machine's: the tests of the TypeScript sources then run on the runtime that ships.
PATH="$(dirname "$(node scripts/sea-node-path.mjs)"):$PATH"
export PATH
echo "== node $(node --version) ($(command -v node))"
echo "== typecheck"
npx tsc -p tsconfig.json
echo "== lint and format (biome check: fix with npx biome check --write)"
npx biome check
echo "== build"
node scripts/build.mjs --quiet
bash scripts/conformance-build.sh
# test/vault runs the README's commands against the real Vault named by VAULT_BIN (an absolute
# path is passed on); without one those suites report skipped, never passed.
if [ -n "${VAULT_BIN:-}" ] && [ -x "$VAULT_BIN" ] && [ -f "$VAULT_BIN" ]; then
  VAULT_BIN="$(cd "$(dirname "$VAULT_BIN")" && pwd)/$(basename "$VAULT_BIN")"
  export VAULT_BIN
  echo "== real Vault: $VAULT_BIN ($(HOME=/tmp "$VAULT_BIN" version 2>/dev/null | head -1))"
else
  echo "== real Vault: VAULT_BIN unset or not executable; test/vault is skipped"
fi
echo "== tests"
report=.build/vitest-report.json
rc=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || rc=$?
# One plain closing line for CI: "N passed, N failed". The report also decides the exit
# status: vitest has been seen to exit 0 with failures when writing the JSON report.
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""));
  const failed = r.numFailedTests > 0 || r.numFailedTestSuites > 0 || r.success === false || r.numTotalTests === 0;
  process.exit(failed ? 1 : 0);
' "$report" || rc=1
exit $rc
