#!/usr/bin/env bash
# find-vault.sh prints the path of the Vault server that make dev and the
# end-to-end suite use, and says on stderr which one and why:
#   1. VAULT_BIN, when set (it must be a supported version);
#   2. a vault on PATH, when its version is supported;
#   3. otherwise the pinned Vault, built once into .cache/ by build-vault.sh.
# Supported: the oldest version make test-compat passed, and later.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
oldest=1.19.0
pinned=1.21.0

# version_of BIN prints BIN's Vault version (1.20.4), or nothing.
version_of() {
  "$1" version 2>/dev/null | sed -n 's/^Vault v\([0-9][0-9.]*\).*/\1/p' | head -1
}

# supported VERSION succeeds when VERSION is the oldest supported or later.
supported() {
  [ "$(printf '%s\n%s\n' "$oldest" "$1" | sort -V | head -1)" = "$oldest" ]
}

if [ -n "${VAULT_BIN:-}" ]; then
  v=$(version_of "$VAULT_BIN")
  if [ -z "$v" ]; then
    echo "VAULT_BIN=$VAULT_BIN is not a Vault binary (vault version gave nothing); unset it to use a vault on PATH or the pinned build" >&2
    exit 1
  fi
  if ! supported "$v"; then
    echo "VAULT_BIN=$VAULT_BIN is Vault $v; the oldest supported is $oldest: point it at a newer one, or unset it" >&2
    exit 1
  fi
  echo "using Vault $v from VAULT_BIN ($VAULT_BIN)" >&2
  echo "$VAULT_BIN"
  exit 0
fi

if path=$(command -v vault 2>/dev/null); then
  v=$(version_of "$path")
  if [ -n "$v" ] && supported "$v"; then
    echo "using Vault $v found on PATH ($path)" >&2
    echo "$path"
    exit 0
  fi
  echo "the vault on PATH ($path) is ${v:+Vault $v, }not a supported version (oldest: $oldest); using the pinned Vault $pinned" >&2
else
  echo "no VAULT_BIN and no vault on PATH; using the pinned Vault $pinned" >&2
fi
exec "$root/scripts/build-vault.sh" "$pinned"
