# Shared by the fleet drills (sourced after lib.sh): boot a local fleet on $PORT/$WPORT with a
# 1 s heartbeat, and poll a member's status through `spl fleet list -o json`.
fleet_start() {
  local out
  out="$(spl fleet start --workers 2 --port "$PORT" --worker-port "$WPORT" --heartbeat 1 2>&1)" || fail "spl fleet start failed: $out"
  while read -r pid; do PIDS+=("$pid"); done < <(printf '%s\n' "$out" | sed -n 's/.*spawned PID \([0-9][0-9]*\).*/\1/p')
  printf '%s\n' "$out" | grep -q "✓ fleet converged" || fail "no convergence line: $out"
}

# member_did NAME [spl args...]: the DID of the member with that name.
member_did() {
  local name="$1"; shift
  spl fleet list -o json "$@" | tr -d '\n ' | grep -o "\"did\":\"[^\"]*\",\"name\":\"$name\"" | head -1 | cut -d'"' -f4
}

# wait_status DID STATUS SECS [spl args...]: until the member shows STATUS, or fail after SECS.
wait_status() {
  local did="$1" want="$2" secs="$3"; shift 3
  for _ in $(seq 1 $((secs * 10))); do
    spl fleet list -o json "$@" 2>/dev/null | tr -d '\n ' | grep -q "\"did\":\"$did\"[^}]*\"status\":\"$want\"" && return 0
    sleep 0.1
  done
  return 1
}
