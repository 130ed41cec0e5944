#!/usr/bin/env bash
# usage: check-leftovers.sh RUN_DIR REPO
# Fails when a test run left a process or anything inside RUN_DIR. A process counts when its
# command line names RUN_DIR, or when it runs a harness script of REPO with TMPDIR=RUN_DIR in its
# environment (the guardian names no directory): so runs side by side in one checkout (`make demo`
# while `make test` runs) do not count each other's processes. The guardian reaps leftovers once
# the runner has gone, so give it a few seconds first.
set -uo pipefail
run_dir="$1"
repo="$2"

ours() {
  local pid="$1" cmd="$2"
  [[ "$cmd" == *"$run_dir"* ]] && return 0
  tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "TMPDIR=$run_dir"
}

for _ in $(seq 1 50); do
  procs=""
  while read -r pid cmd; do
    [[ -z "$pid" || "$cmd" == *pgrep* || "$cmd" == *check-leftovers* ]] && continue
    ours "$pid" "$cmd" && procs+="$pid $cmd"$'\n'
  done < <(pgrep -af -- "$run_dir|$repo/test/harness/" || true)
  files="$(find "$run_dir" -mindepth 1 -maxdepth 1 2>/dev/null || true)"
  if [[ -z "$procs$files" ]]; then
    echo "leftovers: none (no harness process, nothing left in $run_dir)"
    exit 0
  fi
  sleep 0.2
done
echo "leftovers found after the test run:" >&2
[[ -n "$procs" ]] && printf '%s' "$procs" | sed 's/^/  process: /' >&2
[[ -n "$files" ]] && echo "$files" | sed 's/^/  file: /' >&2
exit 1
