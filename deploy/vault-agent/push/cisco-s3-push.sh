# cisco-s3-push.sh: sourced by the push scripts beside it, which Vault Agent
# runs from a template's exec block after each render of key-pair.json, that
# is once per key change. They send the key pair to a product's API.
#
# Secrets stay off the command line (curl reads the auth line and the body
# from files) and out of the output (no response body is printed). On any
# failure the rendered file is deleted: the agent's next read of the key
# then renders it again and runs the push again.
set -euo pipefail
umask 077
KEYFILE=${1:?usage: $0 KEYFILE}
TMP=$(mktemp -d)
trap 'rc=$?; rm -rf "$TMP"; [ $rc -eq 0 ] || rm -f "$KEYFILE"; exit $rc' EXIT

die() { echo "push: $*" >&2; exit 1; }

# key FIELD writes access_key_id or secret_access_key of KEYFILE to a file
# of its own and prints that file's path.
key() {
  jq -j --arg f "$1" '.[$f] // empty' "$KEYFILE" > "$TMP/$1"
  [ -s "$TMP/$1" ] || die "$KEYFILE has no $1"
  echo "$TMP/$1"
}

# call METHOD URL [curl arguments]: prints the HTTP status; the body is in
# $TMP/body and the headers in $TMP/headers. $AUTH is one line of curl
# config (header = "..." or user = "..."), passed on stdin.
call() {
  local method=$1 url=$2
  shift 2
  printf '%s\n' "${AUTH:-}" | curl -sS -K - -X "$method" -o "$TMP/body" -D "$TMP/headers" \
    -w '%{http_code}' "$@" "$url"
}

is2xx() { [[ $1 == 2?? ]]; }
