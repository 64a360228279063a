#!/usr/bin/env bash
# make dev: the Cisco API simulator plus a Vault dev server with the plugin
# registered, mounted at cisco-s3/, configured and rotated once. Runs in the
# foreground until Ctrl-C, then stops what it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib.sh

# The version make build stamped (make passes it; the Makefile holds the default).
version=${VERSION:-$(sed -n "s/^VERSION *?= *//p" Makefile)}
work=$(mktemp -d "${TMPDIR:-/tmp}/cisco-s3-dev.XXXXXX")
pids=()
cleanup() {
  trap - EXIT INT TERM
  stop_pids "${pids[@]}"
  echo "stopped; logs were in $work"
}
trap cleanup EXIT INT TERM

echo "starting the Cisco API simulator and a Vault dev server..."
start_dev_stack "$work" "$version"
vault_bin=$VAULT_BIN
sim_url=$SIM_URL
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

Vault $("$vault_bin" version | cut -d' ' -f2 | tr -d ,) is running with the plugin at cisco-s3/ (plugin $version).
The Cisco API simulator is at $sim_url (demo API key demo-client / demo-secret, org 1234567).

Try, in another shell:
  export VAULT_ADDR=$VAULT_ADDR VAULT_TOKEN=root PATH=$(dirname "$vault_bin"):\$PATH
  vault read cisco-s3/creds/demo          # the current key pair
  vault write -f cisco-s3/rotate/demo     # rotate now
  vault read cisco-s3/config/demo         # settings and rotation status
  curl -s $sim_url/_sim/state             # what the simulator issued

Render an AWS credentials file with Vault Agent (re-rendered after each rotation):
  vault agent -config=$work/agent.hcl
  cat $work/aws-credentials

Press Ctrl-C to stop.
TXT
wait "${pids[1]}"
