#!/usr/bin/env bash
# Build the vCenter simulator of the live vSphere tests (tests/emulators/vsphere/main.go, on
# govmomi's simulator) and print the path of the binary on stdout; everything else goes to stderr.
#
# Needs `go` and the govmomi sources in GOPATH mode, which Debian packages: when either is
# missing they are installed with apt-get (as root, or through sudo). The binary is cached by
# the hash of main.go, the Go version and the govmomi package version, so only the first run
# (about 30 s on 2 cores) compiles:
#   ${QLRF_VCSIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qlrf-vcsim}/<hash>/vcsim
# (falls back to /tmp/qlrf-vcsim when there is no HOME). Keep that directory between CI runs to
# skip the build, and the go-build directory beside it to make a rebuild after a change quick.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
gopath=/usr/share/gocode
govmomi="$gopath/src/github.com/vmware/govmomi/simulator"

say() { echo "build_vcsim: $*" >&2; }

if ! command -v go >/dev/null 2>&1 || [ ! -d "$govmomi" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo -n)
  else
    say "need golang-go and golang-github-vmware-govmomi-dev (apt-get install them as root)"
    exit 1
  fi
  packages=(golang-go golang-github-vmware-govmomi-dev)
  say "installing ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-cache show "${packages[@]}" >/dev/null 2>&1; then
    "${sudo[@]}" apt-get update -q >&2  # a fresh machine has no package lists yet
  fi
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}" >&2
fi

go_version="$(go version)"
govmomi_version="$(dpkg-query -W -f='${Version}' golang-github-vmware-govmomi-dev 2>/dev/null || echo unknown)"
hash="$( { cat "$here/main.go"; echo "$go_version"; echo "$govmomi_version"; } | sha256sum | cut -c1-16)"

if [ -n "${QLRF_VCSIM_CACHE:-}" ]; then
  cache="$QLRF_VCSIM_CACHE"
elif [ -n "${XDG_CACHE_HOME:-}" ]; then
  cache="$XDG_CACHE_HOME/qlrf-vcsim"
elif [ -n "${HOME:-}" ] && [ -w "${HOME}" ]; then
  cache="$HOME/.cache/qlrf-vcsim"
else
  cache=/tmp/qlrf-vcsim
fi
binary="$cache/$hash/vcsim"

if [ ! -x "$binary" ]; then
  mkdir -p "$cache/$hash"
  # One build at a time (parallel test sessions share the cache).
  exec 9>"$cache/.lock"
  flock 9
  if [ ! -x "$binary" ]; then
    say "compiling vcsim into $binary"
    started=$SECONDS
    tmp="$binary.tmp.$$"
    (cd "$here" && GOPATH="$gopath" GO111MODULE=off GOFLAGS= GOCACHE="${GOCACHE:-$cache/go-build}" \
      go build -o "$tmp" main.go) >&2
    mv -f "$tmp" "$binary"
    say "built in $((SECONDS - started)) s"
  fi
  exec 9>&-
fi
echo "$binary"
