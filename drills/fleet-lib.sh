# Shared by the fleet drills (sourced; the caller sets DRILL, DEFAULT_PORT and LOG_HOME, the home
# whose log to show on failure): an isolated HOME with the coordinator on $PORT and workers from
# $WPORT, lib.sh's ✓/✗ and cleanup, booting a local fleet with a 1 s heartbeat, and polling a
# member's status through `spl fleet list -o json`.
SPL="${SPL:-./dist/spl}"
PORT="${PORT:-$DEFAULT_PORT}"
WPORT="${WPORT:-$((PORT + 1))}"
case "$SPL" in /*) ;; *) SPL="$(cd "$(dirname "$SPL")" && pwd)/$(basename "$SPL")" ;; esac
[ -x "$SPL" ] || { echo "✗ no spl binary at $SPL (set SPL=path/to/spl)" >&2; exit 1; }

ROOT="$(mktemp -d "${TMPDIR:-/tmp}/spl-$DRILL-drill.XXXXXX")"
export HOME="$ROOT/home"
export SYNCROPEL_HOME="$HOME/.syncro"
unset SPL_SERVE_URL SPL_TOKEN SPL_BACKUP_DIR XDG_DATA_HOME SPL_FLEET_COORDINATOR_URL
mkdir -p "$HOME"
LOG="$HOME/$LOG_HOME/logs/spl.log"
# shellcheck source=drills/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

spl() { "$SPL" "$@"; }

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
