# Shared by the upgrade drills (sourced, not run). The caller sets RELEASES (an empty directory)
# and HERE (drills/), and has fail() from lib.sh. Provides add_release, which merges a release
# tree (or a bare spl binary) into $RELEASES, publish_latest, and install V: the runbook's
# `curl -sSf <host>/install.sh | sh`, pinned to V, into $INSTALL_DIR.

# add_release IN → prints the version it added. A tree contributes its version dirs; a binary
# gets a version dir and checksum made for it.
add_release() {
  local in="$1" v
  mkdir -p "$RELEASES"
  if [ -d "$in" ]; then
    v="$(sed -n 's/.*"version" *: *"\([^"]*\)".*/\1/p' "$in/latest/version.json" | head -1)"
    [ -n "$v" ] && [ -f "$in/$v/spl-linux-x64" ] || fail "$in is not a release tree (no latest/version.json naming a <version>/spl-linux-x64)"
    cp -R "$in/$v" "$RELEASES/"
    [ -f "$in/install.sh" ] && cp "$in/install.sh" "$RELEASES/install.sh"
  else
    [ -x "$in" ] || fail "$in is neither a release tree nor an executable spl binary"
    v="$("$in" version | sed -n 's/^spl //p')"
    [ -n "$v" ] || fail "$in version did not print 'spl <version>'"
    mkdir -p "$RELEASES/$v"
    cp "$in" "$RELEASES/$v/spl-linux-x64"
    (cd "$RELEASES/$v" && sha256sum spl-linux-x64 > spl-linux-x64.sha256)
  fi
  echo "$v"
}

# publish_latest V: latest/version.json names V, install.sh is in the tree, SPL_RELEASES_URL points at it.
publish_latest() {
  mkdir -p "$RELEASES/latest"
  [ -f "$RELEASES/install.sh" ] || cp "$HERE/../install.sh" "$RELEASES/install.sh"
  printf '{"version":"%s"}\n' "$1" > "$RELEASES/latest/version.json"
  export SPL_RELEASES_URL="file://$RELEASES"
}

install() {
  local out
  out="$(curl -sSf "$SPL_RELEASES_URL/install.sh" | sh -s -- --version "$1" 2>&1)" || fail "install.sh --version $1 failed: $out"
  [ "$("$INSTALL_DIR/spl" version)" = "spl $1" ] || fail "after installing $1, $INSTALL_DIR/spl version says '$("$INSTALL_DIR/spl" version)'"
}
