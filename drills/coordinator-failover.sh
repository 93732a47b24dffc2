#!/usr/bin/env bash
# Coordinator failover drill (runbook: "Coordinator replacement (manual failover)"), the six
# steps as the runbook writes them, on an isolated HOME and non-default ports:
#   SPL=./dist/spl bash drills/coordinator-failover.sh     (PORT=9500, workers on 9501.. by default)
# Boots a fleet, kills the coordinator, promotes worker-a, re-points worker-b, and checks that
# `spl fleet list` against the new coordinator shows both live. Exits 0 only if every step held.
set -euo pipefail

DRILL=failover
DEFAULT_PORT=9500
LOG_HOME=.syncro-worker-a
# shellcheck source=drills/fleet-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/fleet-lib.sh"

echo "coordinator failover drill: $("$SPL" version) · home $SYNCROPEL_HOME · ports $PORT, $WPORT, $((WPORT + 1))"
fleet_start
A_DID="$(member_did worker-a)"
B_DID="$(member_did worker-b)"
[ -n "$A_DID" ] && [ -n "$B_DID" ] || fail "the fleet did not list worker-a and worker-b"
ok "fleet up: coordinator :$PORT, worker-a :$WPORT, worker-b :$((WPORT + 1))"

# The member to promote starts from its copy of the registry, which it refreshes after each beat:
# wait until that copy holds worker-b's join (a member that joined less than one interval before the
# coordinator died is not in it, and rejoins the new coordinator with 'spl fleet join').
deadline=$((SECONDS + 60))
until SYNCROPEL_HOME="$HOME/.syncro-worker-a" spl thread records th_instance_registry 2>/dev/null | grep -q "$B_DID"; do
  [ "$SECONDS" -lt "$deadline" ] || fail "worker-a's copy of the registry did not get worker-b's join within 60 s"
  sleep 0.1
done
ok "worker-a's copy of the registry holds both members"

# The coordinator dies.
kill -9 "$(cat "$SYNCROPEL_HOME/run/spl.pid")"
SYNCROPEL_HOME="$HOME/.syncro-worker-a" spl know "still serving locally" >/dev/null || fail "worker-a stopped serving when the coordinator died"
ok "coordinator killed (kill -9); worker-a still ingests locally"

# 1-2. Pick worker-a and stop it cleanly.
spl fleet stop --instance worker-a | grep -q "\[worker-a\]  stopped" || fail "spl fleet stop --instance worker-a did not stop it"
ok "step 2: spl fleet stop --instance worker-a"

# 3. Remove its [fleet] coordinator_url line.
sed -i '/^coordinator_url/d' "$HOME/.syncro-worker-a/config.toml"
grep -q '^coordinator_url' "$HOME/.syncro-worker-a/config.toml" && fail "coordinator_url is still in worker-a's config.toml"
ok "step 3: coordinator_url removed from ~/.syncro-worker-a/config.toml"

# 4. Restart it: it now holds the registry.
SYNCROPEL_HOME="$HOME/.syncro-worker-a" spl serve --daemon --port "$WPORT" >/dev/null || fail "worker-a did not restart"
PIDS+=("$(cat "$HOME/.syncro-worker-a/run/spl.pid")")
SYNCROPEL_HOME="$HOME/.syncro-worker-a" spl doctor | grep -q "fleet role .*coordinator" || fail "worker-a does not report the coordinator role"
ok "step 4: SYNCROPEL_HOME=~/.syncro-worker-a spl serve --daemon --port $WPORT (coordinator now)"

# 5. Re-point worker-b and restart it.
sed -i "s|^coordinator_url = .*|coordinator_url = \"http://127.0.0.1:$WPORT\"|" "$HOME/.syncro-worker-b/config.toml"
SYNCROPEL_HOME="$HOME/.syncro-worker-b" spl serve --restart >/dev/null || fail "worker-b did not restart"
PIDS+=("$(cat "$HOME/.syncro-worker-b/run/spl.pid")")
ok "step 5: worker-b points at http://127.0.0.1:$WPORT and restarted"

# 6. Verify against the new coordinator: both live.
for who in "$A_DID" "$B_DID"; do
  wait_status "$who" live 60 --url "http://127.0.0.1:$WPORT" || fail "$who is not live on the new coordinator"
done
SYNCROPEL_HOME="$HOME/.syncro-worker-a" wait_list "  2 live" 60 || fail "spl fleet list on the new coordinator does not show 2 live"
ok "step 6: spl fleet list against the new coordinator shows worker-a and worker-b live"

spl fleet stop --workers >/dev/null || fail "spl fleet stop --workers failed"
echo "coordinator failover drill passed"
