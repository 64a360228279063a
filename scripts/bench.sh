#!/usr/bin/env bash
# make bench: the Go benchmarks with their baselines, then creds reads
# against builtin KV v2 through a real Vault dev server.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib.sh

echo "== Go benchmarks ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
go test -run '^$' -bench . -benchmem -benchtime "${BENCHTIME:-2s}" -count "${COUNT:-1}" ./backend/

echo "== Throughput through a real Vault"
go build -o bin/cisco-s3-load ./cmd/cisco-s3-load
work=$(mktemp -d "${TMPDIR:-/tmp}/cisco-s3-bench.XXXXXX")
pids=()
trap 'stop_pids "${pids[@]}"; rm -rf "$work"' EXIT INT TERM
# The version make build stamped: the registration must name it.
version=$(bin/vault-plugin-secrets-cisco-s3 -version)
start_dev_stack "$work" "$version" -no-rate-limits
vault_bin=$VAULT_BIN
"$vault_bin" write cisco-s3/config/demo provider=umbrella client_id=demo-client client_secret=demo-secret \
  api_url="$SIM_URL/admin/v2" token_url="$SIM_URL/auth/v2/token" sts_url="$SIM_URL" data_path="$SIM_DATA_PATH" >/dev/null
"$vault_bin" write -f cisco-s3/rotate/demo >/dev/null
# A KV v2 secret about the size of the creds response's data.
"$vault_bin" kv put -mount=secret bench \
  access_key_id=AKIAABCDEFGHIJKLMNOP secret_access_key=wJalrXUtnFEMIK7MDENGbPxRfiCYzEXAMPLEKEY0 \
  old_access_key_id=AKIAQRSTUVWXYZ234567 key_creation_date=2026-01-10T12:00:00Z \
  last_vault_rotation=2026-01-10T12:00:00Z expires_at=2026-04-10T12:00:00Z version=3 key_state=current \
  ttl=5184000 rotation_period=5184000 next_vault_rotation=2026-03-11T12:00:00Z \
  bucket=cisco-managed-us-west-2 region=us-west-2 prefix=1234567_0123456789abcdef0123456789abcdef01234567 \
  data_path=s3://cisco-managed-us-west-2/1234567_0123456789abcdef0123456789abcdef01234567 \
  bucket_arn=arn:aws:s3:::cisco-managed-us-west-2 disable_automated_rotation=false >/dev/null
bin/cisco-s3-load -creds cisco-s3/creds/demo -kv secret/data/bench \
  -goroutines "${GOROUTINES:-8}" -rounds "${ROUNDS:-6}" -duration "${ROUND:-3s}"

echo "== Plugin memory with 10,000 organizations"
bin/cisco-s3-load -seed "${ORGS:-10000}" -goroutines 8 -plugin-match "$work/plugins/"
