#!/usr/bin/env bash
# Runs one npm end-to-end suite for ctest: exit 77 (reported as skipped) when node, the npm
# packages or the test data are missing; LOUPE_REQUIRE_NPM=1 (CI) turns that into a failure.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
suite="$1"
skip() {
  echo "npm e2e $suite: skipped: $1" >&2
  if [ "${LOUPE_REQUIRE_NPM:-0}" = 1 ]; then exit 1; fi
  exit 77
}
command -v node > /dev/null || skip "node is not installed"
[ -d "$here/node_modules/openai" ] && [ -d "$here/node_modules/ollama" ] ||
  skip "npm packages missing: run 'npm ci --prefix tests/npm' (make test does)"
data="${LOUPE_TESTDATA:-../shared/testdata}"
case "$data" in /*) ;; *) [ -d "$data" ] || data="$here/../../$data" ;; esac
[ -f "$data/models/stories260K.gguf" ] || skip "no test data at $data (set LOUPE_TESTDATA)"
export LOUPE_TESTDATA="$(cd "$data" && pwd)"
cd "$here" && exec node --test --test-reporter=spec "$suite"
