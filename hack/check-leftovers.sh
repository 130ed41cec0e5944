#!/usr/bin/env bash
# usage: check-leftovers.sh RUN_DIR REPO
# Fails when a test run left a process (one whose command line names RUN_DIR, or a harness
# script of REPO) or anything inside RUN_DIR. The guardian reaps leftovers once the runner has
# gone, so give it a few seconds first.
set -uo pipefail
run_dir="$1"
repo="$2"
for _ in $(seq 1 50); do
  procs="$(pgrep -af -- "$run_dir|$repo/test/harness/" | grep -v -e pgrep -e check-leftovers || true)"
  files="$(find "$run_dir" -mindepth 1 -maxdepth 1 2>/dev/null || true)"
  if [[ -z "$procs$files" ]]; then
    echo "leftovers: none (no harness process, nothing left in $run_dir)"
    exit 0
  fi
  sleep 0.2
done
echo "leftovers found after the test run:" >&2
[[ -n "$procs" ]] && echo "$procs" | sed 's/^/  process: /' >&2
[[ -n "$files" ]] && echo "$files" | sed 's/^/  file: /' >&2
exit 1
