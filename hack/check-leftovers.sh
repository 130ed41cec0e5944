#!/usr/bin/env bash
# Fails when a test run left a harness process or temporary directory behind.
# The guardian reaps leftovers once the runner has gone; give it a moment to finish.
set -uo pipefail
tmp="${TMPDIR:-/tmp}"
for _ in $(seq 1 50); do
  procs="$(pgrep -af 'entra-access-(harness|test)-|test/harness/(guardian|azure-emulator/main)\.ts' | grep -v pgrep || true)"
  dirs="$(find "$tmp" -maxdepth 1 -name 'entra-access-*' 2>/dev/null || true)"
  [[ -z "$procs$dirs" ]] && { echo "leftovers: none (no harness process, no temp directory)"; exit 0; }
  sleep 0.2
done
echo "leftovers found after the test run:" >&2
[[ -n "$procs" ]] && echo "$procs" | sed 's/^/  process: /' >&2
[[ -n "$dirs" ]] && echo "$dirs" | sed 's/^/  directory: /' >&2
exit 1
