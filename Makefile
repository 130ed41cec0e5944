# entra-access — every tool runs from node_modules/.bin on the Node 24 pinned in package.json
# (the `node` devDependency), so a fresh machine needs only npm, Go and make.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
# The project's own tools first on PATH, so every `node` (and every tool's `#!/usr/bin/env node`)
# is the pinned Node 24, not the system one.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: all test deps lint typecheck unit integration control-plane build clean demo bench test-reliability test-clients

all: test

## test: every check and every test, as CI runs it (lint, types, helm lint, unit, integration
## incl. the chart tests, the client suite, leftovers)
test: deps lint typecheck control-plane helm-lint
	bash hack/run-tests.sh --project unit --project integration --project controller
	bash hack/run-tests.sh --project clients

## test-clients: docs/aks-guide.md's connection snippets run as written with each language's real
## client libraries (installed on first use into ~/.cache/entra-access/clients), as a pod's app
test-clients: deps control-plane
	bash hack/run-tests.sh --project clients

## test-reliability: faults, fuzzing, load, tenant isolation and secret scanning (slow; CI runs it too)
test-reliability: deps control-plane
	bash hack/run-tests.sh --project reliability

## demo: the whole loop on a local default (control plane, PostgreSQL, Azure emulator, the operator,
## a workload getting its identity and logging in with a token), then everything stopped
demo: deps control-plane
	bash hack/run-demo.sh

## bench: webhook latency/throughput, memory and controller cost; writes bench/results.json and
## the table in docs/benchmarks.md (sizes: see bench/README.md)
bench: deps control-plane
	npm run bench

## deps: install the exact dependency tree from package-lock.json (Node 24 included)
deps: node_modules/.deps-stamp
node_modules/.deps-stamp: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

lint: deps
	biome ci .

typecheck: deps
	tsc -p tsconfig.json --noEmit

unit: deps
	bash hack/run-tests.sh --project unit

integration: deps control-plane
	bash hack/run-tests.sh --project integration --project controller

## control-plane: build (once, cached outside the repo) kube-apiserver and etcd unless provided
control-plane:
	@if [[ -z "$${KUBEBUILDER_ASSETS:-}" && -z "$${TEST_ASSET_KUBE_APISERVER:-}" ]]; then bash hack/build-control-plane.sh >/dev/null; fi

## helm: the real helm CLI, built once from its Go module into a cache outside the repo
## (hack/build-helm.sh; HELM_BIN overrides). Recursive `=`: only built when a helm target runs.
HELM = $(shell bash hack/build-helm.sh)
CHART := charts/entra-access
.PHONY: helm-lint helm-test sync-chart-crds

## helm-lint: helm lint --strict with the default values and each values file in the chart's ci/
helm-lint:
	@helm="$(HELM)"; [[ -x "$$helm" ]] || { echo "helm-lint: no helm binary (see hack/build-helm.sh)" >&2; exit 1; }; \
	"$$helm" lint --strict $(CHART); \
	for values in $(CHART)/ci/*.yaml; do "$$helm" lint --strict $(CHART) --values "$$values"; done

## helm-test: render, validate and install the chart into the harness kube-apiserver
helm-test: deps control-plane
	bash hack/run-tests.sh --project integration test/integration/helm-chart.test.ts

## sync-chart-crds: copy crds/*.yaml (the one source) into the chart; a test fails if they differ
sync-chart-crds:
	rm -f $(CHART)/crds/*.yaml
	cp crds/*.yaml $(CHART)/crds/

build: deps
	tsc -p tsconfig.build.json

clean:
	rm -rf dist coverage
