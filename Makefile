# entra-access — every tool runs from node_modules/.bin on the Node 24 pinned in package.json
# (the `node` devDependency), so a fresh machine needs only npm, Go and make.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
# The project's own tools first on PATH, so every `node` (and every tool's `#!/usr/bin/env node`)
# is the pinned Node 24, not the system one.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: all test deps lint typecheck unit integration control-plane build clean

all: test

## test: every check and every test, as CI runs it (lint, types, unit, integration, leftovers)
test: deps lint typecheck control-plane
	bash hack/run-tests.sh

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

build: deps
	tsc -p tsconfig.build.json

clean:
	rm -rf dist coverage
