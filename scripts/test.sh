#!/usr/bin/env bash
# The whole test suite: lint (with module boundaries), typecheck, unit, integration and end-to-end
# tests. Integration and e2e tests need PostgreSQL and Redis (scripts/ensure-services.sh starts them)
# and create their own databases and queue prefixes.
set -uo pipefail
cd "$(dirname "$0")/.."
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false FORCE_COLOR=0
report=$(mktemp -d)
status=0

step() { echo; echo "== $*"; }

step "lint + typecheck (nx, every project)"
# In CI every target runs afresh; locally Nx's cache skips what has not changed.
nx_cache=(); [ "${CI:-}" = true ] && nx_cache=(--skip-nx-cache)
npx nx run-many -t lint typecheck --parallel=2 --outputStyle=static "${nx_cache[@]}" || status=1

step "unit tests"
npx jest -c jest.unit.config.cjs --json --outputFile="$report/unit.json" || status=1

step "integration tests (real PostgreSQL and Redis)"
npx jest -c jest.integration.config.cjs --runInBand --json --outputFile="$report/integration.json" || status=1

step "end-to-end tests (API and worker processes, real Fashion-MNIST; two files at a time, see jest.e2e.config.cjs)"
npx jest -c jest.e2e.config.cjs --json --outputFile="$report/e2e.json" || status=1

# One closing line over every jest run: "N passed, N failed".
node -e '
  const fs = require("fs");
  let passed = 0, failed = 0;
  for (const f of ["unit", "integration", "e2e"]) {
    const file = process.argv[1] + "/" + f + ".json";
    if (!fs.existsSync(file)) { failed += 1; console.log(f + ": no report (the run did not start)"); continue; }
    const r = JSON.parse(fs.readFileSync(file, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests + r.numRuntimeErrorTestSuites;
    console.log(f + ": " + r.numPassedTests + " passed, " + r.numFailedTests + " failed");
  }
  console.log();
  console.log(passed + " passed, " + failed + " failed");
' "$report"
rm -rf "$report"
exit $status
