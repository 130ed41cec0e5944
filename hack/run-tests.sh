#!/usr/bin/env bash
# Runs vitest with the given arguments inside a private TMPDIR, then fails if the run left a
# harness process or a temporary file behind. The private directory keeps the check to this run,
# so a harness started elsewhere on the machine (another checkout, `make demo`) is not counted.
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
run_dir="$(mktemp -d "${TMPDIR:-/tmp}/entra-access-run.XXXXXX")"
# PostgreSQL runs as the postgres OS user under root and must reach its data directory in here.
chmod 755 "$run_dir"
TMPDIR="$run_dir" vitest run "$@"
status=$?
bash "$repo/hack/check-leftovers.sh" "$run_dir" "$repo" || status=1
rmdir "$run_dir" 2>/dev/null || true
exit "$status"
