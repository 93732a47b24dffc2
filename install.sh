#!/bin/sh
# spl installer (POSIX sh). Usage: `sh install.sh --help`, or under curl:
#   curl -sSf <host>/install.sh | sh -s -- --help
#
# Baked values: `bun run release --base-url URL` writes URL into DEFAULT_RELEASES_URL below, and a
# host serving `install.sh?v=X` may replace the empty value on the line `SPL_PINNED_VERSION=""`
# with X (only after checking X matches [0-9A-Za-z.+-]+), so that
# `curl -sSf "<host>/install.sh?v=X" | sh` installs X. Nothing else in the script changes, e.g.:
#   sed 's/^SPL_PINNED_VERSION=""$/SPL_PINNED_VERSION="0.1.0"/' install.sh
#
# Version choice, first match wins: --version X, the baked pin, SPL_VERSION, then
# <base>/latest/version.json.
#
# Safety: the binary is downloaded (gzip'd when the tree has <artifact>.gz and gzip is here) into a
# temp file inside INSTALL_DIR, its SHA-256 (over the decompressed file) is checked,
# it must answer `version` with `spl <version>`, and only then is it renamed over INSTALL_DIR/spl.
# rename(2) is atomic on one filesystem, so a running `spl` or a concurrent exec sees either the old
# file or the new one, never a partial file. Any failure leaves the old binary untouched.

SPL_PINNED_VERSION=""
DEFAULT_RELEASES_URL="https://get.syncropic.com/spl-releases"

set -u

tmp=""

say() { printf 'spl install: %s\n' "$*"; }

# One line on stderr saying what failed and what to do, then exit non-zero (the trap cleans up).
die() {
  printf 'spl install: error: %s\n' "$*" >&2
  exit 1
}

# A heredoc rather than the comments above: under `curl | sh` there is no script file to read.
usage() {
  cat <<EOF
spl installer: downloads spl, checks its SHA-256, then swaps it in atomically.

  curl -sSf <host>/install.sh | sh                          the latest version
  curl -sSf <host>/install.sh | sh -s -- --version 0.1.0    a pinned version
  curl -sSf <host>/install.sh | sh -s -- --uninstall        remove spl (your data stays)

Options:
  --version X.Y.Z   install this version (beats a ?v= pin and SPL_VERSION)
  --uninstall       remove INSTALL_DIR/spl; refused while a daemon runs from it
  -h, --help        this text

Environment:
  SPL_RELEASES_URL  base URL of the release tree (default: $DEFAULT_RELEASES_URL)
  SPL_VERSION       the version to install when --version is not given
  INSTALL_DIR       where spl goes (default: \$HOME/.local/bin)
  SPL_BASELINE=1    the build for x86-64 CPUs without AVX2 (chosen by itself when
                    /proc/cpuinfo has no avx2 flag)
EOF
}

cleanup() {
  if [ -n "$tmp" ]; then
    rm -f "$tmp" "$tmp.gz" "$tmp.sha256" "$tmp.json"
  fi
}

# download URL FILE [progress]: writes FILE, returns non-zero on any failure (HTTP errors included)
# and leaves a short reason in dl_reason. Transient failures (timeouts, HTTP 408/429/5xx) are
# retried. With "progress" and a terminal on stderr, curl draws a progress bar there.
dl_reason=""
download() {
  dl_reason=""
  if [ "$downloader" = curl ]; then
    if [ "${3:-}" = progress ] && [ -t 2 ]; then
      http_code=$(curl -fL --progress-bar --retry 3 --retry-delay 1 --connect-timeout 15 -w '%{http_code}' -o "$2" "$1")
    else
      http_code=$(curl -fsL --retry 3 --retry-delay 1 --connect-timeout 15 -w '%{http_code}' -o "$2" "$1" 2>/dev/null)
    fi
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
    wget -q --tries=4 --waitretry=1 -O "$2" "$1" >/dev/null 2>&1
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

# daemons_of FILE: pids of `spl serve` processes running the binary FILE (read from /proc, so
# only processes this user may inspect; none where there is no /proc).
daemons_of() {
  real=$(readlink -f "$1" 2>/dev/null) || real="$1"
  pids=""
  for d in /proc/[0-9]*; do
    [ "$(readlink "$d/exe" 2>/dev/null)" = "$real" ] || continue
    case " $(tr '\000' ' ' <"$d/cmdline" 2>/dev/null) " in
      *" serve "*) pids="$pids${pids:+ }${d#/proc/}" ;;
    esac
  done
  printf '%s' "$pids"
}

# musl-based systems (Alpine) cannot run the glibc-linked binary.
is_musl() {
  if command -v ldd >/dev/null 2>&1; then
    ldd --version 2>&1 | grep -qi musl
  else
    ls /lib/ld-musl-* >/dev/null 2>&1 && ! ls /lib*/ld-linux-* >/dev/null 2>&1
  fi
}

uninstall() {
  if [ ! -e "$target" ]; then
    say "nothing to uninstall: no spl at $target (set INSTALL_DIR if it lives elsewhere)"
    return 0
  fi
  running=$(daemons_of "$target")
  [ -z "$running" ] ||
    die "an spl daemon is running from $target (pid $running); stop it first with 'spl serve --stop', then re-run"
  reported=$("$target" version 2>/dev/null </dev/null | head -n 1)
  case "$reported" in
    "spl "*) ;;
    *) die "$target does not answer 'spl version' like spl (got '$reported'); remove it by hand if it is yours to delete" ;;
  esac
  rm -f "$target" || die "cannot remove $target; check permissions on $INSTALL_DIR"
  say "removed $target ($reported)"
  say "your data is untouched: ${SYNCROPEL_HOME:-$HOME/.syncro} (store, config, keys) and ~/.local/share/syncropel/backups; delete them yourself to wipe everything"
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
  action=install
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
      --uninstall)
        action=uninstall
        shift
        ;;
      -h | --help)
        usage
        exit 0
        ;;
      *)
        die "unknown argument '$1' (supported: --version X.Y.Z, --uninstall, --help)"
        ;;
    esac
  done

  # --- install dir --------------------------------------------------------------------------------

  if [ -z "${INSTALL_DIR:-}" ]; then
    [ -n "${HOME:-}" ] || die "HOME is not set; set INSTALL_DIR to the directory for spl"
    INSTALL_DIR="$HOME/.local/bin"
  fi
  target="$INSTALL_DIR/spl"

  if [ "$action" = uninstall ]; then
    uninstall
    exit 0
  fi

  # --- platform -----------------------------------------------------------------------------------

  case "$(uname -s)" in
    Linux) os=linux ;;
    *) die "no prebuilt spl for $(uname -s) (Linux x86-64 only); build from source with 'bun run build', or run the Docker image" ;;
  esac
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) die "no arm64 build of spl is published yet; build from source with 'bun run build -- --target bun-linux-arm64', or run the Docker image" ;;
    *) die "no prebuilt spl for $(uname -m) (Linux x86-64 only); build from source with 'bun run build'" ;;
  esac
  is_musl && die "this system uses musl libc (e.g. Alpine) and the prebuilt spl needs glibc; use a glibc distribution (Debian, Ubuntu, Fedora...) or the Docker image"
  artifact="spl-$os-$arch"
  if [ "${SPL_BASELINE:-}" = 1 ]; then
    artifact="$artifact-baseline"
  elif [ -r /proc/cpuinfo ] && ! grep -qw avx2 /proc/cpuinfo; then
    artifact="$artifact-baseline"
    say "this CPU has no AVX2: installing the baseline build"
  fi

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

  # --- temp file ----------------------------------------------------------------------------------

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
  # The gzip'd binary when the tree has one (half the bytes), else the plain one. Either way it
  # ends up as $tmp, and the checksum below is over that final, decompressed file.
  if command -v gzip >/dev/null 2>&1 && download "$url.gz" "$tmp.gz" progress; then
    gzip -dc "$tmp.gz" >"$tmp" 2>/dev/null ||
      die "cannot decompress $url.gz; the download is corrupt, re-run or report it to the publisher"
    rm -f "$tmp.gz"
  else
    download "$url" "$tmp" progress ||
      die "cannot download spl $version from $url ($dl_reason); check the version exists and the server is reachable, then re-run"
  fi

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
  running=""
  if [ -x "$target" ]; then
    previous=$("$target" version 2>/dev/null </dev/null | head -n 1)
    running=$(daemons_of "$target")
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
  if [ -n "$running" ]; then
    say "a daemon still runs the previous binary (pid $running); restart it to use the new one: spl serve --stop && spl serve --daemon"
  elif [ -z "$previous" ]; then
    say "next: spl init && spl serve --daemon"
  fi
}

main "$@"
