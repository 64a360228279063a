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

# wait_for_vault VAULT_BIN waits until the server at VAULT_ADDR answers.
wait_for_vault() {
  for _ in $(seq 1 300); do
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
