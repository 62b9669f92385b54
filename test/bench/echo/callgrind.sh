#!/usr/bin/env bash
# User-space instructions per echo round trip, counted by callgrind: the
# steady measure of a server's own per-message work (CPU time on a shared
# machine is noisy, and the kernel's TCP work, about 80 % of it, hides the
# rest). The kernel's instructions are not counted.
#
#   test/bench/echo/callgrind.sh [--keep DIR] <build dir>
#
# Each server runs under valgrind --tool=callgrind, pinned to one CPU, while
# loadgen (pinned to another) makes a fixed number of round trips over one
# connection, 64 bytes each, and the server is stopped with SIGTERM. Two
# runs per server, with SHORT and LONG round trips; the difference of their
# instruction totals divided by LONG - SHORT removes startup, accept and
# shutdown. REPS repeats, servers interleaved, the median reported.
#
#   rill     samples/echo_server            rill's callback API
#   fibers   samples/echo_server_blocking   rill's blocking facade
#   libev    libev_echo_server.c            built here: cc -O2 ... -lev
#   raw      raw_epoll_server               hand-written epoll: the limit
#   rill-uring         the callback server, RILL_BACKEND=io_uring
#   rill-uring-nosend  the same, RILL_IO_URING_SENDS=0 (send(2) per write)
#   raw-uring  raw_uring_server             hand-written io_uring (liburing)
#
# CG_TOOL=strace counts system calls instead (strace -f -c: calls per
# round trip, and which), the same way.
#
# --keep DIR keeps the LONG runs' callgrind files (with --dump-instr=yes)
# for callgrind_annotate, e.g.
#   callgrind_annotate --inclusive=yes DIR/rill.out
#
# Knobs (environment): CG_SERVERS ("rill libev raw", fibers on request),
# CG_SHORT (2000), CG_LONG (12000), CG_REPS (3), CG_SIZE (64), CG_CONNS (1:
# the round trips spread over that many connections), CG_PORT
# (17400), CG_SERVER_CPU (0), CG_CLIENT_CPU (1).
set -euo pipefail

KEEP=""
if [ "${1:-}" = --keep ] && [ $# -ge 2 ]; then
  KEEP=$2
  shift 2
  mkdir -p "$KEEP"
fi
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 [--keep DIR] <build dir>" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)

SERVERS=${CG_SERVERS:-"rill libev raw"}
SHORT=${CG_SHORT:-2000}
LONG=${CG_LONG:-12000}
REPS=${CG_REPS:-3}
SIZE=${CG_SIZE:-64}
CONNS=${CG_CONNS:-1}
PORT=${CG_PORT:-17400}
SERVER_CPU=${CG_SERVER_CPU:-0}
CLIENT_CPU=${CG_CLIENT_CPU:-1}

command -v valgrind >/dev/null || { echo "callgrind: valgrind is not installed" >&2; exit 1; }
LOADGEN=$BUILD/test/bench/echo/loadgen
[ -x "$LOADGEN" ] || { echo "callgrind: $LOADGEN missing (build with -DRILL_BUILD_BENCH=ON)" >&2; exit 1; }

TMP=$(mktemp -d)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

declare -A EXE=(
  [rill]=$BUILD/samples/echo_server
  [fibers]=$BUILD/samples/echo_server_blocking
  [libev]=$TMP/libev_echo_server
  [raw]=$BUILD/test/bench/echo/raw_epoll_server
  [rill-uring]=$BUILD/samples/echo_server
  [rill-uring-nosend]=$BUILD/samples/echo_server
  [raw-uring]=$BUILD/test/bench/echo/raw_uring_server
)
declare -A TITLE=([rill]="rill callbacks" [fibers]="rill fibers" [libev]="libev" [raw]="raw epoll"
  [rill-uring]="rill callbacks, io_uring" [rill-uring-nosend]="rill callbacks, io_uring, send(2)"
  [raw-uring]="raw io_uring")
declare -A SERVER_ENV=([rill]=RILL_BACKEND=epoll [fibers]=RILL_BACKEND=epoll
  [rill-uring]=RILL_BACKEND=io_uring [rill-uring-nosend]="RILL_BACKEND=io_uring RILL_IO_URING_SENDS=0")
TOOL=${CG_TOOL:-callgrind}
case " $SERVERS " in
  *" libev "*)
    if ! ${CC:-cc} -O2 -o "${EXE[libev]}" "$HERE/libev_echo_server.c" -lev 2>"$TMP/cc.log"; then
      echo "callgrind: building the libev server failed (libev-dev?): skipping it" >&2
      cat "$TMP/cc.log" >&2
      SERVERS=${SERVERS//libev/}
    fi
    ;;
esac

PIN_SERVER=()
PIN_CLIENT=()
if command -v taskset >/dev/null && [ "$(nproc --all)" -gt "$CLIENT_CPU" ]; then
  PIN_SERVER=(taskset -c "$SERVER_CPU")
  PIN_CLIENT=(taskset -c "$CLIENT_CPU")
fi

# Runs `server` for `trips` round trips; prints its instruction total.
count_once() { # server trips port
  local out=$TMP/$1.$2.out extra=()
  [ -n "$KEEP" ] && [ "$2" = "$LONG" ] && extra=(--dump-instr=yes)
  local tool=(valgrind --tool=callgrind --callgrind-out-file="$out" "${extra[@]}")
  [ "$TOOL" = strace ] && tool=(strace -f -c -o "$out")
  # shellcheck disable=SC2086
  env ${SERVER_ENV[$1]:-} "${PIN_SERVER[@]}" "${tool[@]}" \
    "${EXE[$1]}" --listen "127.0.0.1:$3" --quiet >/dev/null 2>"$TMP/valgrind.log" &
  SERVER_PID=$!
  local up=""
  for _ in $(seq 1 300); do
    if ss -Hltn "sport = :$3" 2>/dev/null | grep -q .; then up=1; break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$up" ]; then
    echo "callgrind: $1 did not listen on port $3" >&2
    cat "$TMP/valgrind.log" >&2
    return 1
  fi
  if ! "${PIN_CLIENT[@]}" "$LOADGEN" --round-trips "$2" --conns "$CONNS" --size "$SIZE" --seconds 300 \
      --connect "127.0.0.1:$3" >/dev/null; then
    echo "callgrind: loadgen against $1 failed" >&2
    return 1
  fi
  # strace holds a fatal signal back from itself: the server under it (its
  # child) gets the SIGTERM, and strace ends with it. An io_uring server
  # under valgrind does not end on SIGTERM (valgrind's own wait): the
  # counts are dumped with callgrind_control (to $out.1) and it is killed.
  local target=$SERVER_PID
  [ "$TOOL" = strace ] && target=$(pgrep -P "$SERVER_PID" | head -1)
  if [ "$TOOL" = strace ]; then
    kill -TERM "${target:-$SERVER_PID}"
  else
    callgrind_control -d "$SERVER_PID" >/dev/null 2>&1
    mv "$out.1" "$out"
    kill -KILL "$SERVER_PID"
  fi
  wait "$SERVER_PID" || true
  SERVER_PID=""
  [ -n "$KEEP" ] && [ "$2" = "$LONG" ] && cp "$out" "$KEEP/$1.out"
  if [ "$TOOL" = strace ]; then
    [ -n "$KEEP" ] && cp "$out" "$KEEP/$1.$2.strace"
    awk '$NF == "total" { print $4; exit }' "$out"
  else
    awk '/^(summary|totals):/ { print $2; exit }' "$out"
  fi
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A PER_TRIP
port=$PORT
for rep in $(seq 1 "$REPS"); do
  for server in $SERVERS; do
    [ -x "${EXE[$server]:-}" ] || { echo "callgrind: ${EXE[$server]:-$server} missing: skipped" >&2; continue; }
    short=$(count_once "$server" "$SHORT" "$port"); port=$((port + 1))
    long=$(count_once "$server" "$LONG" "$port"); port=$((port + 1))
    per=$(awk -v a="$short" -v b="$long" -v n=$((LONG - SHORT)) 'BEGIN { printf "%.1f", (b - a) / n }')
    printf '  rep=%s %-8s %s trips: %s Ir, %s trips: %s Ir -> %s Ir/round trip\n' \
      "$rep" "$server" "$SHORT" "$short" "$LONG" "$long" "$per" >&2
    PER_TRIP[$server]="${PER_TRIP[$server]:-} $per"
  done
done

unit="Ir / round trip"
if [ "$TOOL" = strace ]; then
  unit="system calls / round trip"
  echo "System calls per echo round trip (strace -f -c, ${SIZE} B, $CONNS connection(s), median of $REPS):"
else
  echo "User instructions per echo round trip (callgrind Ir, ${SIZE} B, $CONNS connection(s), median of $REPS):"
fi
echo
echo "| server | $unit |"
echo "|---|---:|"
for server in $SERVERS; do
  [ -n "${PER_TRIP[$server]:-}" ] || continue
  printf '| %s | %s |\n' "${TITLE[$server]}" "$(echo "${PER_TRIP[$server]}" | median)"
done
