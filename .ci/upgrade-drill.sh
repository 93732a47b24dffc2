#!/usr/bin/env bash
# Builds the two release trees the upgrade drills compare, then runs drills/upgrade.sh and
# drills/fleet-upgrade.sh on them.
# OLD is the newest git tag built from git when a tag exists; otherwise this tree under a lower
# version number. NEW is this tree.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="$(mktemp -d "${TMPDIR:-/tmp}/spl-ci-upgrade.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

NEW_V="$(bun -e 'console.log(require("./package.json").version)')"
TAG="$(git describe --tags --abbrev=0 2>/dev/null || true)"
if [ -n "$TAG" ]; then
  OLD_V="${TAG#v}"
  echo "upgrade drill: previous release $TAG (built from git) → this tree"
  mkdir -p "$WORK/old-src"
  git archive "$TAG" | tar -x -C "$WORK/old-src"
  (cd "$WORK/old-src" && bun install --frozen-lockfile >/dev/null && bun .ci/release.ts --out "$WORK/old" --version "$OLD_V" >/dev/null)
  # A tag at this very version: give the tree the next patch number so the two differ.
  if [ "$(bun -e "console.log(Bun.semver.order('$OLD_V', '$NEW_V'))")" != "-1" ]; then
    NEW_V="$(echo "$OLD_V" | awk -F. '{ printf "%d.%d.%d", $1, $2, $3 + 1 }')"
  fi
else
  OLD_V="$NEW_V-drill.previous"
  echo "upgrade drill: no git tag yet; this tree built twice ($OLD_V → $NEW_V)"
  bun .ci/release.ts --out "$WORK/old" --version "$OLD_V" >/dev/null
fi
bun .ci/release.ts --out "$WORK/new" --version "$NEW_V" >/dev/null
bash drills/upgrade.sh "$WORK/old" "$WORK/new"
bash drills/fleet-upgrade.sh "$WORK/old" "$WORK/new"
