#!/usr/bin/env bash
# deps.sh installs what make test needs besides Go, when it is missing:
# promtool and the Prometheus server (Debian package prometheus), for the
# alert rule tests and the end-to-end scrape, and Debian's AWS CLI at
# /usr/bin/aws (awscli), which the end-to-end suite runs. Without apt-get,
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
[ ${#missing[@]} -eq 0 ] && exit 0

give_up() {
  local line="make test needs ${needs[0]}"
  [ ${#needs[@]} -eq 1 ] || line+=" and ${needs[1]}"
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
