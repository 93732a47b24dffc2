#!/bin/sh
# spl installer (POSIX sh).
#
#   curl -sSf https://get.syncropic.com/spl-releases/install.sh | sh
#   curl -sSf https://get.syncropic.com/spl-releases/install.sh | sh -s -- --version 0.1.0
#   SPL_VERSION=0.1.0 sh install.sh
#
# Environment:
#   SPL_RELEASES_URL  base URL of the release tree written by `bun run release`
#                     (<base>/<version>/spl-linux-x64[.sha256], <base>/latest/version.json).
#                     Default: https://get.syncropic.com/spl-releases
#   SPL_VERSION       install this version instead of the latest one.
#   INSTALL_DIR       where `spl` goes. Default: $HOME/.local/bin
#
# Version choice, first match wins: --version X, a pin baked in by the host (below),
# SPL_VERSION, then <base>/latest/version.json.
#
# Baked pins: a host serving `install.sh?v=X` replaces the empty value on the line
# `SPL_PINNED_VERSION=""` below with X (only after checking X matches [0-9A-Za-z.+-]+), so that
# `curl -sSf "<host>/install.sh?v=X" | sh` installs X. Nothing else in the script changes, e.g.:
#   sed 's/^SPL_PINNED_VERSION=""$/SPL_PINNED_VERSION="0.1.0"/' install.sh
#
# Safety: the binary is downloaded into a temp file inside INSTALL_DIR, its SHA-256 is checked,
# it must answer `version` with `spl <version>`, and only then is it renamed over INSTALL_DIR/spl.
# rename(2) is atomic on one filesystem, so a running `spl` or a concurrent exec sees either the old
# file or the new one, never a partial file. Any failure leaves the old binary untouched.

SPL_PINNED_VERSION=""

set -u

DEFAULT_RELEASES_URL="https://get.syncropic.com/spl-releases"

tmp=""

say() { printf 'spl install: %s\n' "$*"; }

# One line on stderr saying what failed and what to do, then exit non-zero (the trap cleans up).
die() {
  printf 'spl install: error: %s\n' "$*" >&2
  exit 1
}

cleanup() {
  if [ -n "$tmp" ]; then
    rm -f "$tmp" "$tmp.sha256" "$tmp.json"
  fi
}

# download URL FILE: writes FILE, returns non-zero on any failure (HTTP errors included) and
# leaves a short reason in dl_reason.
dl_reason=""
download() {
  dl_reason=""
  if [ "$downloader" = curl ]; then
    http_code=$(curl -fsSL --connect-timeout 15 -w '%{http_code}' -o "$2" "$1" 2>/dev/null)
    rc=$?
    case $rc in
      0) return 0 ;;
      6) dl_reason="cannot resolve the host name" ;;
      7) dl_reason="cannot connect to the server" ;;
      18) dl_reason="the download was cut off part-way" ;;
      22) dl_reason="the server answered HTTP $http_code" ;;
      28) dl_reason="the connection timed out" ;;
      35 | 51 | 58 | 60) dl_reason="TLS/certificate error (curl exit $rc)" ;;
      *) dl_reason="curl failed with exit code $rc" ;;
    esac
  else
    wget -q -O "$2" "$1" >/dev/null 2>&1
    rc=$?
    case $rc in
      0) return 0 ;;
      4) dl_reason="network failure (cannot connect, or the download was cut off)" ;;
      5) dl_reason="TLS/certificate error" ;;
      8) dl_reason="the server answered with an HTTP error" ;;
      *) dl_reason="wget failed with exit code $rc" ;;
    esac
  fi
  return 1
}

# Everything runs from main, called on the last line: if `curl | sh` delivers a truncated script,
# sh hits a syntax error before running any of it.
main() {
  trap cleanup EXIT
  # Make signals go through the EXIT trap too.
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP

  # --- arguments ----------------------------------------------------------------------------------

  arg_version=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --version)
        [ $# -ge 2 ] || die "--version needs a value, e.g. --version 0.1.0"
        arg_version="$2"
        shift 2
        ;;
      --version=*)
        arg_version="${1#--version=}"
        shift
        ;;
      -h | --help)
        sed -n '2,26p' "$0" 2>/dev/null || say "see the comments at the top of install.sh"
        exit 0
        ;;
      *)
        die "unknown argument '$1' (supported: --version X.Y.Z)"
        ;;
    esac
  done

  # --- tools --------------------------------------------------------------------------------------

  if command -v curl >/dev/null 2>&1; then
    downloader=curl
  elif command -v wget >/dev/null 2>&1; then
    downloader=wget
  else
    die "neither curl nor wget is installed; install one of them and re-run"
  fi

  if command -v sha256sum >/dev/null 2>&1; then
    sha_tool="sha256sum"
  elif command -v shasum >/dev/null 2>&1; then
    sha_tool="shasum -a 256"
  else
    die "neither sha256sum nor shasum is installed; install coreutils (or perl's shasum) and re-run"
  fi

  # --- what to install ----------------------------------------------------------------------------

  base_url="${SPL_RELEASES_URL:-$DEFAULT_RELEASES_URL}"
  base_url="${base_url%/}"

  case "$(uname -s)" in
    Linux) os=linux ;;
    *) die "no prebuilt spl for $(uname -s); build from source with 'bun run build'" ;;
  esac
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) die "no prebuilt spl for $(uname -m); build from source with 'bun run build'" ;;
  esac
  artifact="spl-$os-$arch"

  if [ -n "$arg_version" ]; then
    version="$arg_version"
  elif [ -n "$SPL_PINNED_VERSION" ]; then
    version="$SPL_PINNED_VERSION"
  elif [ -n "${SPL_VERSION:-}" ]; then
    version="$SPL_VERSION"
  else
    version=""
  fi
  version="${version#v}" # accept v0.1.0 as well as 0.1.0

  # --- install dir and temp file ------------------------------------------------------------------

  if [ -z "${INSTALL_DIR:-}" ]; then
    [ -n "${HOME:-}" ] || die "HOME is not set; set INSTALL_DIR to the directory for spl"
    INSTALL_DIR="$HOME/.local/bin"
  fi
  target="$INSTALL_DIR/spl"

  mkdir -p "$INSTALL_DIR" 2>/dev/null ||
    die "cannot create install dir $INSTALL_DIR; create it yourself or set INSTALL_DIR to a writable directory"
  [ -d "$target" ] && die "$target is a directory; remove it or choose another INSTALL_DIR"

  # The temp file lives in INSTALL_DIR so the final mv is a rename on the same filesystem.
  # Creating it is also the writability check, done before any big download.
  if command -v mktemp >/dev/null 2>&1; then
    tmp=$(mktemp "$INSTALL_DIR/.spl-install.XXXXXX" 2>/dev/null) || tmp=""
  else
    tmp="$INSTALL_DIR/.spl-install.$$"
    (set -C && : >"$tmp") 2>/dev/null || tmp="" # noclobber: never reuse someone else's file
  fi
  [ -n "$tmp" ] ||
    die "install dir $INSTALL_DIR is not writable; fix its permissions, use sudo, or set INSTALL_DIR to a writable directory"

  # --- resolve the version ------------------------------------------------------------------------

  if [ -z "$version" ]; then
    download "$base_url/latest/version.json" "$tmp.json" ||
      die "cannot fetch $base_url/latest/version.json ($dl_reason); check your network and SPL_RELEASES_URL, or pin a version with SPL_VERSION"
    version=$(sed -n 's/.*"version"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$tmp.json" | head -n 1)
    [ -n "$version" ] ||
      die "$base_url/latest/version.json has no \"version\" field; check SPL_RELEASES_URL, or pin a version with SPL_VERSION"
  fi

  # The version goes into a URL and a comparison; keep it to plain version characters.
  case "$version" in
    "" | .* | *[!0-9A-Za-z.+-]*) die "invalid version '$version'; expected something like 0.1.0" ;;
  esac

  url="$base_url/$version/$artifact"

  # --- download, verify, sanity-run ---------------------------------------------------------------

  say "downloading spl $version from $url"
  download "$url" "$tmp" ||
    die "cannot download spl $version from $url ($dl_reason); check the version exists and the server is reachable, then re-run"

  download "$url.sha256" "$tmp.sha256" ||
    die "cannot download the checksum $url.sha256 ($dl_reason); check the server is reachable, then re-run"

  # sha256sum format: "<64 hex>  spl-linux-x64"; only the hash matters.
  expected=$(head -n 1 "$tmp.sha256" | cut -d ' ' -f 1 | tr 'A-F' 'a-f')
  case "$expected" in
    *[!0-9a-f]*) expected="" ;;
  esac
  [ ${#expected} -eq 64 ] ||
    die "checksum file $url.sha256 is malformed; the release tree is broken, report it to the publisher"
  actual=$($sha_tool "$tmp" | cut -d ' ' -f 1 | tr 'A-F' 'a-f')
  [ "$actual" = "$expected" ] ||
    die "checksum mismatch for $url (expected $expected, got $actual); the download is corrupt or tampered with, re-run or report it to the publisher"

  # Refuse anything that is not an ELF executable before running it: the shell would otherwise run
  # a text or garbage file as a script.
  magic=$(dd if="$tmp" bs=4 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')
  [ "$magic" = "7f454c46" ] ||
    die "the file at $url is not a Linux executable; it is not an spl binary, report it to the publisher"

  chmod 755 "$tmp" || die "cannot chmod the downloaded file in $INSTALL_DIR"

  # stdin from /dev/null: under `curl | sh` stdin is the rest of this script.
  reported=$("$tmp" version 2>/dev/null </dev/null | head -n 1)
  case "$reported" in
    "spl $version" | "spl $version "*) ;;
    *)
      die "the downloaded file did not report 'spl $version' when run (got '$reported'); it is not a working spl $version binary for this machine, report it to the publisher"
      ;;
  esac

  # --- swap ---------------------------------------------------------------------------------------

  previous=""
  if [ -x "$target" ]; then
    previous=$("$target" version 2>/dev/null </dev/null | head -n 1)
  fi

  mv -f "$tmp" "$target" ||
    die "cannot move the new binary to $target; check permissions on $INSTALL_DIR"
  rm -f "$tmp.sha256" "$tmp.json"
  tmp="" # nothing left to clean up

  if [ -n "$previous" ] && [ "$previous" != "spl $version" ]; then
    say "installed spl $version to $target (was: $previous)"
  else
    say "installed spl $version to $target"
  fi

  case ":${PATH:-}:" in
    *":$INSTALL_DIR:"*) ;;
    *)
      say "$INSTALL_DIR is not on your PATH; add it, e.g. to ~/.profile:"
      say "  export PATH=\"$INSTALL_DIR:\$PATH\""
      ;;
  esac
  if [ -n "$previous" ]; then
    say "if a daemon is running, restart it to use the new binary: spl serve --stop && spl serve --daemon"
  else
    say "next: spl init && spl serve --daemon"
  fi
}

main "$@"
