#!/usr/bin/env bash
# Recovery drill (runbook: "Backup discipline", "Recovery from corruption or data loss").
#   SPL=./dist/spl bash drills/recovery.sh        (PORT=9300 by default)
# On an isolated HOME/SYNCROPEL_HOME: emit a baseline, restart to force a startup backup, copy
# it off-host, corrupt hub.db with dd, show that startup fails, restore from the off-host copy,
# show that count and last id match the baseline, then show that the runbook's trap is closed
# (delete hub.db, start, restart: the good backup survives and the log names it), then the
# built-in off-host leg ([backup.offsite], continuous: spl backup push, more records, kill -9, wipe
# the home and the local backups, spl restore URL from the remote alone, then --to-seq).
# Prints ✓ per step; exits 0 only if everything held. Stops the daemons it started, by pid.
set -euo pipefail

SPL="${SPL:-./dist/spl}"
PORT="${PORT:-9300}"
case "$SPL" in /*) ;; *) SPL="$(cd "$(dirname "$SPL")" && pwd)/$(basename "$SPL")" ;; esac
[ -x "$SPL" ] || { echo "✗ no spl binary at $SPL (set SPL=path/to/spl)" >&2; exit 1; }

ROOT="$(mktemp -d "${TMPDIR:-/tmp}/spl-recovery-drill.XXXXXX")"
export HOME="$ROOT/home"
export SYNCROPEL_HOME="$HOME/.syncro-drill"
unset SPL_SERVE_URL SPL_TOKEN SPL_BACKUP_DIR XDG_DATA_HOME
mkdir -p "$HOME"
OFFSITE="$ROOT/offsite"
LOG="$SYNCROPEL_HOME/logs/spl.log"
# shellcheck source=drills/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

spl() { "$SPL" "$@"; }

drill_count() { spl thread records th_drill -o json 2>/dev/null | grep -c '"id": "' || true; }
drill_last() { spl thread records th_drill -o json 2>/dev/null | grep -o '"id": "[0-9a-f]*"' | tail -1 | cut -d'"' -f4; }

echo "recovery drill: $("$SPL" version) · home $SYNCROPEL_HOME · port $PORT"

# 1. A running instance.
start
spl status | grep -q "Status:   ok" || fail "spl status is not ok"
ok "daemon up on port $PORT (spl status: ok)"

# 2. Baseline.
for i in 1 2 3; do spl know "drill-baseline-fact-$i" --thread th_drill >/dev/null; done
BASE_COUNT="$(drill_count)"
BASE_LAST="$(drill_last)"
[ "$BASE_COUNT" = 3 ] || fail "baseline has $BASE_COUNT records, expected 3"
ok "baseline: $BASE_COUNT records on th_drill, last id ${BASE_LAST:0:16}…"

# 3. Restart to force a startup backup, then copy it off-host at once.
stop
start
# The banner names the path first; its outcome may still read "in progress" (start waited for it).
BACKUP="$(printf '%s\n' "$BANNER" | sed -n 's/^Backup: *\(.*\) (\(written\|in progress\).*/\1/p')"
[ -n "$BACKUP" ] && [ -f "$BACKUP" ] && [ "$BACKUP_OUTCOME" = written ] || fail "no startup backup written (banner: $BANNER; outcome: $BACKUP_OUTCOME)"
ok "restart wrote the startup backup $BACKUP"
mkdir -p "$OFFSITE"
OFFSITE_COPY="$OFFSITE/hub.db.$(date +%Y%m%d-%H%M%S).bak"
cp "$BACKUP" "$OFFSITE_COPY"
ok "copied it off-host: $OFFSITE_COPY"

# 4. Corrupt the store; startup must fail and say why, leaving the backup alone.
stop
dd if=/dev/zero of="$SYNCROPEL_HOME/hub.db" bs=4096 count=1 conv=notrunc 2>/dev/null
if ERR="$(spl serve --daemon --port "$PORT" 2>&1)"; then
  PIDS+=("$(printf '%s\n' "$ERR" | sed -n 's/^PID: *\([0-9][0-9]*\).*/\1/p')")
  fail "the daemon started on a corrupt store"
fi
printf '%s\n' "$ERR" | grep -q "is damaged" || fail "startup failure does not say the store is damaged: $ERR"
printf '%s\n' "$ERR" | grep -q "spl restore" || fail "startup failure does not give the recovery steps: $ERR"
grep '"level":"ERROR"' "$LOG" | grep -q "SQLite" || fail "no ERROR line with SQLite's error in $LOG"
ok "startup on the corrupt store failed: $(printf '%s\n' "$ERR" | tail -1 | cut -c1-110)…"
cmp -s "$BACKUP" "$OFFSITE_COPY" || fail "the startup backup changed after the failed start"
ok "the startup backup is byte-identical after the failed start"

# 5. Restore from the off-host copy (the corrupt files are moved aside, not deleted).
# A damaged store cannot be read to tell what it holds: restore asks for --force first.
if spl restore "$OFFSITE_COPY" >/dev/null 2>&1; then fail "spl restore replaced an unreadable store without --force"; fi
RESTORE="$(spl restore "$OFFSITE_COPY" --force)" || fail "spl restore --force failed"
printf '%s\n' "$RESTORE" | grep -q "moved aside" || fail "restore did not move the corrupt store aside: $RESTORE"
ls "$SYNCROPEL_HOME"/hub.db.replaced.* >/dev/null 2>&1 || fail "no hub.db.replaced.* kept for forensics"
ok "restored from the off-host copy; corrupt store kept as $(basename "$(ls "$SYNCROPEL_HOME"/hub.db.replaced.* | head -1)")"
start
spl status | grep -q "Status:   ok" || fail "spl status is not ok after the restore"

# 6. Same state as the baseline.
[ "$(drill_count)" = "$BASE_COUNT" ] || fail "restored count $(drill_count) != baseline $BASE_COUNT"
[ "$(drill_last)" = "$BASE_LAST" ] || fail "restored last id $(drill_last) != baseline $BASE_LAST"
ok "state matches baseline ($BASE_COUNT records, same last id)"

# 7. The trap is closed: delete hub.db, start (empty store), restart twice.
stop
mv "$SYNCROPEL_HOME/hub.db" "$ROOT/hub.db.accident"
rm -f "$SYNCROPEL_HOME/hub.db-wal" "$SYNCROPEL_HOME/hub.db-shm"
start
stop
start
stop
start
[ "$(drill_count)" = 0 ] || fail "the empty store unexpectedly holds th_drill records"
grep '"level":"WARN"' "$LOG" | grep -q "store shrank" || fail "no WARN that the store shrank"
BEST="$(grep '"level":"WARN"' "$LOG" | grep "store shrank" | tail -1 | sed 's/.*"best_backup":"\([^"]*\)".*/\1/')"
[ -f "$BEST" ] || fail "the WARN names no existing backup file: $BEST"
ok "after delete + start + 2 restarts the log WARNs: store shrank, restore from $BEST"
stop
spl restore "$BEST" >/dev/null || fail "spl restore $BEST failed"
start
[ "$(drill_count)" = "$BASE_COUNT" ] && [ "$(drill_last)" = "$BASE_LAST" ] || fail "the backup named by the WARN does not hold the baseline"
ok "the good backup survived the trap and restores the baseline"
stop

# 8. Off-host leg, built in: [backup.offsite] to a directory (an NFS/SFTP mount in production),
# continuous by default: a snapshot, then every committed record shipped as it goes. Write more
# records after the snapshot, lose the host the hard way (kill -9, then delete the home AND the
# local backup dir), restore from the remote alone: the snapshot plus the replicated records.
REMOTE="$ROOT/remote"
printf '\n[backup.offsite]\nurl = "file://%s"\nkeep_days = 14\n' "$REMOTE" >> "$SYNCROPEL_HOME/config.toml"
start
PUSH="$(spl backup push)" || fail "spl backup push failed"
COPY_URL="$(printf '%s\n' "$PUSH" | sed -n 's/^Pushed *//p')"
[ -n "$COPY_URL" ] || fail "spl backup push named no copy: $PUSH"
SNAP_SEQ="$(printf '%s\n' "$PUSH" | sed -n 's/.*through seq \([0-9][0-9]*\).*/\1/p')"
spl backup list --remote | grep -qF "$COPY_URL" || fail "spl backup list --remote does not show $COPY_URL"
ok "pushed off-host: $COPY_URL"
for i in 1 2 3; do spl know "drill-after-snapshot-$i" --thread th_drill >/dev/null; done
AFTER_COUNT="$(drill_count)"
AFTER_LAST="$(drill_last)"
for _ in $(seq 1 300); do spl status | grep -q "Replica:  caught up" && break; sleep 0.1; done
spl status | grep -q "Replica:  caught up" || fail "replication did not catch up: $(spl status | grep Replica)"
spl backup list --remote | grep -q "replicated: .*this store is fully off-host" || fail "spl backup list --remote shows no replicated range: $(spl backup list --remote)"
ok "3 more records written after the snapshot; replication caught up ($(spl status | grep Replica | sed 's/^Replica: *//'))"
DAEMON_PID="${PIDS[${#PIDS[@]}-1]}"
kill -9 "$DAEMON_PID"
for _ in $(seq 1 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.05; done
rm -rf "$SYNCROPEL_HOME" "$HOME/.local/share/syncropel/backups"
[ ! -e "$SYNCROPEL_HOME" ] || fail "the home survived the wipe"
ok "host lost: daemon killed with SIGKILL, home and local backups deleted"
RESTORE="$(spl restore "file://$REMOTE")" || fail "spl restore file://$REMOTE failed"
printf '%s\n' "$RESTORE" | grep -q "segments" || fail "the restore used no replicated segments: $RESTORE"
ok "restored from the remote alone: $(printf '%s\n' "$RESTORE" | sed -n 's/^ *point: *//p')"
start
[ "$(drill_count)" = "$AFTER_COUNT" ] && [ "$(drill_last)" = "$AFTER_LAST" ] || fail "the remote does not restore every record ($(drill_count) of $AFTER_COUNT, last $(drill_last))"
ok "every record is back from the remote, including the 3 written after the snapshot ($AFTER_COUNT records, same last id)"
stop
spl restore "file://$REMOTE" --to-seq "$SNAP_SEQ" --force >/dev/null || fail "spl restore --to-seq $SNAP_SEQ (the snapshot's point) failed"
start
[ "$(drill_count)" = "$BASE_COUNT" ] && [ "$(drill_last)" = "$BASE_LAST" ] || fail "--to-seq at the snapshot does not give the baseline back ($(drill_count) records)"
ok "--to-seq at the snapshot's sequence gives the store as it was then ($BASE_COUNT records, same last id)"
stop

echo "recovery drill passed"
