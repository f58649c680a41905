#!/usr/bin/env bash
# The main job: set up, build the executable and the Go host (Vault's plugin client),
# then issue, use, renew, rotate and revoke a PostgreSQL credential end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node scripts/build.mjs
bash scripts/conformance-build.sh
exec npx tsx scripts/demo.ts
