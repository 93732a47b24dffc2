#!/usr/bin/env bash
# Docker smoke drill: build the image from this repo and check it the way an operator would.
#   bash drills/docker-smoke.sh
# Checks: the container reaches (healthy); /health reports the image's version and a store under
# /syncropel; the CLI works through `docker exec`; a record survives a container restart on the
# same named volume; `docker stop` (SIGTERM through tini) exits 0.
# Without a Docker engine it prints "skipped: no Docker engine" and exits 0.
# Environment: SPL_SMOKE_PORT (host port, default 19173).
# Everything it creates carries a unique name and is removed on exit.
set -euo pipefail

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
  echo "skipped: no Docker engine"
  exit 0
fi

REPO=$(cd "$(dirname "$0")/.." && pwd)
ID="spl-smoke-$$-$RANDOM"
IMAGE="$ID:latest"
NAME="$ID"
VOLUME="$ID-home"
PORT="${SPL_SMOKE_PORT:-19173}"
TOKEN="smoke-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

cleanup() {
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  docker volume rm "$VOLUME" >/dev/null 2>&1 || true
  docker image rm "$IMAGE" >/dev/null 2>&1 || true
}
trap cleanup EXIT

ok() { echo "✓ $*"; }
fail() {
  echo "✗ $*" >&2
  docker logs --tail 50 "$NAME" >&2 2>&1 || true
  exit 1
}

# Wait for the HEALTHCHECK to report healthy; give up if the container stops.
wait_healthy() {
  local status
  for _ in $(seq 1 90); do
    status=$(docker ps --all --filter "name=^${NAME}\$" --format '{{.Status}}')
    case "$status" in
      *"(healthy)"*) return 0 ;;
      Exited*) fail "container exited: $status" ;;
    esac
    sleep 1
  done
  fail "container not healthy after 90s (status: $status)"
}

echo "building $IMAGE from $REPO"
docker build -t "$IMAGE" "$REPO"
reported=$(docker run --rm "$IMAGE" version)
VERSION="${reported#spl }"
[[ "$reported" == "spl $VERSION" && -n "$VERSION" ]] || fail "image 'spl version' printed '$reported'"
ok "image built: $reported"

docker run -d --name "$NAME" -p "127.0.0.1:$PORT:9100" -v "$VOLUME:/syncropel" \
  -e SPL_BOOTSTRAP_TOKEN="$TOKEN" "$IMAGE" >/dev/null
wait_healthy
ok "container healthy"

[[ "$(docker exec "$NAME" id -u)" == 10001 ]] || fail "daemon is not running as uid 10001"
ok "runs as uid 10001"

health=$(curl -fsS "http://127.0.0.1:$PORT/health") || fail "GET /health failed"
grep -Eq "\"version\"[[:space:]]*:[[:space:]]*\"$VERSION\"" <<<"$health" ||
  fail "/health does not report version $VERSION: $health"
grep -q '"/syncropel/' <<<"$health" || fail "/health does not show a store path under /syncropel: $health"
ok "/health reports $VERSION and a store under /syncropel"

status=$(docker exec "$NAME" spl status) || fail "docker exec spl status failed: $status"
grep -Eq 'Status:[[:space:]]+ok' <<<"$status" || fail "spl status is not ok: $status"
ok "docker exec spl status: ok"

docker exec "$NAME" spl know "smoke" --thread th_smoke >/dev/null || fail "spl know failed"
before=$(docker exec "$NAME" spl thread records th_smoke -o json) || fail "spl thread records failed"
grep -q smoke <<<"$before" || fail "record not found after write: $before"
ok "record written to th_smoke"

docker restart "$NAME" >/dev/null
wait_healthy
after=$(docker exec "$NAME" spl thread records th_smoke -o json) || fail "spl thread records failed after restart"
[[ "$after" == "$before" ]] || fail "records changed across restart: before=$before after=$after"
ok "record survived a container restart on volume $VOLUME"

docker stop --time 10 "$NAME" >/dev/null
code=$(docker inspect -f '{{.State.ExitCode}}' "$NAME")
[[ "$code" == 0 ]] || fail "container exited $code on SIGTERM, expected 0"
ok "docker stop: clean exit 0"

echo "docker smoke passed"
