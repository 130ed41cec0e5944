#!/usr/bin/env bash
# `make demo`: runs hack/demo/demo.ts inside a private TMPDIR, then fails if the demo left a
# harness process or a temporary file behind, as hack/run-tests.sh does for the tests. The
# private directory keeps the check to this run, so a test run elsewhere on the machine is not
# counted.
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
run_dir="$(mktemp -d "${TMPDIR:-/tmp}/entra-access-demo.XXXXXX")"
# PostgreSQL runs as the postgres OS user under root and must reach its data directory in here.
chmod 755 "$run_dir"
TMPDIR="$run_dir" node "$repo/hack/demo/demo.ts"
status=$?
bash "$repo/hack/check-leftovers.sh" "$run_dir" "$repo" || status=1
rmdir "$run_dir" 2>/dev/null || true
exit "$status"
