#!/usr/bin/env bash
# Fleet drill (runbook: "Multi-instance fleet operations").
#   SPL=./dist/spl bash drills/fleet.sh        (PORT=9400, workers on 9401.. by default)
# On an isolated HOME: boot a coordinator and two workers with a short heartbeat, observe them
# (list, status, show, ping), kill -9 a worker and watch it go stale then archived, restart it
# and watch it come back live, then stop the fleet. Prints ✓ per step; exits 0 only if every
# step held. Stops the daemons it started, by pid.
set -euo pipefail

DRILL=fleet
DEFAULT_PORT=9400
LOG_HOME=.syncro
# shellcheck source=drills/fleet-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/fleet-lib.sh"

echo "fleet drill: $("$SPL" version) · home $SYNCROPEL_HOME · ports $PORT, $WPORT, $((WPORT + 1))"

# 1. Boot.
fleet_start
ok "spl fleet start --workers 2: converged (3 live)"

# 2. Observe (once every member's latest beat has landed).
wait_list "  3 live · 0 stale · 0 archived" 60 || fail "fleet list does not show 3 live"
spl fleet status | grep -q "Heartbeat:        every ${HEARTBEAT}s" || fail "fleet status does not show the ${HEARTBEAT} s heartbeat"
spl fleet show worker-a | grep -q "Status:           live" || fail "fleet show worker-a is not live"
spl fleet ping worker-b | grep -q "reachable in" || fail "fleet ping worker-b failed"
ok "fleet list, status, show and ping agree: 3 live"

# 3. A worker dies.
B_DID="$(member_did worker-b)"
kill -9 "$(cat "$HOME/.syncro-worker-b/run/spl.pid")"
wait_status "$B_DID" stale 60 || fail "worker-b did not go stale after kill -9"
ok "kill -9 worker-b: stale"
wait_status "$B_DID" archived 60 || fail "worker-b did not go archived"
ok "worker-b: archived"

# 4. Restart it: its next beat re-registers it.
SYNCROPEL_HOME="$HOME/.syncro-worker-b" spl serve --daemon --port "$((WPORT + 1))" >/dev/null || fail "worker-b did not restart"
PIDS+=("$(cat "$HOME/.syncro-worker-b/run/spl.pid")")
wait_status "$B_DID" live 60 || fail "worker-b did not come back live"
ok "worker-b restarted: live again"

# 5. Stop.
spl fleet stop --all >/dev/null || fail "spl fleet stop --all failed"
spl status >/dev/null 2>&1 && fail "the coordinator still runs after fleet stop --all"
ok "spl fleet stop --all: every member stopped"
echo "fleet drill passed"
