# Shared by the fleet drills (sourced; the caller sets DRILL, DEFAULT_PORT and LOG_HOME, the home
# whose log to show on failure): an isolated HOME with the coordinator on $PORT and workers from
# $WPORT, lib.sh's ✓/✗ and cleanup, booting a local fleet with a short heartbeat, and waiting for
# a member's status (or the fleet's counts) through `spl fleet list`.
SPL="${SPL:-./dist/spl}"
PORT="${PORT:-$DEFAULT_PORT}"
# A member is live while its last beat is at most two intervals old: with 1 s, one beat late by a
# second on a busy machine reads as stale. 3 s leaves room and keeps the drill quick.
HEARTBEAT="${HEARTBEAT:-3}"
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
  out="$(spl fleet start --workers 2 --port "$PORT" --worker-port "$WPORT" --heartbeat "$HEARTBEAT" 2>&1)" || fail "spl fleet start failed: $out"
  while read -r pid; do PIDS+=("$pid"); done < <(printf '%s\n' "$out" | sed -n 's/.*spawned PID \([0-9][0-9]*\).*/\1/p')
  printf '%s\n' "$out" | grep -q "✓ fleet converged" || fail "no convergence line: $out"
}

# member_did NAME [spl args...]: the DID of the member with that name.
member_did() {
  local name="$1"; shift
  spl fleet list -o json "$@" | tr -d '\n ' | grep -o "\"did\":\"[^\"]*\",\"name\":\"$name\"" | head -1 | cut -d'"' -f4
}

# wait_status DID STATUS SECS [spl args...]: until the member shows STATUS. After SECS it says on
# stderr what it waited for and the status it last saw, and returns 1 (the caller fails).
wait_status() {
  local did="$1" want="$2" secs="$3"; shift 3
  local deadline=$((SECONDS + secs)) seen
  while :; do
    seen="$(spl fleet list -o json "$@" 2>&1 | tr -d '\n ' | grep -o "\"did\":\"$did\"[^}]*" | grep -o '"status":"[a-z]*"' | cut -d'"' -f4 || true)"
    [ "$seen" = "$want" ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "  waited ${secs} s for $did to be $want; last saw: ${seen:-not listed}" >&2
      return 1
    fi
    sleep 0.1
  done
}

# wait_list TEXT SECS [spl args...]: until `spl fleet list` shows TEXT (e.g. the counts line).
# After SECS it says on stderr what it waited for and the list it last saw, and returns 1.
wait_list() {
  local want="$1" secs="$2"; shift 2
  local deadline=$((SECONDS + secs)) seen
  while :; do
    seen="$(spl fleet list "$@" 2>&1 || true)"
    printf '%s\n' "$seen" | grep -qF -- "$want" && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      printf '  waited %s s for fleet list to show "%s"; last saw:\n%s\n' "$secs" "$want" "$seen" >&2
      return 1
    fi
    sleep 0.1
  done
}
