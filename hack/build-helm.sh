#!/usr/bin/env bash
# Builds the helm CLI from the Go module proxy into a cache outside the repo, keyed by version,
# and prints the binary's path. HELM_BIN, when set, is used instead (an installed helm).
set -euo pipefail

if [[ -n "${HELM_BIN:-}" ]]; then
  echo "$HELM_BIN"
  exit 0
fi
HELM_VERSION="${HELM_VERSION:-4.3.1}"
CACHE_ROOT="${ENTRA_ACCESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/entra-access}"
OUT="$CACHE_ROOT/helm/v$HELM_VERSION"
if [[ -x "$OUT/helm" ]]; then
  echo "$OUT/helm"
  exit 0
fi
command -v go >/dev/null || { echo "go is required to build helm (or set HELM_BIN)" >&2; exit 1; }
mkdir -p "$OUT"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
export GOFLAGS="-mod=mod" CGO_ENABLED=0
major="${HELM_VERSION%%.*}"
go mod init local/helm-build >/dev/null 2>&1
go get "helm.sh/helm/v$major@v$HELM_VERSION" >&2
# Stamp the version as helm's own Makefile does, so `helm version` tells the truth.
go build -trimpath -ldflags="-s -w -X helm.sh/helm/v$major/internal/version.version=v$HELM_VERSION" \
  -o "$OUT/helm.tmp" "helm.sh/helm/v$major/cmd/helm" >&2
mv "$OUT/helm.tmp" "$OUT/helm"
echo "$OUT/helm"
