# Shell helpers shared by the dev and end-to-end scripts.

# free_port prints a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( (RANDOM % 20000) + 30000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

# wait_for_line FILE PATTERN prints the first line of FILE matching PATTERN,
# waiting up to 30 s for it.
wait_for_line() {
  local file=$1 pattern=$2
  for _ in $(seq 1 300); do
    if grep -m1 -- "$pattern" "$file" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "timed out waiting for '$pattern' in $file" >&2
  return 1
}

# wait_for_vault VAULT_BIN waits until the server at VAULT_ADDR answers,
# for up to 2 minutes: a busy machine (a test suite beside it) starts a
# dev server in well over 30 s.
wait_for_vault() {
  local deadline=$((SECONDS + 120))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if "$1" status >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  echo "Vault at $VAULT_ADDR did not start" >&2
  return 1
}

# stop_pids stops the given processes, by PID only.
stop_pids() {
  local pid
  for pid in "$@"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "$@"; do
    wait "$pid" 2>/dev/null || true
  done
}

# start_dev_stack WORK VERSION [SIM_FLAGS...] starts the simulator with its
# demo API key and a Vault dev server with the plugin from bin/ registered
# and mounted at cisco-s3/; it configures no organization. It appends the
# PIDs to the caller's pids array and exports VAULT_ADDR, VAULT_TOKEN,
# VAULT_BIN, SIM_URL, and the demo organization's bucket as SIM_DATA_PATH
# (s3://bucket/prefix/) and SIM_REGION.
start_dev_stack() {
  local work=$1 version=$2
  shift 2
  VAULT_BIN=$(scripts/find-vault.sh)
  mkdir -p "$work/plugins"
  cp bin/vault-plugin-secrets-cisco-s3 "$work/plugins/"
  bin/cisco-s3-sim -addr 127.0.0.1:0 "$@" >"$work/sim.out" 2>"$work/sim.log" &
  pids+=($!)
  SIM_URL=$(wait_for_line "$work/sim.out" 'listening on ' | sed 's/.*listening on //')
  local bucket
  bucket=$(wait_for_line "$work/sim.out" '^demo bucket: ')
  SIM_DATA_PATH=$(sed 's/.*data_path=\([^ ]*\).*/\1/' <<<"$bucket")
  SIM_REGION=$(sed 's/.*region=\([^ ]*\).*/\1/' <<<"$bucket")
  local port
  port=$(free_port)
  "$VAULT_BIN" server -dev -dev-root-token-id=root -dev-listen-address="127.0.0.1:$port" \
    -dev-plugin-dir="$work/plugins" -log-level=info >"$work/vault.log" 2>&1 &
  pids+=($!)
  export VAULT_ADDR="http://127.0.0.1:$port" VAULT_TOKEN=root VAULT_BIN SIM_URL SIM_DATA_PATH SIM_REGION
  wait_for_vault "$VAULT_BIN"
  local sha
  sha=$(sha256sum "$work/plugins/vault-plugin-secrets-cisco-s3" | cut -d' ' -f1)
  "$VAULT_BIN" plugin register -sha256="$sha" -version="$version" secret vault-plugin-secrets-cisco-s3 >/dev/null
  "$VAULT_BIN" secrets enable -path=cisco-s3 -plugin-version="$version" vault-plugin-secrets-cisco-s3 >/dev/null
}
