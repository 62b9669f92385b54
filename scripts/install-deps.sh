#!/bin/sh
# Installs what building and testing rill needs, on Debian/Ubuntu, and does
# nothing when everything is already there. Used by `make` and by CI.
# `install-deps.sh go` also wants the Go toolchain (benchmarks, seed samples);
# `install-deps.sh stress` also wants stress-ng (test/stress/run_under_load.sh).
set -e

missing=""
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing="$missing $2"; }
need_pc() { pkg-config --exists "$1" 2>/dev/null || missing="$missing $2"; }
need_file() { [ -e "$1" ] || missing="$missing $2"; }

need_cmd cc gcc
need_cmd c++ g++
need_cmd make make
need_cmd cmake cmake
need_cmd pkg-config pkg-config
need_cmd taskset util-linux
need_pc cmocka libcmocka-dev
need_pc libcares libc-ares-dev
need_file /usr/include/ev.h libev-dev
[ "${1:-}" = go ] && need_cmd go golang-go
[ "${1:-}" = stress ] && need_cmd stress-ng stress-ng

[ -z "$missing" ] && exit 0

echo "rill: installing$missing"
if [ "$(id -u)" != 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "rill: please install:$missing" >&2
  exit 1
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
