#!/usr/bin/env bash
# Upgrade drill (runbook: "In-place upgrades").
#   bash drills/upgrade.sh OLD NEW        (PORT=9300 by default)
# OLD and NEW are release trees (a directory with install.sh and <version>/spl-linux-x64, as
# `bun run release` writes) or spl binaries. On an isolated HOME: install OLD through install.sh
# with a pin, run it with 5 user records, 1 routing rule and 1 permission rule, snapshot, stop,
# install NEW through install.sh with a pin, start, and check the record count and all 7 items.
# Then roll back by reinstalling the OLD pin: the old binary either serves the same data, or (if
# the schema changed) refuses the store with a clear message and serves the pre-upgrade snapshot.
# Prints ✓ per step; exits 0 only if everything held. Stops the daemons it started, by pid.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: bash drills/upgrade.sh OLD NEW   (release trees or spl binaries)" >&2; exit 2; }
PORT="${PORT:-9300}"
HERE="$(cd "$(dirname "$0")" && pwd)"
abs() { case "$1" in /*) echo "$1" ;; *) echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")" ;; esac; }
OLD_IN="$(abs "$1")"
NEW_IN="$(abs "$2")"

ROOT="$(mktemp -d "${TMPDIR:-/tmp}/spl-upgrade-drill.XXXXXX")"
export HOME="$ROOT/home"
export SYNCROPEL_HOME="$HOME/.syncro"
export INSTALL_DIR="$HOME/.local/bin"
export PATH="$INSTALL_DIR:$PATH"
unset SPL_SERVE_URL SPL_TOKEN SPL_BACKUP_DIR XDG_DATA_HOME SPL_VERSION
mkdir -p "$HOME/backups/syncropel"
RELEASES="$ROOT/releases"
LOG="$SYNCROPEL_HOME/logs/spl.log"
# shellcheck source=drills/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- one release tree holding both versions ------------------------------------------------------
# shellcheck source=drills/release-lib.sh
source "$HERE/release-lib.sh"
OLD_V="$(add_release "$OLD_IN")"
NEW_V="$(add_release "$NEW_IN")"
[ "$OLD_V" != "$NEW_V" ] || fail "OLD and NEW are both version $OLD_V; build them under two version numbers"
publish_latest "$NEW_V"

record_count() { spl status -o json | sed -n 's/^ *"records": *\([0-9]*\).*/\1/p' | head -1; }
# The 7 items: 5 user record ids, the routing rule, the permission rule.
items() {
  spl thread records th_upgrade_drill -o json | grep -o '"id": "[0-9a-f]*"' | cut -d'"' -f4
  spl config list-rules | grep -o 'drill-route' | head -1
  spl config list-permission-rules | grep -o 'drill-admin' | head -1
}

echo "upgrade drill: $OLD_V → $NEW_V · home $SYNCROPEL_HOME · port $PORT"

# 1. The old version, installed the way users install it, with data.
install "$OLD_V"
ok "installed spl $OLD_V through install.sh (pinned)"
start
for i in 1 2 3 4 5; do spl know "upgrade-drill-record-$i" --thread th_upgrade_drill >/dev/null || fail "emit $i failed"; done
spl config add-rule --name drill-route --expression 'record.act == "INTEND"' --target did:sync:agent:drill >/dev/null ||
  fail "could not add the routing rule"
spl config add-permission-rule --name drill-admin --action allow --priority 100 --expression 'true' >/dev/null ||
  fail "could not add the permission rule"
BEFORE_ITEMS="$(items)"
BEFORE_COUNT="$(record_count)"
[ "$(printf '%s\n' "$BEFORE_ITEMS" | grep -c .)" -eq 7 ] || fail "expected 7 items before the upgrade, got: $BEFORE_ITEMS"
ok "spl $OLD_V running with 5 user records, 1 routing rule, 1 permission rule ($BEFORE_COUNT records in all)"

# 2. Snapshot first. Always. (A consistent online snapshot; a plain cp of a live WAL store may miss
#    the newest pages.)
SNAPSHOT="$HOME/backups/syncropel/hub.db.pre-upgrade.$(date +%s).bak"
spl backup --out "$SNAPSHOT" >/dev/null || fail "pre-upgrade snapshot failed"
ok "pre-upgrade snapshot: $SNAPSHOT"

# 3-6. Stop, install the new binary, verify, restart, compare.
stop
install "$NEW_V"
ok "spl serve --stop; installed spl $NEW_V through install.sh (pinned); spl version says spl $NEW_V"
start
spl status | grep -q "Status:   ok" || fail "spl status is not ok after the upgrade"
[ "$(record_count)" = "$BEFORE_COUNT" ] || fail "record count $(record_count) after the upgrade, $BEFORE_COUNT before"
[ "$(items)" = "$BEFORE_ITEMS" ] || fail "items differ after the upgrade: $(items)"
ok "spl $NEW_V: status ok, $BEFORE_COUNT records, all 7 items intact"

# 7. Roll back by reinstalling the old pin.
stop
install "$OLD_V"
ok "rolled back: installed spl $OLD_V through install.sh (pinned)"
if OUT="$(spl serve --daemon --port "$PORT" 2>&1)"; then
  PIDS+=("$(printf '%s\n' "$OUT" | sed -n 's/^PID: *\([0-9][0-9]*\).*/\1/p')")
  [ "$(record_count)" = "$BEFORE_COUNT" ] && [ "$(items)" = "$BEFORE_ITEMS" ] || fail "data differs after the rollback"
  ok "same schema: spl $OLD_V serves the upgraded store with all 7 items intact"
else
  printf '%s\n' "$OUT" | grep -q "schema version" || fail "spl $OLD_V refused to start without naming the schema: $OUT"
  ok "schema changed: spl $OLD_V refuses the newer store clearly: $(printf '%s\n' "$OUT" | grep -m1 'schema version')"
  spl restore "$SNAPSHOT" --force >/dev/null || fail "restoring the pre-upgrade snapshot failed"
  start
  [ "$(items)" = "$BEFORE_ITEMS" ] || fail "items differ after restoring the pre-upgrade snapshot"
  ok "spl $OLD_V serves the pre-upgrade snapshot with all 7 items intact"
fi
stop
echo "upgrade drill passed"
