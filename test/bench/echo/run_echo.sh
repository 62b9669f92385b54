#!/usr/bin/env bash
# Echo benchmark: the same echo server written many ways, in one run, driven
# by the same raw epoll load generator (loadgen.c) in another process:
#
#   callbacks        samples/echo_server           rill's callback API (C), epoll
#   fibers           samples/echo_server_blocking  rill's blocking facade (C), epoll
#   coroutines       coro_echo_server              rill/coro.hpp (C++20), epoll
#   callbacks-uring  samples/echo_server           the same, RILL_BACKEND=io_uring
#   fibers-uring     samples/echo_server_blocking  the same, RILL_BACKEND=io_uring
#   callbacks-uring-nosend  samples/echo_server    io_uring with RILL_IO_URING_SENDS=0:
#                                                  send(2) per write instead of ring sends
#   go               samples/go (GOMAXPROCS=1)     goroutines, when go is installed
#   asio             asio_echo_server              Asio + C++20 coroutines
#   libevent-bev     libevent_bev_server           libevent bufferevents
#   libevent-raw     libevent_raw_server           libevent raw events (event_new)
#   libev            libev_echo_server             libev
#   libuv            libuv_echo_server             libuv
#   raw-uring        raw_uring_server              hand-written io_uring: a limit
#   raw              raw_epoll_server              hand-written epoll: the limit
#
#   test/bench/echo/run_echo.sh <build dir>
#
# The build dir must come from a -DRILL_BUILD_BENCH=ON build with samples
# (`make bench-build`); a server that was not built (its library missing) is
# skipped, and so is a rill column whose server does not report the backend
# the column names in use (rill_base_backend(), printed by the samples): the
# io_uring columns when that backend is not built in, or the kernel refused
# it and rill fell back to epoll.
#
# Servers run pinned to one CPU, the load generator to another (taskset).
#
#  1. Ping-pong, in every shape (connections x message size): each
#     connection sends a message, waits for all of it to come back, sends
#     again. Every repeat runs every shape on every server, the servers
#     taking turns in an order that rotates, so a burst of noise on the
#     machine falls on different servers. Reported: round trips per second,
#     and the server's CPU time (user + system from /proc/PID/stat, its
#     kernel TCP work included) per round trip; medians of the repeats, and
#     their ratio to raw epoll's.
#  2. Idle memory: the server gets IDLE_CONNS connections that each make one
#     round trip and then stay quiet (loadgen --idle); its VmRSS growth over
#     IDLE_CONNS is the user-space memory one idle connection costs (kernel
#     socket memory is not in RSS). Median of IDLE_REPS turns.
#
# The medians go to a results file (ECHO_RESULTS, docs/bench/echo.tsv), every
# single measurement beside it (echo-runs.tsv), and plot_echo.sh draws the
# chart from the results file (ECHO_CHART, docs/bench/echo.png) when gnuplot
# is installed. The tables go to stdout, the progress to stderr.
#
# Knobs (environment): ECHO_SHAPES ("1x64 100x64 1000x64 100x16384"),
# ECHO_SECONDS (3), ECHO_WARMUP (0.5), ECHO_REPS (3), ECHO_IDLE_CONNS (10000,
# 0 skips), ECHO_IDLE_REPS (3), ECHO_SERVERS (all of the above that exist),
# ECHO_PORT (first port, 17300), ECHO_SERVER_CPU (0), ECHO_CLIENT_CPU (1),
# ECHO_RESULTS, ECHO_CHART. BENCH_QUICK=1 is a short run (1 s per point,
# 1 repeat, 1,000 idle connections) that writes its results and chart into
# the build dir, not docs/.
#
# ECHO_PROFILE=DIR also records each ping-pong run's server with perf
# (cpu-clock samples, the kernel's included: root, or perf_event_paranoid
# <= 1), writes the results and chart into DIR instead of docs/, skips the
# idle measure, and ends with profile_tables.sh's tables: where each
# server's CPU per round trip goes, by function, and how it differs from
# the first server named (ECHO_SERVERS="fibers callbacks", say). perf's
# sampling costs the server a few per cent: compare within such a run only.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 <build dir>" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
BENCH_NAME=run_echo
# shellcheck source=bench_lib.sh
. "$HERE/bench_lib.sh"

if [ "${BENCH_QUICK:-0}" = 1 ]; then
  q_seconds=1 q_warmup=0.2 q_reps=1 q_idle=1000 q_idle_reps=1
  q_results=$BUILD/echo-quick.tsv q_chart=$BUILD/echo-quick.png
else
  q_seconds=3 q_warmup=0.5 q_reps=3 q_idle=10000 q_idle_reps=3
  q_results=$ROOT/docs/bench/echo.tsv q_chart=$ROOT/docs/bench/echo.png
fi
PROFILE=$(bench_profile_dir ECHO_PROFILE)
[ -z "$PROFILE" ] || q_idle=0 q_results=$PROFILE/echo.tsv q_chart=$PROFILE/echo.png
SHAPES=${ECHO_SHAPES:-"1x64 100x64 1000x64 100x16384"}
RUN_SECONDS=${ECHO_SECONDS:-$q_seconds}
WARMUP=${ECHO_WARMUP:-$q_warmup}
REPS=${ECHO_REPS:-$q_reps}
IDLE_CONNS=${ECHO_IDLE_CONNS:-$q_idle}
IDLE_REPS=${ECHO_IDLE_REPS:-$q_idle_reps}
RESULTS=${ECHO_RESULTS:-$q_results}
CHART=${ECHO_CHART:-$q_chart}
RUNS=$(dirname "$RESULTS")/$(basename "$RESULTS" .tsv)-runs.tsv
PORT=${ECHO_PORT:-17300}
SERVER_CPU=${ECHO_SERVER_CPU:-0}
CLIENT_CPU=${ECHO_CLIENT_CPU:-1}

# shellcheck disable=SC2086 # the shapes are words
bench_check_shapes ECHO_SHAPES $SHAPES

ECHO_DIR=$BUILD/test/bench/echo
LOADGEN=$ECHO_DIR/loadgen
TMP=$(mktemp -d)
declare -A EXE=(
  [callbacks]=$BUILD/samples/echo_server
  [fibers]=$BUILD/samples/echo_server_blocking
  [coroutines]=$ECHO_DIR/coro_echo_server
  [callbacks-uring]=$BUILD/samples/echo_server
  [fibers-uring]=$BUILD/samples/echo_server_blocking
  [callbacks-uring-nosend]=$BUILD/samples/echo_server
  [go]=$TMP/go_echo_server
  [asio]=$ECHO_DIR/asio_echo_server
  [libevent-bev]=$ECHO_DIR/libevent_bev_server
  [libevent-raw]=$ECHO_DIR/libevent_raw_server
  [libev]=$ECHO_DIR/libev_echo_server
  [libuv]=$ECHO_DIR/libuv_echo_server
  [raw-uring]=$ECHO_DIR/raw_uring_server
  [raw]=$ECHO_DIR/raw_epoll_server
)
declare -A TITLE=(
  [callbacks]="rill callbacks" [fibers]="rill fibers" [coroutines]="rill coroutines"
  [callbacks-uring]="rill callbacks, io_uring" [fibers-uring]="rill fibers, io_uring"
  [callbacks-uring-nosend]="rill callbacks, io_uring, send(2)"
  [go]="Go (GOMAXPROCS=1)" [asio]="Asio coroutines" [libevent-bev]="libevent bufferevents"
  [libevent-raw]="libevent raw events" [libev]="libev" [libuv]="libuv"
  [raw-uring]="raw io_uring" [raw]="raw epoll"
)
# The chart colours by family.
declare -A FAMILY=(
  [callbacks]=rill [fibers]=rill [coroutines]=rill [callbacks-uring]=rill [fibers-uring]=rill
  [callbacks-uring-nosend]=rill
  [go]=peer [asio]=peer [libevent-bev]=peer [libevent-raw]=peer [libev]=peer [libuv]=peer
  [raw-uring]=limit [raw]=limit
)
# rill's backend, named so a user's RILL_BACKEND cannot change a column.
declare -A BACKEND=(
  [callbacks]=epoll [fibers]=epoll [coroutines]=epoll
  [callbacks-uring]=io_uring [fibers-uring]=io_uring [callbacks-uring-nosend]=io_uring
)
# Further environment of a column (docs/io_uring.md's knobs).
declare -A SERVER_ENV=(
  [callbacks-uring-nosend]=RILL_IO_URING_SENDS=0
)
ALL_SERVERS=(callbacks fibers coroutines callbacks-uring fibers-uring go asio
  libevent-bev libevent-raw libev libuv raw-uring raw)

for exe in "${EXE[callbacks]}" "${EXE[raw]}" "$LOADGEN"; do
  if [ ! -x "$exe" ]; then
    echo "run_echo: $exe is missing: build with -DRILL_BUILD_BENCH=ON and -DRILL_BUILD_SAMPLES=ON" >&2
    rm -rf "$TMP"
    exit 1
  fi
done

# ---- cleanup: every process we start is killed, whatever happens ----------
IDLE_PID=""
bench_traps IDLE_PID PERF_PID

# ---- descriptors: 1000 (or the idle) connections need more than 1024 -----
need=$IDLE_CONNS
for shape in $SHAPES; do [ "${shape%x*}" -gt "$need" ] && need=${shape%x*}; done
need=$((need + 64))
soft=$(ulimit -Sn)
if [ "$soft" != unlimited ] && [ "$soft" -lt "$need" ]; then
  hard=$(ulimit -Hn)
  if [ "$hard" = unlimited ] || [ "$hard" -ge "$need" ]; then
    ulimit -Sn "$need"
  else
    echo "run_echo: need $need descriptors, the hard limit is $hard" >&2
    exit 1
  fi
fi

# ---- pinning ----------------------------------------------------------------
bench_pin "$SERVER_CPU" "$CLIENT_CPU"

start_server() { # name port [banner file]: --quiet, unless its stdout goes to the file
  local quiet=(--quiet) out=/dev/null
  if [ -n "${3:-}" ]; then
    quiet=()
    out=$3
  fi
  # shellcheck disable=SC2086 # SERVER_ENV holds NAME=VALUE words
  bench_start "$1" "$2" "$out" env GOMAXPROCS=1 ${BACKEND[$1]:+RILL_BACKEND=${BACKEND[$1]}} ${SERVER_ENV[$1]:-} \
    "${PIN_SERVER[@]}" "${EXE[$1]}" --listen "127.0.0.1:$2" "${quiet[@]}"
}

# The backend a rill server reports in use under its RILL_BACKEND: the
# samples print rill_base_backend() when not --quiet. Empty when the server
# does not start (no such backend built in).
backend_in_use() { # server
  PORT=$((PORT + 1))
  start_server "$1" "$PORT" "$TMP/banner" 2>/dev/null || return 0
  stop_server "$1" # flushes the banner
  sed -n 's/.*(\([a-z_]*\) backend.*/\1/p' "$TMP/banner" | head -1
}

# A rill column is only what its title says when rill reports that backend
# in use: RILL_BACKEND=io_uring may fall back to epoll.
backend_as_named() { # server
  local got want why
  [ -n "${BACKEND[$1]:-}" ] || return 0
  got=$(backend_in_use "$1")
  want=${BACKEND[$1]}
  [ "$got" != "$want" ] || return 0
  why=${got:+"rill fell back to $got"}
  why=${why:-"rill has no $want backend here (the server did not start)"}
  echo "run_echo: RILL_BACKEND=$want: $why: skipping ${TITLE[$1]}" >&2
  NOTES+=("${TITLE[$1]}: skipped, RILL_BACKEND=$want: $why")
  return 1
}

# ---- which servers: the ones that exist --------------------------------------
bench_build_go "$ROOT/samples/go" "${EXE[go]}"
# shellcheck disable=SC2086 # the server names are words
bench_select_servers backend_as_named ${ECHO_SERVERS:-${ALL_SERVERS[*]}}

# utime + stime of a process, all its threads, in clock ticks.
cpu_ticks() {
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
vm_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

shape_title() { # 100x16384 -> "100 × 16 KiB"
  awk -v s="$1" 'BEGIN { split(s, p, "x"); b = p[2] + 0
    if (b >= 1024 && b % 1024 == 0) printf "%s × %d KiB\n", p[1], b / 1024; else printf "%s × %d B\n", p[1], b }'
}

# ---- 1. ping-pong --------------------------------------------------------------
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
MACHINE=$(bench_machine)
echo "# echo benchmark: shapes $SHAPES, ${RUN_SECONDS}s x $REPS repeats (+${WARMUP}s warm-up), servers: ${SERVERS[*]}" >&2
echo "# $MACHINE, load average $LOAD_BEFORE" >&2

declare -A RPS  # "server shape" -> space-separated values, one per repeat
declare -A CPU  # "server shape" -> server CPU µs per round trip, one per repeat
declare -A IDLE # server -> space-separated bytes per idle connection
CLK_TCK=$(getconf CLK_TCK)
LOADGEN_ERR=$TMP/loadgen.err
mkdir -p "$(dirname "$RESULTS")"
printf '# repeat\tshape\tserver\trps\tcpu_us_per_round_trip\n' >"$RUNS"
ping_pong() { # rep shape server port
  local rep=$1 shape=$2 server=$3 port=$4 rps="" cpu="" out ticks0 ticks1 trips
  if start_server "$server" "$port"; then
    [ -z "$PROFILE" ] || profile_start "$PROFILE/$server.$shape.$rep.data"
    ticks0=$(cpu_ticks "$SERVER_PID")
    if out=$("${PIN_CLIENT[@]}" "$LOADGEN" --connect "127.0.0.1:$port" --conns "${shape%x*}" \
              --size "${shape#*x}" --seconds "$RUN_SECONDS" --warmup "$WARMUP" 2>"$LOADGEN_ERR"); then
      rps=${out##*rps=}
      ticks1=$(cpu_ticks "$SERVER_PID")
      trips=$(sed -n 's/^loadgen: round_trips=//p' "$LOADGEN_ERR")
      cpu=$(awk -v t="$((ticks1 - ticks0))" -v hz="$CLK_TCK" -v n="${trips:-0}" \
              'BEGIN { if (n > 0) printf "%.3f", t * 1e6 / hz / n }')
    else
      cat "$LOADGEN_ERR" >&2
      echo "run_echo: loadgen against $server failed" >&2
    fi
    profile_stop
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "run_echo: $server server died during the run" >&2
      rps=""
      cpu=""
    fi
    stop_server "$server"
  else
    echo "run_echo: $server server exited at start" >&2
  fi
  printf '  rep=%s %-10s %-16s rps=%-8s server cpu/rt=%s us\n' "$rep" "$shape" "$server" \
    "${rps:-failed}" "${cpu:-?}" >&2
  printf '%s\t%s\t%s\t%s\t%s\n' "$rep" "$shape" "$server" "${rps:-NaN}" "${cpu:-NaN}" >>"$RUNS"
  RPS["$server $shape"]="${RPS["$server $shape"]:-} $rps"
  CPU["$server $shape"]="${CPU["$server $shape"]:-} $cpu"
}
# shellcheck disable=SC2086 # the shapes are words
bench_rotate ping_pong "$REPS" $SHAPES
nservers=${#SERVERS[@]}

# ---- 2. idle memory --------------------------------------------------------------
idle_once() { # server port: prints bytes per idle connection, or nothing
  local before after status
  start_server "$1" "$2" || return 0
  # One connection comes and goes first: what every connection shares
  # (pools, the runtime's first growth) is in the baseline.
  if ! "${PIN_CLIENT[@]}" "$LOADGEN" --connect "127.0.0.1:$2" --conns 1 --size 64 \
       --seconds 0.2 --warmup 0 >/dev/null 2>"$LOADGEN_ERR"; then
    cat "$LOADGEN_ERR" >&2
    stop_server "$1"
    return 0
  fi
  sleep 0.2
  before=$(vm_rss_kb "$SERVER_PID")
  "${PIN_CLIENT[@]}" "$LOADGEN" --idle --connect "127.0.0.1:$2" --conns "$IDLE_CONNS" --size 64 \
    --seconds 120 >"$TMP/idle.out" 2>"$LOADGEN_ERR" &
  IDLE_PID=$!
  for _ in $(seq 1 600); do
    grep -q ready "$TMP/idle.out" 2>/dev/null && break
    kill -0 "$IDLE_PID" 2>/dev/null || break
    sleep 0.1
  done
  if grep -q ready "$TMP/idle.out" 2>/dev/null; then
    # Let the server settle: Go's background work, and rill fibers with a
    # private stack give their pages back after a second of waiting.
    sleep 2
    after=$(vm_rss_kb "$SERVER_PID")
    if [ -n "$before" ] && [ -n "$after" ]; then
      awk -v a="$after" -v b="$before" -v n="$IDLE_CONNS" 'BEGIN { printf "%.0f\n", (a - b) * 1024 / n }'
    fi
  else
    status=running
    if ! kill -0 "$IDLE_PID" 2>/dev/null; then
      wait "$IDLE_PID" && status=0 || status=$?
    fi
    cat "$LOADGEN_ERR" >&2
    echo "run_echo: $1 did not hold $IDLE_CONNS idle connections (loadgen: $status)" >&2
  fi
  kill_pid "$IDLE_PID"
  IDLE_PID=""
  stop_server "$1"
}

if [ "$IDLE_CONNS" -gt 0 ]; then
  for rep in $(seq 1 "$IDLE_REPS"); do
    for k in $(seq 0 $((nservers - 1))); do
      server=${SERVERS[$(((k + rep - 1) % nservers))]}
      PORT=$((PORT + 1))
      bytes=$(idle_once "$server" "$PORT")
      printf '  idle conns=%s rep=%s %-16s bytes/conn=%s\n' "$IDLE_CONNS" "$rep" "$server" "${bytes:-failed}" >&2
      IDLE[$server]="${IDLE[$server]:-} $bytes"
    done
  done
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the results file: medians, one line per server ------------------------------
{
  echo "# echo benchmark (test/bench/echo/run_echo.sh): medians of $REPS repeats of ${RUN_SECONDS}s (+${WARMUP}s warm-up)"
  echo "# $MACHINE; load average $LOAD_BEFORE before, $LOAD_AFTER after"
  line="# key	title	family"
  for shape in $SHAPES; do line="$line	rps:$shape"; done
  for shape in $SHAPES; do line="$line	cpu:$shape"; done
  echo "$line	idle_bytes"
  for server in "${SERVERS[@]}"; do
    line="$server	${TITLE[$server]}	${FAMILY[$server]}"
    for shape in $SHAPES; do line="$line	$(values RPS "$server" "$shape" | median %.0f)"; done
    for shape in $SHAPES; do line="$line	$(values CPU "$server" "$shape" | median %.3f)"; done
    idle=n/a
    [ "$IDLE_CONNS" -gt 0 ] && idle=$(values IDLE "$server" | median %.0f)
    echo "$line	$idle"
  done
} | sed 's/\tn\/a/\tNaN/g' >"$RESULTS"

# ---- tables (from the results file) ------------------------------------------------
bench_report "$HERE/echo_tables.sh" "$RESULTS" "$RUNS"

# ---- the chart ---------------------------------------------------------------------
if command -v gnuplot >/dev/null; then
  bash "$HERE/plot_echo.sh" "$RESULTS" "$CHART" && echo "Chart: $CHART"
else
  echo "run_echo: gnuplot not installed (gnuplot-nox): no chart" >&2
fi

# ---- where the CPU went (ECHO_PROFILE) ------------------------------------------------
[ -z "$PROFILE" ] || bash "$HERE/profile_tables.sh" "$PROFILE" "$RUNS"
