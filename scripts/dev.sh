#!/usr/bin/env bash
# make dev: the Cisco API simulator plus a Vault dev server with the plugin
# registered, mounted at cisco-s3/, configured and rotated once. Runs in the
# foreground until Ctrl-C, then stops what it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib.sh

version=${VERSION:-v0.1.0-dev}
vault_bin=$(scripts/build-vault.sh)
work=$(mktemp -d "${TMPDIR:-/tmp}/cisco-s3-dev.XXXXXX")
pids=()
cleanup() {
  trap - EXIT INT TERM
  stop_pids "${pids[@]}"
  echo "stopped; logs were in $work"
}
trap cleanup EXIT INT TERM

mkdir -p "$work/plugins"
cp bin/vault-plugin-secrets-cisco-s3 "$work/plugins/"

bin/cisco-s3-sim -addr 127.0.0.1:0 >"$work/sim.out" 2>"$work/sim.log" &
pids+=($!)
sim_url=$(wait_for_line "$work/sim.out" 'listening on ' | sed 's/.*listening on //')

port=$(free_port)
"$vault_bin" server -dev -dev-root-token-id=root -dev-listen-address="127.0.0.1:$port" \
  -dev-plugin-dir="$work/plugins" -log-level=info >"$work/vault.log" 2>&1 &
pids+=($!)
export VAULT_ADDR="http://127.0.0.1:$port" VAULT_TOKEN=root
wait_for_vault "$vault_bin"

sha=$(sha256sum "$work/plugins/vault-plugin-secrets-cisco-s3" | cut -d' ' -f1)
"$vault_bin" plugin register -sha256="$sha" -version="$version" secret vault-plugin-secrets-cisco-s3 >/dev/null
"$vault_bin" secrets enable -path=cisco-s3 -plugin-version="$version" vault-plugin-secrets-cisco-s3 >/dev/null
"$vault_bin" write cisco-s3/config/demo provider=umbrella client_id=demo-client client_secret=demo-secret \
  api_url="$sim_url/admin/v2" token_url="$sim_url/auth/v2/token" \
  data_path=s3://cisco-managed-us-west-2/1234567_0123456789abcdef0123456789abcdef01234567 >/dev/null
"$vault_bin" write -f cisco-s3/rotate/demo

cat > "$work/agent.hcl" <<HCL
vault { address = "$VAULT_ADDR" }
auto_auth {
  method "token_file" { config = { token_file_path = "$work/token" } }
}
template {
  destination = "$work/aws-credentials"
  contents    = <<TPL
{{ with secret "cisco-s3/creds/demo" }}[default]
aws_access_key_id = {{ .Data.access_key_id }}
aws_secret_access_key = {{ .Data.secret_access_key }}
{{ end }}
TPL
}
HCL
echo root > "$work/token"

cat <<TXT

Vault $("$vault_bin" version | cut -d' ' -f2) is running with the plugin at cisco-s3/ (plugin $version).
The Cisco API simulator is at $sim_url (demo API key demo-client / demo-secret, org 1234567).

Try, in another shell:
  export VAULT_ADDR=$VAULT_ADDR VAULT_TOKEN=root PATH=$(dirname "$vault_bin"):\$PATH
  vault read cisco-s3/creds/demo              # the current key pair
  vault write -f cisco-s3/rotate/demo         # rotate now
  vault read cisco-s3/config/demo             # settings and rotation status
  curl -s $sim_url/_sim/state                 # what the simulator issued
  vault agent -config=$work/agent.hcl         # renders $work/aws-credentials

Press Ctrl-C to stop.
TXT
wait "${pids[1]}"
