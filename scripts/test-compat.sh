#!/usr/bin/env bash
# test-compat.sh runs the dev-server scenarios of the end-to-end suite
# (TestDevServer), and the Vault Agent pickup checks (TestAgentPickup, as
# the agent is part of each release), against every Vault that has a recipe
# in scripts/vault/,
# building each once into .cache/, and prints a table. make test-compat runs
# it after packing the release zips the suite installs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
logs="$root/.cache/compat"
mkdir -p "$logs"
results=()
for recipe in $(ls -d scripts/vault/*/ | sort -V); do
  v=$(basename "$recipe")
  bin=$(scripts/build-vault.sh "$v")
  echo "== Vault $v: TestDevServer and TestAgentPickup (log: .cache/compat/$v.log)"
  if VAULT_BIN="$bin" E2E_RELEASE="$root/bin/release" \
      go test -tags e2e -count=1 -timeout 20m -v -run '^(TestDevServer|TestAgentPickup)$' ./scripts/e2e/ >"$logs/$v.log" 2>&1; then
    results+=("| $v | pass |")
  else
    failed=$(grep -E -m3 -- '--- FAIL|^\s+\S+_test.go:[0-9]+:' "$logs/$v.log" | tr -s ' \t' ' ' | paste -sd ';' | cut -c1-200)
    results+=("| $v | FAIL: $failed |")
  fi
done
echo
echo "| Vault | TestDevServer, TestAgentPickup |"
echo "|---|---|"
printf '%s\n' "${results[@]}"
