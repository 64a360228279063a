# vault-plugin-secrets-cisco-s3
SHELL      := /bin/bash
VERSION    ?= v0.1.0-dev
PLUGIN     := vault-plugin-secrets-cisco-s3
LDFLAGS    := -X vault-plugin-secrets-cisco-s3/backend.Version=$(VERSION)
GO         ?= go

.PHONY: build test test-unit test-rules test-e2e soak dev fmt lint bench fuzz clean

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/$(PLUGIN) ./cmd/$(PLUGIN)
	$(GO) build -trimpath -o bin/cisco-s3-sim ./cmd/cisco-s3-sim

# Everything CI runs.
test: lint test-unit test-rules test-e2e

test-unit:
	$(GO) test -race -count=1 ./...

# The alert rules and their unit tests (promtool: Debian package prometheus).
test-rules:
	promtool check rules deploy/prometheus/cisco-s3-alerts.yml
	cd deploy/prometheus && promtool test rules cisco-s3-alerts_test.yml

# The randomized sequence test at volume: 100,000 histories (make test runs
# 1,000). A failure prints its seed; replay it with -sequence.seed=N.
soak:
	$(GO) test -count=1 -timeout 0 -run 'TestSequence$$' ./backend/ -sequence.histories=100000

# The end-to-end suite: a real Vault (built once into .cache/), the vault CLI
# and Vault Agent, on loopback and free ports.
test-e2e: build
	VAULT_BIN=$$(scripts/build-vault.sh) $(GO) test -tags e2e -count=1 -timeout 30m -v ./scripts/e2e/

dev: build
	scripts/dev.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Benchmarks with their baselines, and creds against KV v2 in a real Vault.
bench: build
	scripts/bench.sh

fuzz:
	@for target in FuzzParseRotateReply FuzzParseKeyCreationDate FuzzParseDataPath FuzzValidateURL FuzzParseRotationSchedule; do \
	  echo "== $$target"; $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime 60s ./backend/ || exit 1; \
	done

clean:
	rm -rf bin
