#!/usr/bin/env bash
# Runs every seed 001 experiment three times — written with rill's blocking
# fiber facade (samples/seed/*.c), with rill's C++20 coroutines
# (samples/seed/coro/*.cpp), and in Go (samples/go/seed/*/main.go) — and
# shows the outputs side by side, then "same behaviour" (all match) or
# "DIFFERS" per experiment.
#
#   samples/seed/compare.sh [build dir] [experiment...]
#
# The build dir (default build/) must hold samples/seed/ from a CMake build;
# samples/seed/coro/ is there when the compiler has C++20 coroutines, else
# that column is skipped (and said so). The Go programs are built with
# `go build` into a temporary directory; if `go` is missing, that column is
# skipped too. Everything runs with --short. For an experiment with a
# server, the server starts first and the client once the server printed
# "listen ok"; the fiber pair runs, then the coroutine pair, then the Go one.
# Exits 1 if any column differs from the fibers' (or a program fails to
# run), 2 if the build has no seed samples, else 0.
#
# Before comparing, ephemeral ports are replaced by "PORT": the experiments'
# own ports are below 10000, and the kernel's ephemeral range
# (/proc/sys/net/ipv4/ip_local_port_range, 32768-60999 by default) is not.
# Nothing else needs normalising: the programs print no timestamps, and no
# byte count that depends on the kernel's buffer sizes.
set -u

BUILD=${1:-build}
shift $(($# > 0 ? 1 : 0))
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
C_DIR=$(cd "$BUILD" 2>/dev/null && pwd)/samples/seed
if [ ! -x "$C_DIR/establish_client1" ]; then
  echo "compare: no seed samples in $BUILD/samples/seed: build rill first (cmake --build $BUILD)" >&2
  exit 2
fi

# name | server (or empty) | client
EXPERIMENTS=(
  "refused||establish_client1"
  "backlog_full|establish_server2|establish_client2"
  "dial_timeout||establish_client3"
  "read_no_data|rw_server1|rw_client1"
  "read_partial_full|rw_server2|rw_client2"
  "read_after_close|rw_server3|rw_client3"
  "read_timeout|rw_server4|rw_client4"
  "write_block_reset|rw_server5|rw_client5"
  "write_timeout|rw_server6|rw_client6"
  "close|close_server1|close_client1"
)

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  SERVER_PID=""
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

CORO_DIR=""
if [ -x "$C_DIR/coro/establish_client1" ]; then
  CORO_DIR=$C_DIR/coro
else
  echo "no coroutine seed samples in $BUILD/samples/seed/coro (no C++20 coroutines?): skipping that column"
fi

GO_DIR=""
if command -v go >/dev/null 2>&1; then
  mkdir -p "$WORK/go"
  if (cd "$ROOT/samples/go/seed" && go build -o "$WORK/go/" ./...) >&2; then
    GO_DIR=$WORK/go
  else
    echo "compare: building the Go programs failed: skipping the Go column" >&2
  fi
else
  echo "go not installed: skipping the Go column"
fi

# run_pair DIR SERVER CLIENT OUT: the server's lines ("S ...") then the
# client's ("C ..."), processes are never left behind.
run_pair() {
  local dir=$1 server=$2 client=$3 out=$4 i
  : >"$out.srv"
  if [ -n "$server" ]; then
    "$dir/$server" --short >"$out.srv" 2>&1 &
    SERVER_PID=$!
    for i in $(seq 1 250); do
      grep -q "listen ok" "$out.srv" && break
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.02
    done
  fi
  timeout 60 "$dir/$client" --short >"$out.cli" 2>&1 || echo "(exit status $?)" >>"$out.cli"
  if [ -n "$SERVER_PID" ]; then
    for i in $(seq 1 250); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.02
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "(server still running after 5 s: killed)" >>"$out.srv"
      kill "$SERVER_PID" 2>/dev/null
    fi
    wait "$SERVER_PID" 2>/dev/null || echo "(exit status $?)" >>"$out.srv"
    SERVER_PID=""
  fi
  { sed 's/^/S /' "$out.srv"; sed 's/^/C /' "$out.cli"; } >"$out"
}

normalise() { sed -E 's/(127\.0\.0\.1|\[::1\]):[1-6][0-9]{4}\b/\1:PORT/g' "$1"; }

# Files side by side, one column each, whole lines (no truncation); the
# first argument is the column titles ("a|b|c"). Between two columns "|",
# or "X" where a line differs from the first column's.
side_by_side() {
  local titles=$1
  shift
  awk -v titles="$titles" '
       FNR == 1 { f++ }
       { line[f, FNR] = $0; if (FNR > n) n = FNR; if (length($0) > w[f]) w[f] = length($0) }
       END {
         nt = split(titles, t, "|")
         for (c = 1; c <= nt; c++) if (w[c] < length(t[c])) w[c] = length(t[c])
         for (c = 1; c <= nt; c++) printf (c < nt ? "%-" w[c] "s   " : "%s\n"), t[c]
         for (i = 1; i <= n; i++)
           for (c = 1; c <= nt; c++) {
             if (c > 1) printf " %s ", (line[c, i] == line[1, i] ? "|" : "X")
             printf (c < nt ? "%-" w[c] "s" : "%s\n"), line[c, i]
           }
       }' "$@"
}

declare -a SUMMARY
status=0
for e in "${EXPERIMENTS[@]}"; do
  IFS='|' read -r name server client <<<"$e"
  if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then
    continue
  fi
  echo "=== $name: ${server:+$server + }$client"
  titles="fibers (C)"
  files=("$WORK/$name.c.norm")
  run_pair "$C_DIR" "$server" "$client" "$WORK/$name.c"
  normalise "$WORK/$name.c" >"$WORK/$name.c.norm"
  if [ -n "$CORO_DIR" ]; then
    run_pair "$CORO_DIR" "$server" "$client" "$WORK/$name.coro"
    normalise "$WORK/$name.coro" >"$WORK/$name.coro.norm"
    titles+="|coroutines (C++20)"
    files+=("$WORK/$name.coro.norm")
  fi
  if [ -n "$GO_DIR" ]; then
    run_pair "$GO_DIR" "$server" "$client" "$WORK/$name.go"
    normalise "$WORK/$name.go" >"$WORK/$name.go.norm"
    titles+="|Go"
    files+=("$WORK/$name.go.norm")
  fi
  if [ ${#files[@]} -eq 1 ]; then
    cat "$WORK/$name.c.norm"
    echo
    SUMMARY+=("$(printf '%-20s %s' "$name" "fibers only")")
    continue
  fi
  side_by_side "$titles" "${files[@]}"
  verdict="same behaviour"
  for f in "${files[@]:1}"; do
    cmp -s "$WORK/$name.c.norm" "$f" || verdict="DIFFERS"
  done
  [ "$verdict" = "same behaviour" ] || status=1
  verdict+=" (${titles//|/, })"
  echo "--- $name: $verdict"
  echo
  SUMMARY+=("$(printf '%-20s %s' "$name" "$verdict")")
done

echo "=== summary"
printf '%s\n' "${SUMMARY[@]}"
exit $status
