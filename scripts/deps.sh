#!/usr/bin/env bash
# deps.sh installs what make test needs besides Go, when it is missing:
# promtool and the Prometheus server (Debian package prometheus), for the
# alert rule tests and the end-to-end scrape, and Debian's AWS CLI at
# /usr/bin/aws (awscli), which the end-to-end suite runs; the SDKs of its
# long-running shippers, botocore (python3-botocore) and the AWS SDK for
# Ruby (ruby-aws-sdk-s3); curl and jq, which the push recipes use. Without apt-get,
# or without root or sudo, it stops at once and says what to install.
set -euo pipefail

missing=()
needs=()
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  missing+=(prometheus)
  needs+=("promtool and prometheus (Debian: apt-get install prometheus)")
fi
if [ ! -x /usr/bin/aws ]; then
  missing+=(awscli)
  needs+=("the AWS CLI at /usr/bin/aws (apt-get install awscli)")
fi
if ! /usr/bin/python3 -c 'import botocore' 2>/dev/null; then
  missing+=(python3-botocore)
  needs+=("botocore for /usr/bin/python3 (apt-get install python3-botocore)")
fi
if ! /usr/bin/ruby -e 'require "aws-sdk-s3"' 2>/dev/null; then
  missing+=(ruby ruby-aws-sdk-s3)
  needs+=("the AWS SDK for Ruby (apt-get install ruby-aws-sdk-s3)")
fi
for tool in curl jq; do
  if ! command -v $tool >/dev/null; then
    missing+=($tool)
    needs+=("$tool (apt-get install $tool)")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

give_up() {
  local line="make test needs ${needs[0]}" i
  for ((i = 1; i < ${#needs[@]}; i++)); do line+=", ${needs[i]}"; done
  echo "$line" >&2
  exit 1
}

# sudo only when it can ask for a password, or needs none.
as_root=()
if [ "$EUID" -ne 0 ]; then
  if command -v sudo >/dev/null && { [ -t 0 ] || sudo -n true 2>/dev/null; }; then
    as_root=(sudo)
  else
    give_up
  fi
fi
command -v apt-get >/dev/null || give_up

echo "installing ${missing[*]} with apt-get..."
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq || give_up
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || give_up
