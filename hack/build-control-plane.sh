#!/usr/bin/env bash
# Builds kube-apiserver and etcd from the Go module proxy into a cache outside the repo,
# keyed by version, so later runs (and CI on this machine) reuse them. Prints the directory.
#
# Why from source: setup-envtest downloads prebuilt binaries from a bucket this workplace
# cannot reach; the Go module proxy is reachable. k8s.io/kubernetes is not meant to be
# consumed as a module: its go.mod replaces every k8s.io staging module with ./staging/...,
# so a wrapper module must replace each one with its published v0.x twin.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.35.4}"
ETCD_VERSION="${ETCD_VERSION:-3.6.16}"
CACHE_ROOT="${ENTRA_ACCESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/entra-access}"
# Bump RECIPE when the way the binaries are built changes, so stale caches are not reused.
RECIPE=2
OUT="$CACHE_ROOT/control-plane/k8s-v$K8S_VERSION-etcd-v$ETCD_VERSION-r$RECIPE"

if [[ -x "$OUT/kube-apiserver" && -x "$OUT/etcd" ]]; then
  echo "$OUT"
  exit 0
fi

command -v go >/dev/null || { echo "go is required to build kube-apiserver and etcd (or set KUBEBUILDER_ASSETS)" >&2; exit 1; }
mkdir -p "$OUT"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export GOFLAGS="-mod=mod" CGO_ENABLED=0

build_etcd() {
  mkdir -p "$work/etcd" && cd "$work/etcd"
  go mod init local/etcd-build >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >&2
  go build -trimpath -ldflags="-s -w" -o "$OUT/etcd.tmp" go.etcd.io/etcd/server/v3 >&2
  mv "$OUT/etcd.tmp" "$OUT/etcd"
}

build_apiserver() {
  mkdir -p "$work/k8s" && cd "$work/k8s"
  go mod init local/k8s-build >/dev/null 2>&1
  gomod="$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -f "$gomod" ]] || { echo "could not download k8s.io/kubernetes@v$K8S_VERSION" >&2; exit 1; }
  staging_version="v0.${K8S_VERSION#1.}"
  # Each "k8s.io/foo => ./staging/src/k8s.io/foo" becomes "k8s.io/foo => k8s.io/foo v0.X.Y".
  grep -oE 'k8s\.io/[a-z0-9._/-]+ => \./staging/src/k8s\.io/[a-z0-9._/-]+' "$gomod" | awk '{print $1}' | sort -u |
    while read -r mod; do go mod edit -replace "$mod=$mod@$staging_version"; done
  go mod edit -require "k8s.io/kubernetes@v$K8S_VERSION"
  go get "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION" >&2
  # Stamp the version as Kubernetes' own build does, so /version (and clients such as helm that
  # check the server version) see v$K8S_VERSION rather than v0.0.0-master.
  local ldflags="-s -w" pkg major="${K8S_VERSION%%.*}" minor
  minor="${K8S_VERSION#*.}"; minor="${minor%%.*}"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  go build -trimpath -ldflags="$ldflags" -o "$OUT/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver >&2
  mv "$OUT/kube-apiserver.tmp" "$OUT/kube-apiserver"
}

[[ -x "$OUT/etcd" ]] || (build_etcd)
[[ -x "$OUT/kube-apiserver" ]] || (build_apiserver)
echo "$OUT"
