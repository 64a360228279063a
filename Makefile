# vault-plugin-secrets-cisco-s3
SHELL      := /bin/bash
VERSION    ?= v0.2.0-dev
PLUGIN     := vault-plugin-secrets-cisco-s3
# make build stamps VERSION as it is only on the commit that its tag
# names; anywhere else it stamps a dev version of it with the commit, so
# that a binary never claims a release it is not.
# A tree with uncommitted changes is not the tagged commit either.
COMMIT     := $(or $(shell git rev-parse --short=12 HEAD 2>/dev/null),unknown)
TAGGED     := $(shell git tag --points-at HEAD 2>/dev/null | grep -Fx -- '$(VERSION)')
DIRTY      := $(shell git diff --quiet HEAD 2>/dev/null || echo .dirty)
STAMP      := $(if $(and $(TAGGED),$(if $(DIRTY),,clean)),$(VERSION),$(VERSION:-dev=)-dev+$(COMMIT)$(DIRTY))
LDFLAGS    := -X vault-plugin-secrets-cisco-s3/backend.Version=$(STAMP)
GO         ?= go

.PHONY: help build release deps test test-unit test-rules test-release test-e2e test-compat test-openbao soak dev fmt lint bench bench-failover fuzz clean

build: ## the plugin (stamped VERSION on its tagged commit, else VERSION-dev+commit) and the simulator, into bin/
	@echo '$(VERSION)' | grep -Eqx 'v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?' || \
	  { echo "VERSION '$(VERSION)' is not vX.Y.Z or vX.Y.Z-pre (no +metadata: make build adds its own)"; exit 1; }
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/$(PLUGIN) ./cmd/$(PLUGIN)
	$(GO) build -trimpath -o bin/cisco-s3-sim ./cmd/cisco-s3-sim

# Zips for every platform and SHA256SUMS, in bin/release/X.Y.Z/ (the
# simulator in its cisco-s3-sim/ folder). A final version needs its
# CHANGELOG.md section.
release: ## make release VERSION=vX.Y.Z: the zips and SHA256SUMS of a release, in bin/release/
	@if [ "$(origin VERSION)" != "command line" ] && [ "$(origin VERSION)" != "environment" ]; then \
	  echo "usage: make release VERSION=vX.Y.Z"; exit 1; fi
	$(GO) run ./scripts/release -version $(VERSION)

# Everything CI runs. deps first, so that a missing tool stops it at once.
test: deps lint test-unit test-rules test-release test-e2e ## everything CI runs: deps, lint, test-unit, test-rules, test-release, test-e2e

# promtool, prometheus and Debian's AWS CLI, installed with apt-get when
# missing.
deps: ## installs the Debian packages the tests need, when missing
	scripts/deps.sh

test-unit: ## the unit tests under -race
	$(GO) test -race -count=1 ./...

# The alert rules and their unit tests (promtool: Debian package prometheus).
test-rules: deps ## promtool checks and tests the Prometheus alert rules
	promtool check rules deploy/prometheus/cisco-s3-alerts.yml
	cd deploy/prometheus && promtool test rules cisco-s3-alerts_test.yml

# The randomized sequence test at volume: 100,000 histories (make test runs
# 1,000). A failure prints its seed; replay it with -sequence.seed=N.
# Run in the package folder, so that the test's coverage line is printed
# when it passes too. Histories wait (real HTTP, store retries, probes) more
# than they compute, so 32 run at once: 100,000 take about half an hour on
# 2 cores, against two hours 4 at a time.
SOAK_HISTORIES ?= 100000
soak: ## the sequence test with SOAK_HISTORIES random histories (100,000)
	cd backend && $(GO) test -count=1 -timeout 0 -parallel 32 -run 'TestSequence$$' -sequence.histories=$(SOAK_HISTORIES)

# Two builds of the same source give the same release bytes.
test-release: ## two builds of one commit give the same release bytes
	$(GO) test -tags release -count=1 -timeout 30m ./scripts/release/

# The end-to-end suite: a real Vault (VAULT_BIN, a supported vault on PATH,
# or the pinned one built once into .cache/), the vault CLI and Vault Agent,
# on loopback and free ports. It installs the plugin from release zips of
# two versions, to upgrade from one to the other. It runs Debian's AWS CLI
# (AWS_CLI), whatever else is on PATH.
E2E_VERSIONS := v0.1.0-e2e v0.1.1-e2e
AWS_CLI ?= /usr/bin/aws
test-e2e: deps build ## the end-to-end suite against a real Vault
	for v in $(E2E_VERSIONS); do $(GO) run ./scripts/release -version $$v -platforms linux/amd64 >/dev/null || exit 1; done
	vault_bin=$$(scripts/find-vault.sh) && VAULT_BIN=$$vault_bin E2E_RELEASE=$(CURDIR)/bin/release AWS_CLI=$(AWS_CLI) \
	  $(GO) test -tags e2e -count=1 -timeout 30m -v ./scripts/e2e/

# The dev-server scenarios of the end-to-end suite against every Vault in
# scripts/vault/ (each built once into .cache/); prints a table.
test-compat: build ## the dev-server scenarios against every Vault in scripts/vault/, and OpenBao with BAO_BIN or BAO_SRC
	for v in $(E2E_VERSIONS); do $(GO) run ./scripts/release -version $$v -platforms linux/amd64 >/dev/null || exit 1; done
	scripts/test-compat.sh

# The same against OpenBao alone: BAO_BIN=<bao>, or BAO_SRC=<OpenBao's
# source> (BAO_VERSION, default 2.6.2); without either it says so and exits 0.
test-openbao: build ## the dev-server scenarios against OpenBao (BAO_BIN, or BAO_SRC to build one)
	@if [ -n "$$BAO_BIN$$BAO_SRC" ]; then \
	  for v in $(E2E_VERSIONS); do $(GO) run ./scripts/release -version $$v -platforms linux/amd64 >/dev/null || exit 1; done; \
	fi; \
	OPENBAO_ONLY=1 scripts/test-compat.sh

dev: build ## the simulator and a Vault dev server with the plugin mounted, until Ctrl-C
	scripts/dev.sh

fmt: ## gofmt every Go file
	gofmt -w $$(git ls-files '*.go')

lint: ## check formatting, and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Benchmarks with their baselines, and creds against KV v2 in a real Vault.
bench: build ## benchmarks against their baselines, and creds against KV v2
	scripts/bench.sh

# Failover of a 3-node Raft cluster at FAILOVER_ORGS organizations, with
# creds read through the standbys: prints the figures of docs/testing.md and
# fails when a goal is missed. Not part of make test (about 5 minutes).
FAILOVER_ORGS ?= 10000
bench-failover: build ## failover of a 3-node Raft cluster with FAILOVER_ORGS organizations
	for v in $(E2E_VERSIONS); do $(GO) run ./scripts/release -version $$v -platforms linux/amd64 >/dev/null || exit 1; done
	vault_bin=$$(scripts/find-vault.sh) && VAULT_BIN=$$vault_bin E2E_RELEASE=$(CURDIR)/bin/release FAILOVER_ORGS=$(FAILOVER_ORGS) \
	  $(GO) test -tags e2e -count=1 -timeout 60m -v -run 'TestFailoverAtScale$$' ./scripts/e2e/

# Each target runs in its own package: target:package.
FUZZ_TARGETS := FuzzParseRotateReply:./internal/cisco/ FuzzParseKeyCreationDate:./internal/cisco/ \
	FuzzParseDataPath:./backend/ FuzzValidateURL:./backend/ FuzzParseRotationSchedule:./backend/
fuzz: ## each fuzz target for 60 s
	@for spec in $(FUZZ_TARGETS); do \
	  target=$${spec%%:*}; pkg=$${spec#*:}; \
	  echo "== $$target"; $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime 60s $$pkg || exit 1; \
	done

clean: ## removes bin/
	rm -rf bin

help: ## this list
	@awk -F ':[^#]*## ' '/^[a-z][a-z0-9-]*:.*## / { printf "  make %-15s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
