# Shared by the drills (sourced, not run). The caller sets ROOT (its temp dir), LOG (the daemon
# log to show on failure), PORT, and defines spl(). Provides ✓/✗ output, start/stop of the daemon,
# and a cleanup that ends the daemons the drill started, by pid, then removes ROOT. A drill that
# made more (network namespaces, a bridge) defines drill_teardown(); the cleanup runs it after
# the daemons are gone.
PIDS=()

# end_pids PID...: SIGTERM, up to 5 s to exit, then SIGKILL. Only pids the drill started.
end_pids() {
  local pid
  for pid in "$@"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  done
}

cleanup() {
  end_pids "${PIDS[@]:-}"
  if declare -F drill_teardown >/dev/null; then drill_teardown || true; fi
  if [ -n "${KEEP_DRILL:-}" ]; then echo "kept $ROOT"; else rm -rf "$ROOT"; fi
}
trap cleanup EXIT

ok() { echo "✓ $*"; }
fail() {
  echo "✗ $*" >&2
  [ -f "$LOG" ] && { echo "--- last log lines:" >&2; tail -5 "$LOG" >&2; }
  exit 1
}

# Starts the daemon (banner in $BANNER), remembers its pid for the cleanup, and waits until the
# startup backup it writes while already serving is no longer in progress.
BANNER=""
start() {
  BANNER="$(spl serve --daemon --port "$PORT" 2>&1)" || fail "spl serve --daemon failed: $BANNER"
  PIDS+=("$(printf '%s\n' "$BANNER" | sed -n 's/^PID: *\([0-9][0-9]*\).*/\1/p')")
  wait_backup
}

# The startup backup's outcome once it is settled ("written", "FAILED: ...", or "" for a new store).
BACKUP_OUTCOME=""
wait_backup() {
  local i
  for i in $(seq 1 1200); do
    BACKUP_OUTCOME="$(spl status -o json 2>/dev/null | sed -n 's/^ *"outcome": *"\(.*\)",\{0,1\}$/\1/p' | head -1)"
    case "$BACKUP_OUTCOME" in "in progress"*) sleep 0.1 ;; *) return 0 ;; esac
  done
  fail "the startup backup was still in progress after 2 minutes"
}
stop() { spl serve --stop >/dev/null || fail "spl serve --stop failed"; }
