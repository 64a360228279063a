# cisco-s3-push.sh: sourced by the push scripts beside it, which Vault Agent
# runs from a template's exec block after each render of key-pair.json, that
# is once per key change. They send the key pair to a product's API.
#
# Secrets stay off the command line (curl reads the auth line and the body
# from files) and out of the output (no response body is printed). Every
# call ends within 20 s, so a script ends well within the template's exec
# timeout (120 s), which would kill it. On any failure the rendered file is
# deleted and the script exits non-zero: Vault Agent then restarts its
# template runner after a wait (1 s, doubling up to 5 minutes), which
# renders the file again and runs the push again. That wait holds up every
# template of the agent: run push templates in an agent of their own.
set -euo pipefail
umask 077
KEYFILE=${1:?usage: $0 KEYFILE}
# Beside the key file, which holds the same secret: nothing is left in a
# shared /tmp if the script is killed.
TMP=$(mktemp -d "$(dirname "$KEYFILE")/.push.XXXXXX")
trap 'rc=$?; rm -rf "$TMP"; [ $rc -eq 0 ] || rm -f "$KEYFILE"; exit $rc' EXIT

die() { echo "push: $*" >&2; exit 1; }

# key FIELD writes access_key_id or secret_access_key of KEYFILE to a file
# of its own and prints that file's path.
key() {
  jq -j --arg f "$1" '.[$f] // empty' "$KEYFILE" > "$TMP/$1"
  [ -s "$TMP/$1" ] || die "$KEYFILE has no $1"
  echo "$TMP/$1"
}

# auth NAME VALUE sets AUTH, the line of curl config (header or user) that
# call passes on stdin, with VALUE quoted for it.
auth() {
  local value=${2//\\/\\\\}
  AUTH="$1 = \"${value//\"/\\\"}\""
}

# call METHOD URL [curl arguments]: prints the HTTP status (000 when no
# answer came); the body is in $TMP/body and the headers in $TMP/headers.
call() {
  local method=$1 url=$2
  shift 2
  printf '%s\n' "${AUTH:-}" | curl -sS -K - --connect-timeout 10 --max-time 20 -X "$method" \
    -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' "$@" "$url" || true
}

is2xx() { [[ $1 == 2?? ]]; }
