#!/usr/bin/env bash
# Fleet-wide upgrade drill (runbook / fleet reference: "Fleet-wide upgrade").
#   bash drills/fleet-upgrade.sh OLD NEW        (PORT=9500, workers on 9501.. by default)
# OLD and NEW are release trees or spl binaries (as for drills/upgrade.sh). On an isolated HOME,
# each member a "host" with its own install dir: install OLD through install.sh (pinned), boot a
# coordinator and two workers with a 1 s heartbeat, write records on every member, then:
# spl kill --emergency → wait until active dispatches are 0 everywhere → upgrade the coordinator,
# then each worker one at a time (install.sh pinned to NEW, stop, start, wait until live on NEW)
# → spl unkill --emergency → every member live on NEW, new work accepted, no record lost.
# Prints ✓ per step; exits 0 only if everything held. Stops the daemons it started, by pid.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: bash drills/fleet-upgrade.sh OLD NEW   (release trees or spl binaries)" >&2; exit 2; }
DRILL=fleet-upgrade
DEFAULT_PORT=9500
LOG_HOME=.syncro
HERE="$(cd "$(dirname "$0")" && pwd)"
abs() { case "$1" in /*) echo "$1" ;; *) echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")" ;; esac; }
OLD_IN="$(abs "$1")"
NEW_IN="$(abs "$2")"
PORT="${PORT:-$DEFAULT_PORT}"
WPORT="${WPORT:-$((PORT + 1))}"
ROOT="$(mktemp -d "${TMPDIR:-/tmp}/spl-$DRILL-drill.XXXXXX")"
export HOME="$ROOT/home"
export SYNCROPEL_HOME="$HOME/.syncro"
unset SPL_SERVE_URL SPL_TOKEN SPL_BACKUP_DIR XDG_DATA_HOME SPL_FLEET_COORDINATOR_URL SPL_VERSION
mkdir -p "$HOME"
LOG="$HOME/$LOG_HOME/logs/spl.log"
RELEASES="$ROOT/releases"
# shellcheck source=drills/lib.sh
source "$HERE/lib.sh"
# shellcheck source=drills/release-lib.sh
source "$HERE/release-lib.sh"

OLD_V="$(add_release "$OLD_IN")"
NEW_V="$(add_release "$NEW_IN")"
[ "$OLD_V" != "$NEW_V" ] || fail "OLD and NEW are both version $OLD_V; build them under two version numbers"
publish_latest "$NEW_V"

MEMBERS=(coordinator worker-a worker-b)
home_of() { [ "$1" = coordinator ] && echo "$HOME/.syncro" || echo "$HOME/.syncro-$1"; }
port_of() { case "$1" in coordinator) echo "$PORT" ;; worker-a) echo "$WPORT" ;; worker-b) echo "$((WPORT + 1))" ;; esac; }
# Each member is its own host: its own install dir, the binary it runs from.
bin_of() { echo "$ROOT/hosts/$1/bin"; }
on() { local m="$1"; shift; SYNCROPEL_HOME="$(home_of "$m")" "$(bin_of "$m")/spl" "$@"; }
spl() { on coordinator "$@"; }

# members_json: the coordinator's registry, one member per line.
members_json() { spl fleet list -o json | tr -d '\n ' | sed 's/},{/}\n{/g'; }
# wait_member NAME VERSION SECS: until NAME is live and reports VERSION.
wait_member() {
  for _ in $(seq 1 $(($3 * 10))); do
    members_json 2>/dev/null | grep "\"name\":\"$1\"" | grep "\"status\":\"live\"" | grep -q "\"version\":\"$2\"" && return 0
    sleep 0.1
  done
  return 1
}
drill_ids() { on "$1" thread records th_fleet_upgrade_drill -o json | grep -o '"id": "[0-9a-f]*"' | cut -d'"' -f4 | sort; }
pid_of() { cat "$(home_of "$1")/run/spl.pid"; }
restart_member() {
  on "$1" serve --stop >/dev/null || fail "spl serve --stop on $1 failed"
  on "$1" serve --daemon --port "$(port_of "$1")" >/dev/null || fail "$1 did not start on $NEW_V"
  PIDS+=("$(pid_of "$1")")
}
# intend_refused MEMBER: a new INTEND on MEMBER is refused by the emergency stop.
intend_refused() { ! out="$(on "$1" intend "drill work" 2>&1)" && printf '%s' "$out" | grep -q "emergency stop active"; }

echo "fleet upgrade drill: $OLD_V → $NEW_V · home $HOME · ports $PORT, $WPORT, $((WPORT + 1))"

# 1. Every host on OLD, installed the way users install it; the fleet up; records everywhere.
for m in "${MEMBERS[@]}"; do INSTALL_DIR="$(bin_of "$m")" install "$OLD_V"; done
ok "installed spl $OLD_V through install.sh (pinned) on 3 hosts"
out="$(spl fleet start --workers 2 --port "$PORT" --worker-port "$WPORT" --heartbeat 1 2>&1)" || fail "spl fleet start failed: $out"
while read -r pid; do PIDS+=("$pid"); done < <(printf '%s\n' "$out" | sed -n 's/.*spawned PID \([0-9][0-9]*\).*/\1/p')
for m in "${MEMBERS[@]}"; do wait_member "$m" "$OLD_V" 30 || fail "$m is not live on $OLD_V"; done
for m in "${MEMBERS[@]}"; do
  for i in 1 2 3; do on "$m" know "fleet-upgrade-$m-$i" --thread th_fleet_upgrade_drill >/dev/null || fail "writing on $m failed"; done
done
declare -A BEFORE
for m in "${MEMBERS[@]}"; do BEFORE[$m]="$(drill_ids "$m")"; [ "$(printf '%s\n' "${BEFORE[$m]}" | grep -c .)" -eq 3 ] || fail "$m holds $(printf '%s\n' "${BEFORE[$m]}" | grep -c .) drill records, not 3"; done
ok "fleet of 3 live on $OLD_V, 3 records written on each member"

# 2. Emergency stop; it reaches every member.
[ "$(spl kill --emergency --reason "$OLD_V → $NEW_V upgrade")" = "✓ emergency stop recorded" ] || fail "spl kill --emergency did not print its line"
spl fleet status | grep -q "⚠ EMERGENCY STOP ACTIVE" || fail "fleet status does not show the emergency stop"
for m in "${MEMBERS[@]}"; do
  for _ in $(seq 1 100); do intend_refused "$m" && break; sleep 0.1; done
  intend_refused "$m" || fail "$m still accepts new work after the emergency stop"
done
ok "spl kill --emergency: new work refused on every member"

# 3. Drain: active dispatches 0 everywhere.
for _ in $(seq 1 300); do
  busy="$(members_json | grep -o '"active_dispatches":[0-9]*' | grep -vc ':0$' || true)"
  [ "$busy" = 0 ] && break
  sleep 0.1
done
[ "$busy" = 0 ] || fail "active dispatches did not drain to 0"
ok "active dispatches: 0 on every member"

# 4. The coordinator first, then each worker, one at a time.
for m in "${MEMBERS[@]}"; do
  INSTALL_DIR="$(bin_of "$m")" install "$NEW_V"
  restart_member "$m"
  wait_member "$m" "$NEW_V" 30 || fail "$m is not live on $NEW_V after its upgrade"
  intend_refused "$m" || fail "$m accepts new work after its upgrade while the emergency stop holds"
  ok "$m upgraded through install.sh (pinned): live on $NEW_V, emergency stop still enforced"
done

# 5. Lift the stop; every member takes work again, and every record is still there.
[ "$(spl unkill --emergency)" = "✓ emergency clear recorded" ] || fail "spl unkill --emergency did not print its line"
for m in "${MEMBERS[@]}"; do
  for _ in $(seq 1 100); do on "$m" intend "after the upgrade" >/dev/null 2>&1 && break; sleep 0.1; done
  on "$m" intend "after the upgrade" >/dev/null 2>&1 || fail "$m refuses new work after spl unkill --emergency"
  [ "$(drill_ids "$m")" = "${BEFORE[$m]}" ] || fail "$m lost records: $(drill_ids "$m")"
  on "$m" doctor >/dev/null 2>&1 || fail "spl doctor on $m failed: $(on "$m" doctor 2>&1 | tail -3)"
done
spl fleet status | grep -q "Emergency stop:   inactive" || fail "fleet status still shows the emergency stop"
[ "$(members_json | grep -c "\"version\":\"$NEW_V\"")" = 3 ] || fail "not every member reports $NEW_V"
ok "spl unkill --emergency: 3 live on $NEW_V, new work accepted, every record intact, doctor ok"

for m in worker-b worker-a coordinator; do on "$m" serve --stop >/dev/null || fail "spl serve --stop on $m failed"; done
echo "fleet upgrade drill passed"
