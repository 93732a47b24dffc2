#!/usr/bin/env bash
# Automatic failover drill (README "Automatic failover with etcd"): a three-member etcd cluster
# and three spl daemons, all candidates, on an isolated HOME and non-default ports:
#   SPL=./dist/spl bash drills/failover-etcd.sh     (spl on PORT=24600.., etcd on EPORT=24610..)
#   TRIALS=10 LEASE_TTL=5 SPL=./dist/spl bash drills/failover-etcd.sh     (the figures in the report)
# Each trial, while a loader writes records to every member: kill -9 of the coordinator, then it
# waits until the survivors agree on a new one (the time is printed), issues a freeze on a
# survivor, and restarts the killed member, which follows the new coordinator. At the end: every
# acknowledged record is in its member's store, every freeze is on every member, and `spl fleet
# status` on each names one coordinator with every member live. Exits 0 only if each held; exits
# 0 with "skipped: ..." where etcd is not installed.
set -euo pipefail

if ! command -v etcd >/dev/null 2>&1; then
  echo "skipped: etcd is not installed (Debian: apt-get install etcd-server) — the automatic failover drill needs it"
  exit 0
fi
command -v curl >/dev/null 2>&1 && command -v jq >/dev/null 2>&1 || { echo "skipped: the drill needs curl and jq"; exit 0; }

DRILL=failover-etcd
DEFAULT_PORT=24600
LOG_HOME=.syncro-a
# shellcheck source=drills/fleet-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/fleet-lib.sh"

EPORT="${EPORT:-$((PORT + 10))}"
TRIALS="${TRIALS:-3}"
LEASE_TTL="${LEASE_TTL:-5}"
NAMES=(a b c)
declare -A MPORT MPID
ENDPOINTS=""
for i in 0 1 2; do ENDPOINTS="${ENDPOINTS:+$ENDPOINTS, }\"http://127.0.0.1:$((EPORT + i))\""; done

home() { echo "$HOME/.syncro-$1"; }
on() { local n="$1"; shift; SYNCROPEL_HOME="$(home "$n")" spl "$@"; }
alive() { kill -0 "${MPID[$1]:-0}" 2>/dev/null; }
now() { date +%s.%N; }

# --- etcd: three members on loopback, each with its own data dir, ended by pid at exit.
etcd_start() {
  local i cluster=""
  for i in 0 1 2; do cluster="${cluster:+$cluster,}e$i=http://127.0.0.1:$((EPORT + 3 + i))"; done
  for i in 0 1 2; do
    etcd --name "e$i" --data-dir "$ROOT/etcd-$i" \
      --listen-client-urls "http://127.0.0.1:$((EPORT + i))" --advertise-client-urls "http://127.0.0.1:$((EPORT + i))" \
      --listen-peer-urls "http://127.0.0.1:$((EPORT + 3 + i))" --initial-advertise-peer-urls "http://127.0.0.1:$((EPORT + 3 + i))" \
      --initial-cluster "$cluster" --initial-cluster-token "spl-drill-$$" --initial-cluster-state new \
      --heartbeat-interval 250 --election-timeout 2500 --log-level error >"$ROOT/etcd-$i.log" 2>&1 &
    PIDS+=("$!")
    disown "$!" # the cleanup ends it by pid; no job notice
  done
  local deadline=$((SECONDS + 60))
  for i in 0 1 2; do
    until [ "$(curl -s --max-time 2 "http://127.0.0.1:$((EPORT + i))/health" | jq -r .health 2>/dev/null)" = "true" ]; do
      [ "$SECONDS" -lt "$deadline" ] || fail "etcd member e$i not healthy after 60 s (see $ROOT/etcd-$i.log)"
      sleep 0.2
    done
  done
}

# --- spl members: each its own home, all candidates, one shared join credential.
member_prepare() {
  local n="$1" h
  h="$(home "$n")"
  on "$n" init >/dev/null || fail "spl init for $n failed"
  cat >>"$h/config.toml" <<EOF

[fleet]
name = "$n"
candidate = true
heartbeat_interval_secs = $HEARTBEAT

[fleet.etcd]
endpoints = [$ENDPOINTS]
prefix = "/spl-drill/$$"
lease_ttl_secs = $LEASE_TTL
EOF
  mkdir -p "$h/secrets"
  printf '%s\n' "$JOIN" >"$h/secrets/fleet_token"
  chmod 600 "$h/secrets/fleet_token"
}

member_start() {
  local n="$1" out
  out="$(on "$n" serve --daemon --port "${MPORT[$n]}" 2>&1)" || fail "spl serve --daemon for $n failed: $out"
  MPID[$n]="$(printf '%s\n' "$out" | sed -n 's/^PID: *\([0-9][0-9]*\).*/\1/p')"
  PIDS+=("${MPID[$n]}")
}

# self NAME: "role epoch coordinator-name" as the member says (over its socket), or "down".
self() {
  local n="$1"
  alive "$n" || { echo down; return; }
  curl -s --max-time 3 --unix-socket "$(home "$n")/run/spl.sock" http://localhost/v1/fleet/member |
    jq -r '"\(.role) \(.epoch) \(.election.coordinator.name // "none")@\(.election.coordinator.epoch // 0)"' 2>/dev/null || echo "no-answer"
}

# agreed SECS NAME...: until those members name one coordinator that says it coordinates at that
# epoch; prints "name epoch". After SECS it says what each member said, and fails.
agreed() {
  local secs="$1"; shift
  local deadline=$((SECONDS + secs)) n seen named c role epoch rest
  while :; do
    seen="" named=""
    for n in "$@"; do
      read -r role epoch rest <<<"$(self "$n")"
      seen="$seen $n=[$role $epoch $rest]"
      case " $named " in *" $rest "*) ;; *) named="$named $rest" ;; esac
    done
    named="${named# }"
    if [ "${named#none}" = "$named" ] && [ "${named// /}" = "$named" ]; then
      c="${named%@*}" epoch="${named#*@}"
      read -r role rest _ <<<"$(self "$c")"
      if [ "$role" = coordinator ] && [ "$rest" = "$epoch" ]; then echo "$c $epoch"; return 0; fi
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "  waited ${secs} s for$(printf ' %s' "$@") to agree on one coordinator; last saw:$seen" >&2
      return 1
    fi
    sleep 0.05
  done
}

# --- the loader: a KNOW record to each running member in turn; each acknowledged id is kept.
load() {
  local i=0 n id
  while [ -e "$ROOT/loading" ]; do
    for n in "${NAMES[@]}"; do
      id="$(curl -s --max-time 3 --unix-socket "$(home "$n")/run/spl.sock" -H 'content-type: application/json' \
        -d "{\"act\":\"KNOW\",\"actor\":\"did:sync:user:drill\",\"thread\":\"th_drill_load\",\"body\":{\"text\":\"load $i\"}}" \
        http://localhost/v1/records 2>/dev/null | jq -r '.id // empty' 2>/dev/null || true)"
      [ -n "$id" ] && echo "$id" >>"$ROOT/acked-$n"
      i=$((i + 1))
    done
    sleep 0.05
  done
}

JOIN="spl_join_$(openssl rand -hex 8)_$(openssl rand -hex 24)"
echo "automatic failover drill: $("$SPL" version) · $TRIALS trials · lease_ttl_secs $LEASE_TTL · spl on $PORT.., etcd on $EPORT.."
etcd_start
ok "etcd up: three members on 127.0.0.1:$EPORT..$((EPORT + 2))"
for i in 0 1 2; do MPORT[${NAMES[$i]}]=$((PORT + i)); member_prepare "${NAMES[$i]}"; done
member_start a
out="$(agreed 60 a)" || fail "a was not elected"
member_start b
member_start c
out="$(agreed 60 a b c)" || fail "the three members did not agree on a coordinator"
read -r COORD EPOCH <<<"$out"
ok "fleet up: $COORD elected at epoch $EPOCH, followed by all three"

touch "$ROOT/loading"
load &
LOADER=$!
FIGURES=()
FREEZES=()
for t in $(seq 1 "$TRIALS"); do
  survivors=()
  for n in "${NAMES[@]}"; do [ "$n" = "$COORD" ] || survivors+=("$n"); done
  t0="$(now)"
  kill -9 "${MPID[$COORD]}"
  out="$(agreed $((LEASE_TTL * 6 + 30)) "${survivors[@]}")" || fail "trial $t: no new coordinator among ${survivors[*]}"
  read -r NEXT NEXT_EPOCH <<<"$out"
  secs="$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')"
  [ "$NEXT_EPOCH" -gt "$EPOCH" ] || fail "trial $t: the new epoch $NEXT_EPOCH is not above $EPOCH"
  FIGURES+=("$secs")
  on "$NEXT" kill --namespace "drill-$t" --reason "drill trial $t" >/dev/null || fail "trial $t: spl kill on $NEXT failed"
  FREEZES+=("drill-$t")
  member_start "$COORD"
  out="$(agreed 60 "${NAMES[@]}")" || fail "trial $t: $COORD did not come back as a follower"
  read -r C2 EPOCH <<<"$out"
  [ "$C2" = "$NEXT" ] || fail "trial $t: $C2 coordinates after $COORD came back, expected $NEXT"
  ok "trial $t: kill -9 of $COORD → $NEXT elected at epoch $NEXT_EPOCH in ${secs} s; $COORD back as its worker"
  COORD="$NEXT"
done
rm -f "$ROOT/loading"
wait "$LOADER" || true

# Every acknowledged record is in its member's store (the killed ones included).
total=0
for n in "${NAMES[@]}"; do
  [ -f "$ROOT/acked-$n" ] || fail "the loader got no record acknowledged by $n"
  while read -r id; do
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --unix-socket "$(home "$n")/run/spl.sock" "http://localhost/v1/records/$id")"
    [ "$code" = 200 ] || fail "record $id, acknowledged by $n, is not in its store (HTTP $code)"
    total=$((total + 1))
  done <"$ROOT/acked-$n"
done
ok "$total records acknowledged under load, every one in its member's store"

# Every freeze issued after a failover is on every member; fleet status on each names the coordinator.
for n in "${NAMES[@]}"; do
  deadline=$((SECONDS + 60))
  until got="$(curl -s --max-time 3 --unix-socket "$(home "$n")/run/spl.sock" http://localhost/v1/fleet/member | jq -r '[.freezes[].namespace] | sort | join(",")')" &&
    [ "$got" = "$(printf '%s\n' "${FREEZES[@]}" | sort | paste -sd,)" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$n holds freezes [$got], expected [${FREEZES[*]}]"
    sleep 0.1
  done
  deadline=$((SECONDS + 60))
  until st="$(on "$n" fleet status 2>&1)" && printf '%s\n' "$st" | grep -q "^  Elected:          $COORD, epoch $EPOCH," && printf '%s\n' "$st" | grep -q "3 live"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "spl fleet status on $n does not name $COORD at epoch $EPOCH with 3 live:
$st"
    sleep 0.2
  done
done
ok "every member holds the ${#FREEZES[@]} freezes; spl fleet status on each: $COORD, epoch $EPOCH, 3 live"

sorted="$(printf '%s\n' "${FIGURES[@]}" | sort -n)"
median="$(printf '%s\n' "$sorted" | awk '{ a[NR] = $1 } END { print a[int(NR / 2) + 1] }')"
max="$(printf '%s\n' "$sorted" | tail -1)"
echo "time to a new coordinator after kill -9 (lease_ttl_secs $LEASE_TTL), $TRIALS trials: median ${median} s, max ${max} s (${FIGURES[*]})"
awk -v m="$max" -v t="$LEASE_TTL" 'BEGIN { exit !(m <= t + 5) }' || fail "the slowest failover took ${max} s, over lease_ttl_secs + 5 s"
echo "automatic failover drill passed"
