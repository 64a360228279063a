#!/usr/bin/env bash
# make dev: the Cisco API simulator plus a Vault dev server with the plugin
# registered and mounted at cisco-s3/, no organization configured. Prints
# the exports of the README's quick tour. Runs in the foreground until
# Ctrl-C, then stops what it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/lib.sh

# The version make build stamped: the registration must name it.
version=$(bin/vault-plugin-secrets-cisco-s3 -version)
work=$(mktemp -d "${TMPDIR:-/tmp}/cisco-s3-dev.XXXXXX")
pids=()
cleanup() {
  trap - EXIT INT TERM
  stop_pids "${pids[@]}"
  echo "stopped; logs were in $work"
}
# Ctrl-C or a SIGTERM is how make dev is meant to end: stop, and exit 0,
# so that make does not report "Error 130" or "Error 143".
stop_on_signal() {
  cleanup
  exit 0
}
trap cleanup EXIT
trap stop_on_signal INT TERM

echo "starting the Cisco API simulator and a Vault dev server..."
start_dev_stack "$work" "$version"
bucket_path=${SIM_DATA_PATH#s3://}
bucket_path=${bucket_path%/}

# The tour's PATH: vault, and an aws that passes AWS_ENDPOINT_URL on as
# --endpoint-url, since Debian 12's aws (2.9) predates that variable (2.13).
mkdir -p "$work/bin"
ln -s "$(realpath "$(command -v "$VAULT_BIN")")" "$work/bin/vault"
if real_aws=$(command -v aws); then
  # shellcheck disable=SC2016 # expanded when the shim runs
  printf '#!/bin/bash\nexec %q ${AWS_ENDPOINT_URL:+--endpoint-url "$AWS_ENDPOINT_URL"} "$@"\n' \
    "$real_aws" >"$work/bin/aws"
  chmod +x "$work/bin/aws"
  aws_note=
else
  aws_note="No aws on PATH: the tour's last step needs the AWS CLI (Debian: apt-get install awscli)."
fi

cat > "$work/agent.hcl" <<HCL
vault { address = "$VAULT_ADDR" }
auto_auth {
  method "token_file" { config = { token_file_path = "$work/token" } }
}
template {
  destination = "$work/aws-credentials"
  contents    = <<TPL
{{ with secret "cisco-s3/creds/acme" }}[default]
aws_access_key_id = {{ .Data.access_key_id }}
aws_secret_access_key = {{ .Data.secret_access_key }}
{{ end }}
TPL
}
HCL
echo root > "$work/token"

cat <<TXT

Vault $("$VAULT_BIN" version | cut -d' ' -f2 | tr -d ,) is running with the plugin at cisco-s3/ (plugin $version),
the Cisco API simulator (also AWS STS and S3) at $SIM_URL.

For the README's quick tour, paste into another shell:

export VAULT_ADDR=$VAULT_ADDR VAULT_TOKEN=root PATH=$work/bin:\$PATH
export CISCO_CLIENT_ID=demo-client CISCO_CLIENT_SECRET=demo-secret
export CISCO_API_URL=$SIM_URL/admin/v2 CISCO_TOKEN_URL=$SIM_URL/auth/v2/token AWS_STS_URL=$SIM_URL
export CISCO_DATA_PATH=$bucket_path
export AWS_ENDPOINT_URL=$SIM_URL AWS_REGION=$SIM_REGION
${aws_note:+
$aws_note
}
After the tour, Vault Agent renders cisco-s3/creds/acme as an AWS credentials
file, again after each rotation:
  vault agent -config=$work/agent.hcl
  cat $work/aws-credentials
What the simulator issued: curl -s $SIM_URL/_sim/state

Press Ctrl-C to stop.
TXT
wait "${pids[1]}"
