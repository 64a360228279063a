#!/usr/bin/env bash
# test-compat.sh runs the dev-server scenarios of the end-to-end suite
# (TestDevServer), and the Agent pickup checks (TestAgentPickup, as the
# agent is part of each release), against every Vault that has a recipe in
# scripts/vault/, building each once into .cache/, and against OpenBao when
# it is given one: BAO_BIN (a bao binary), or BAO_SRC (OpenBao's source, a
# git repository or mirror, built by scripts/build-bao.sh at BAO_VERSION,
# default 2.6.2). It prints a table. make test-compat runs it after packing
# the release zips the suite installs; make test-openbao runs OpenBao alone
# (OPENBAO_ONLY=1).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
logs="$root/.cache/compat"
mkdir -p "$logs"
results=()

# run_suite LABEL BINARY LOG runs the two tests against BINARY, as vault or
# bao alike: the suite sets both VAULT_* and BAO_* variables.
run_suite() {
  local label=$1 bin=$2 log=$3
  echo "== $label: TestDevServer and TestAgentPickup (log: .cache/compat/$log.log)"
  if VAULT_BIN="$bin" E2E_RELEASE="$root/bin/release" \
      go test -tags e2e -count=1 -timeout 20m -v -run '^(TestDevServer|TestAgentPickup)$' ./scripts/e2e/ >"$logs/$log.log" 2>&1; then
    results+=("| $label | pass | $(date -u +%Y-%m-%d) |")
  else
    failed=$(grep -E -m3 -- '--- FAIL|^\s+\S+_test.go:[0-9]+:' "$logs/$log.log" | tr -s ' \t' ' ' | paste -sd ';' | cut -c1-200)
    results+=("| $label | FAIL: $failed | $(date -u +%Y-%m-%d) |")
  fi
}

if [ -z "${OPENBAO_ONLY:-}" ]; then
  for recipe in $(ls -d scripts/vault/*/ | sort -V); do
    v=$(basename "$recipe")
    run_suite "Vault $v" "$(scripts/build-vault.sh "$v")" "$v"
  done
fi

bao=${BAO_BIN:-}
if [ -z "$bao" ] && [ -n "${BAO_SRC:-}" ]; then
  bao=$(scripts/build-bao.sh "$BAO_SRC" "${BAO_VERSION:-2.6.2}")
fi
if [ -n "$bao" ]; then
  bao_version=$("$bao" version | sed -n 's/^OpenBao v\([^ ]*\).*/\1/p')
  run_suite "OpenBao ${bao_version:-?}" "$bao" "openbao-${bao_version:-unknown}"
else
  echo "OpenBao: not run. Give a bao binary (BAO_BIN=/path/to/bao) or OpenBao's source (BAO_SRC=/path/to/openbao, a git"
  echo "repository or mirror; scripts/build-bao.sh builds its tag v\${BAO_VERSION:-2.6.2} into .cache/)."
fi

if [ ${#results[@]} -gt 0 ]; then
  echo
  echo "| server | TestDevServer, TestAgentPickup | date |"
  echo "|---|---|---|"
  printf '%s\n' "${results[@]}"
fi
