#!/usr/bin/env bash
# Fleet across hosts drill (README "Fleet": three hosts by hand), end to end, as the README writes
# it: a private CA and a certificate per host made with openssl, `spl init` and the [server] TLS
# keys on each host, `spl fleet coordinate` on the coordinator, `spl fleet join` + `spl serve
# --daemon` on two workers, then `spl fleet list` (3 live, from the coordinator and from a worker
# over HTTPS), a kill from a worker reaching every member, and `spl doctor` with every fleet row ✓.
#   SPL=./dist/spl bash drills/fleet-hosts.sh
# The hosts are Linux network namespaces joined by a bridge, named coordinator.fleet.test,
# worker-a.fleet.test and worker-b.fleet.test in each namespace's own /etc/hosts (ip netns exec
# gives /etc/netns/<ns>/hosts to the commands it runs). Needs root, iproute2 and openssl; where
# namespaces cannot be made it says why and exits 0 (skipped). Removes what it made on exit.
set -euo pipefail

SPL="${SPL:-./dist/spl}"
case "$SPL" in /*) ;; *) SPL="$(cd "$(dirname "$SPL")" && pwd)/$(basename "$SPL")" ;; esac
[ -x "$SPL" ] || { echo "✗ no spl binary at $SPL (set SPL=path/to/spl)" >&2; exit 1; }

skip() { echo "fleet hosts drill skipped: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "network namespaces need root"
command -v ip >/dev/null || skip "no iproute2 'ip'"
command -v openssl >/dev/null || skip "no openssl to make the private CA"
TAG="$(head -c2 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ip netns add "splprobe$TAG" 2>/dev/null || skip "cannot create a network namespace here"
ip netns del "splprobe$TAG"

ROOT="$(mktemp -d "${TMPDIR:-/tmp}/spl-fleet-hosts-drill.XXXXXX")"
BRIDGE="bh$TAG"
SUBNET="10.$((150 + RANDOM % 50)).$((RANDOM % 250))"
HOSTS=(coordinator worker-a worker-b)
ns_of() { echo "splh$TAG-$1"; }
ip_of() { case "$1" in coordinator) echo "$SUBNET.2" ;; worker-a) echo "$SUBNET.3" ;; worker-b) echo "$SUBNET.4" ;; esac; }
name_of() { echo "$1.fleet.test"; }
home_of() { echo "$ROOT/$1"; }
LOG="$ROOT/coordinator/.syncro/logs/spl.log"

# The daemons in the namespaces are this drill's: the cleanup ends them by pid, then removes
# the namespaces, their /etc/netns files and the bridge.
drill_teardown() {
  local h pids=()
  for h in "${HOSTS[@]}"; do pids+=($(ip netns pids "$(ns_of "$h")" 2>/dev/null)); done
  end_pids "${pids[@]:-}"
  for h in "${HOSTS[@]}"; do
    ip netns del "$(ns_of "$h")" 2>/dev/null || true
    ip link del "v$TAG${h: -1}" 2>/dev/null || true
    rm -rf "/etc/netns/$(ns_of "$h")"
  done
  ip link del "$BRIDGE" 2>/dev/null || true
}
# shellcheck source=drills/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# on HOST CMD...: a command on that host (its namespace, its HOME and SYNCROPEL_HOME).
on() {
  local h="$1"; shift
  ip netns exec "$(ns_of "$h")" env -i PATH="$PATH" HOME="$(home_of "$h")" SYNCROPEL_HOME="$(home_of "$h")/.syncro" USER=root "$@"
}
spl_on() { local h="$1"; shift; on "$h" "$SPL" "$@"; }

# 0. The hosts: a bridge, a namespace each with its address, and the three names in its /etc/hosts.
ip link add "$BRIDGE" type bridge && ip addr add "$SUBNET.1/24" dev "$BRIDGE" && ip link set "$BRIDGE" up
for h in "${HOSTS[@]}"; do
  ns="$(ns_of "$h")"; veth="v$TAG${h: -1}"
  ip netns add "$ns"
  ip link add "$veth" type veth peer name "${veth}p"
  ip link set "${veth}p" netns "$ns"
  ip link set "$veth" master "$BRIDGE" && ip link set "$veth" up
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" ip addr add "$(ip_of "$h")/24" dev "${veth}p"
  ip netns exec "$ns" ip link set "${veth}p" up
  mkdir -p "/etc/netns/$ns" "$(home_of "$h")"
  { echo "127.0.0.1 localhost"; for o in "${HOSTS[@]}"; do echo "$(ip_of "$o") $(name_of "$o")"; done; } > "/etc/netns/$ns/hosts"
done
ok "three hosts: $(for h in "${HOSTS[@]}"; do printf '%s=%s ' "$(name_of "$h")" "$(ip_of "$h")"; done)"

# 1-2. The README's openssl commands: a private CA, a certificate per host name.
PKI="$ROOT/pki"; mkdir -p "$PKI"
(
  cd "$PKI"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
    -days 825 -subj "/CN=spl fleet CA" 2>/dev/null
  for h in coordinator.fleet.test worker-a.fleet.test worker-b.fleet.test; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $h.key -out $h.csr -subj "/CN=$h" 2>/dev/null
    printf 'subjectAltName=DNS:%s\n' $h > $h.ext
    openssl x509 -req -in $h.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $h.pem -days 825 -extfile $h.ext 2>/dev/null
  done
) || fail "openssl could not make the CA and the certificates"
ok "private CA and one certificate per host (openssl)"

# 3. spl init on each host, and the [server] TLS keys.
for h in "${HOSTS[@]}"; do
  spl_on "$h" init >/dev/null || fail "spl init on $h failed"
  cfg="$(home_of "$h")/.syncro/config.toml"
  sed -i "s|^\[server\]$|[server]\ntls_cert_file = \"$PKI/$(name_of "$h").pem\"\ntls_key_file = \"$PKI/$(name_of "$h").key\"|" "$cfg"
  grep -q '^tls_cert_file' "$cfg" || fail "no tls_cert_file in $cfg"
done
ok "spl init and [server] tls_cert_file / tls_key_file on each host"

# 4. The coordinator, in one step.
COORD="https://$(name_of coordinator):9100"
out="$(spl_on coordinator fleet coordinate --advertise "$COORD" --heartbeat 1 --ca-file "$PKI/ca.pem" 2>&1)" || fail "spl fleet coordinate failed: $out"
grep -qF "This home coordinates the fleet at $COORD" <<<"$out" || fail "coordinate did not say it coordinates: $out"
JOIN="$(printf '%s\n' "$out" | sed -n 's/^  \(spl_join_[A-Za-z0-9_]*\)$/\1/p')"
[ -n "$JOIN" ] || fail "coordinate printed no join credential: $out"
ok "spl fleet coordinate --advertise $COORD --ca-file ca.pem (epoch 1, join credential printed)"

# 5. Each worker joins and starts.
for h in worker-a worker-b; do
  printf '%s\n' "$JOIN" > "$(home_of "$h")/join_token"; chmod 600 "$(home_of "$h")/join_token"
  out="$(spl_on "$h" fleet join "$COORD" --name "$h" --token-file "$(home_of "$h")/join_token" \
    --ca-file "$PKI/ca.pem" --advertise "https://$(name_of "$h"):9100" 2>&1)" || fail "spl fleet join on $h failed: $out"
  grep -qF "Joined the fleet of $COORD as '$h'" <<<"$out" || fail "join on $h: $out"
  spl_on "$h" serve --daemon >/dev/null || fail "spl serve --daemon on $h failed"
done
ok "spl fleet join + spl serve --daemon on worker-a and worker-b"

# 6. Check: 3 live, seen from the coordinator and from a worker over HTTPS.
live() { grep -qF "  3 live · 0 stale · 0 archived" <<<"$(spl_on "$1" fleet list 2>/dev/null)"; }
for _ in $(seq 1 150); do live coordinator && break; sleep 0.2; done
live coordinator || fail "the coordinator does not list 3 live: $(spl_on coordinator fleet list 2>&1)"
live worker-a || fail "worker-a does not see 3 live over HTTPS: $(spl_on worker-a fleet list 2>&1)"
ok "spl fleet list: 3 live, on the coordinator and on worker-a (HTTPS, member credential)"

# A kill from a worker reaches every member.
out="$(spl_on worker-b kill --namespace drill --reason "fleet hosts drill" 2>&1)" || fail "spl kill on worker-b failed: $out"
grep -qF "forwarded to the coordinator" <<<"$out" || fail "worker-b's kill was not forwarded: $out"
refused() { ! spl_on "$1" intend "drill work" --body '{"namespace":"drill"}' >/dev/null 2>&1; }
for h in "${HOSTS[@]}"; do
  for _ in $(seq 1 50); do refused "$h" && break; sleep 0.2; done
  refused "$h" || fail "$h still accepts work in the frozen namespace"
done
spl_on coordinator unkill --namespace drill >/dev/null || fail "spl unkill failed"
ok "spl kill on worker-b: every host refuses new work in 'drill'; spl unkill lifts it"

for h in "${HOSTS[@]}"; do
  doc="$(spl_on "$h" doctor 2>&1)" || true
  rows="$(grep -E '^  [✓!✗] fleet ' <<<"$doc" || true)"
  [ -n "$rows" ] || fail "spl doctor on $h shows no fleet rows"
  grep -v '^  ✓' <<<"$rows" >/dev/null && fail "spl doctor on $h has fleet rows that are not ✓:
$rows"
done
ok "spl doctor on each host: every fleet row ✓"

for h in worker-b worker-a coordinator; do spl_on "$h" serve --stop >/dev/null || fail "spl serve --stop on $h failed"; done
echo "fleet hosts drill passed"
