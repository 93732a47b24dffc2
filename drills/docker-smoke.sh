#!/usr/bin/env bash
# Container smoke drill: build the image from this repo and check it the way an operator would.
#   bash drills/docker-smoke.sh
# Engine: SPL_SMOKE_ENGINE (docker, podman or buildah) if set; else Docker when its daemon
# answers, else Podman, else Buildah (build, labels and `spl version` only).
# Checks: the base images pull; the image builds with the commit as a build arg and carries the
# OCI labels; the container reaches (healthy) with the README's `docker run` options
# (--stop-timeout, SPL_BOOTSTRAP_TOKEN_FILE from a mounted secret); /health reports the image's
# version and a store under /syncropel; the CLI works through `exec`; a record survives a restart
# on the same named volume; `stop` (SIGTERM through tini) exits 0.
# Skips (exit 0) saying why: no engine, or a base image that cannot be pulled (named).
# Environment: SPL_SMOKE_PORT (host port, default 19173), SPL_SMOKE_ENGINE.
# Everything it creates carries a unique name and is removed on exit.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)

if [[ -n "${SPL_SMOKE_ENGINE:-}" ]]; then
  ENGINE="$SPL_SMOKE_ENGINE"
  case "$ENGINE" in docker | podman | buildah) ;; *) echo "error: SPL_SMOKE_ENGINE=$ENGINE — use docker, podman or buildah" >&2; exit 2 ;; esac
  command -v "$ENGINE" >/dev/null 2>&1 || { echo "skipped: SPL_SMOKE_ENGINE=$ENGINE is not installed"; exit 0; }
else
  ENGINE=""
  command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 && ENGINE=docker
  for e in podman buildah; do [[ -z "$ENGINE" ]] && command -v "$e" >/dev/null 2>&1 && ENGINE="$e"; done
  [[ -n "$ENGINE" ]] || { echo "skipped: no container engine (docker with a running daemon, podman or buildah)"; exit 0; }
fi
if [[ "$ENGINE" == docker ]] && ! docker info >/dev/null 2>&1; then
  echo "skipped: docker is installed but its daemon does not answer (start it, or use SPL_SMOKE_ENGINE=podman)"
  exit 0
fi
echo "engine: $ENGINE"

# The base images, as the Dockerfile names them once its ARG defaults are filled in.
base_images() {
  awk '
    /^ARG [A-Z_]+=/ { split($2, kv, "="); args[kv[1]] = kv[2] }
    /^FROM / {
      img = $2
      for (k in args) gsub("\\$\\{" k "\\}", args[k], img)
      print img
    }' "$REPO/Dockerfile"
}
for image in $(base_images); do
  # Bounded: a registry that hangs must not hold CI.
  if ! out=$(timeout 300 "$ENGINE" pull "docker.io/$image" 2>&1); then
    echo "skipped: cannot pull base image docker.io/$image with $ENGINE (no registry access?): $(tail -n 1 <<<"$out")"
    exit 0
  fi
done

ID="spl-smoke-$$-$RANDOM"
IMAGE="localhost/$ID:latest"
NAME="$ID"
VOLUME="$ID-home"
PORT="${SPL_SMOKE_PORT:-19173}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/spl-smoke.XXXXXX")
COMMIT="smoke$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"

cleanup() {
  if [[ "$ENGINE" == buildah ]]; then
    buildah rm "$NAME" >/dev/null 2>&1 || true
    buildah rmi "$IMAGE" >/dev/null 2>&1 || true
  else
    "$ENGINE" rm -f "$NAME" >/dev/null 2>&1 || true
    "$ENGINE" volume rm "$VOLUME" >/dev/null 2>&1 || true
    "$ENGINE" image rm "$IMAGE" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

ok() { echo "✓ $*"; }
fail() {
  echo "✗ $*" >&2
  [[ "$ENGINE" == buildah ]] || "$ENGINE" logs --tail 50 "$NAME" >&2 2>&1 || true
  exit 1
}

echo "building $IMAGE from $REPO"
if [[ "$ENGINE" == buildah ]]; then
  buildah bud --build-arg SPL_COMMIT="$COMMIT" -t "$IMAGE" "$REPO"
  label() { buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$1\"}}" "$IMAGE"; }
else
  "$ENGINE" build --build-arg SPL_COMMIT="$COMMIT" -t "$IMAGE" "$REPO"
  label() { "$ENGINE" image inspect --format "{{index .Config.Labels \"$1\"}}" "$IMAGE"; }
fi
VERSION=$(label org.opencontainers.image.version)
[[ -n "$VERSION" ]] || fail "no org.opencontainers.image.version label"
[[ "$(label org.opencontainers.image.revision)" == "$COMMIT" ]] || fail "revision label is not the build arg $COMMIT"
[[ -n "$(label org.opencontainers.image.source)" ]] || fail "no org.opencontainers.image.source label"
ok "image built; labels: version $VERSION, revision $COMMIT"

if [[ "$ENGINE" == buildah ]]; then
  buildah from --name "$NAME" "$IMAGE" >/dev/null
  reported=$(buildah run "$NAME" -- /usr/local/bin/spl version)
  [[ "$reported" == "spl $VERSION" ]] || fail "'spl version' in the image printed '$reported'"
  ok "spl version in the image: $reported"
  echo "container smoke passed (build only: running the container needs docker or podman)"
  exit 0
fi

reported=$("$ENGINE" run --rm "$IMAGE" version)
[[ "$reported" == "spl $VERSION" ]] || fail "image 'spl version' printed '$reported', label says $VERSION"
json=$("$ENGINE" run --rm "$IMAGE" version -o json)
grep -q "\"commit\": *\"$COMMIT\"" <<<"$json" || fail "the binary's commit is not the build arg $COMMIT: $json"
ok "image runs: $reported, commit $COMMIT"

# Docker runs HEALTHCHECK on its own; Podman without systemd timers only when asked.
healthy() {
  if [[ "$ENGINE" == podman ]]; then
    podman healthcheck run "$NAME" >/dev/null 2>&1
  else
    [[ "$(docker inspect -f '{{.State.Health.Status}}' "$NAME")" == healthy ]]
  fi
}
wait_healthy() {
  local state
  for _ in $(seq 1 90); do
    healthy && return 0
    state=$("$ENGINE" inspect -f '{{.State.Status}}' "$NAME")
    [[ "$state" == exited ]] && fail "container exited"
    sleep 1
  done
  fail "container not healthy after 90s (state: $state)"
}

od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$WORK/admin_token"
chmod 644 "$WORK/admin_token" # read by uid 10001 in the container
TOKEN=$(cat "$WORK/admin_token")
"$ENGINE" run -d --name "$NAME" -p "127.0.0.1:$PORT:9100" --stop-timeout 30 \
  -v "$WORK/admin_token:/run/secrets/admin_token:ro" -e SPL_BOOTSTRAP_TOKEN_FILE=/run/secrets/admin_token \
  -v "$VOLUME:/syncropel" "$IMAGE" >/dev/null
wait_healthy
ok "container healthy"

[[ "$("$ENGINE" exec "$NAME" id -u)" == 10001 ]] || fail "daemon is not running as uid 10001"
ok "runs as uid 10001"

health=$(curl -fsS "http://127.0.0.1:$PORT/health") || fail "GET /health failed"
grep -Eq "\"version\"[[:space:]]*:[[:space:]]*\"$VERSION\"" <<<"$health" ||
  fail "/health does not report version $VERSION: $health"
grep -q '"/syncropel/' <<<"$health" || fail "/health does not show a store path under /syncropel: $health"
ok "/health reports $VERSION and a store under /syncropel"

code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/v1/status")
[[ "$code" == 200 ]] || fail "the token from SPL_BOOTSTRAP_TOKEN_FILE was refused (HTTP $code)"
ok "SPL_BOOTSTRAP_TOKEN_FILE: the mounted secret is an admin token"

status=$("$ENGINE" exec "$NAME" spl status) || fail "exec spl status failed: $status"
grep -Eq 'Status:[[:space:]]+ok' <<<"$status" || fail "spl status is not ok: $status"
ok "exec spl status: ok"

"$ENGINE" exec "$NAME" spl know "smoke" --thread th_smoke >/dev/null || fail "spl know failed"
before=$("$ENGINE" exec "$NAME" spl thread records th_smoke -o json) || fail "spl thread records failed"
grep -q smoke <<<"$before" || fail "record not found after write: $before"
ok "record written to th_smoke"

"$ENGINE" restart "$NAME" >/dev/null
wait_healthy
after=$("$ENGINE" exec "$NAME" spl thread records th_smoke -o json) || fail "spl thread records failed after restart"
[[ "$after" == "$before" ]] || fail "records changed across restart: before=$before after=$after"
ok "record survived a container restart on volume $VOLUME"

"$ENGINE" stop "$NAME" >/dev/null
code=$("$ENGINE" inspect -f '{{.State.ExitCode}}' "$NAME")
[[ "$code" == 0 ]] || fail "container exited $code on SIGTERM, expected 0"
ok "stop: clean exit 0 (stop timeout from --stop-timeout 30)"

echo "container smoke passed"
