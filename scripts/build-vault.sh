#!/usr/bin/env bash
# build-vault.sh [VERSION] builds a Vault server from the Go module proxy
# with the pinned recipe in scripts/vault/VERSION (default: the newest one
# the project targets) into an ignored cache folder, once, and prints the
# path of the binary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=${1:-1.21.0}
recipe="$root/scripts/vault/$version"
if [ ! -f "$recipe/go.mod" ]; then
  echo "no recipe for Vault $version in scripts/vault/ (have: $(ls "$root/scripts/vault" | tr '\n' ' '))" >&2
  exit 1
fi
out="$root/.cache/vault-$version/vault"
if [ ! -x "$out" ]; then
  echo "building Vault $version from the Go module proxy into .cache/ (up to 25 minutes on 2 cores, once)..." >&2
  mkdir -p "$(dirname "$out")"
  (cd "$recipe" && go build -trimpath -ldflags "-s -w" -o "$out.tmp" github.com/hashicorp/vault)
  mv "$out.tmp" "$out"
fi
echo "$out"
