#!/usr/bin/env bash
# Echo benchmark: the same echo server written six ways, in one run, driven
# by the same raw epoll load generator in another process:
#
#   callbacks   samples/echo_server             rill's callback API (C)
#   fibers      samples/echo_server_blocking    rill's blocking facade (C)
#   coroutines  coro_echo_server                rill/coro.hpp (C++20)
#   go          samples/go (GOMAXPROCS=1)       goroutines, when go is installed
#   asio        asio_echo_server                Asio + C++20 coroutines, when built
#   raw         raw_epoll_server                hand-written epoll: the limit
#
#   test/bench/echo/run_echo.sh <build dir>
#
# The build dir must come from a -DRILL_BUILD_BENCH=ON build with samples
# (`make bench-build`). Servers run pinned to CPU 0, the load generator to
# CPU 1. Two measures:
#
#  1. Ping-pong: for every connection count, each server is measured REPS
#     times, the servers taking turns, and the medians go into the tables:
#     round trips per second, and the server's CPU time (user + system, from
#     /proc/PID/stat, the kernel's TCP work included) per round trip.
#  2. Idle memory: the server gets IDLE_CONNS connections that each make one
#     round trip and then stay quiet (loadgen --idle); its VmRSS growth over
#     IDLE_CONNS is the user-space memory one idle connection costs (kernel
#     socket memory is not in RSS). The baseline is read after one warm-up
#     connection has come and gone. Median of IDLE_REPS turns.
#
# Knobs (environment): ECHO_CONNS ("1 100 1000"), ECHO_SIZE (64),
# ECHO_SECONDS (3), ECHO_WARMUP (0.5), ECHO_REPS (3), ECHO_IDLE_CONNS (10000,
# 0 skips), ECHO_IDLE_REPS (3), ECHO_SERVERS (all of the above that exist),
# ECHO_PORT (first port, 17300), ECHO_SERVER_CPU (0), ECHO_CLIENT_CPU (1).
set -euo pipefail

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 <build dir>" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)

CONNS_LIST=${ECHO_CONNS:-"1 100 1000"}
SIZE=${ECHO_SIZE:-64}
RUN_SECONDS=${ECHO_SECONDS:-3}
WARMUP=${ECHO_WARMUP:-0.5}
REPS=${ECHO_REPS:-3}
IDLE_CONNS=${ECHO_IDLE_CONNS:-10000}
IDLE_REPS=${ECHO_IDLE_REPS:-3}
PORT=${ECHO_PORT:-17300}
SERVER_CPU=${ECHO_SERVER_CPU:-0}
CLIENT_CPU=${ECHO_CLIENT_CPU:-1}

LOADGEN=$BUILD/test/bench/echo/loadgen
TMP=$(mktemp -d)
declare -A EXE=(
  [callbacks]=$BUILD/samples/echo_server
  [fibers]=$BUILD/samples/echo_server_blocking
  [coroutines]=$BUILD/test/bench/echo/coro_echo_server
  [go]=$TMP/go_echo_server
  [asio]=$BUILD/test/bench/echo/asio_echo_server
  [raw]=$BUILD/test/bench/echo/raw_epoll_server
)
declare -A TITLE=(
  [callbacks]="rill callbacks" [fibers]="rill fibers" [coroutines]="rill coroutines"
  [go]="Go (GOMAXPROCS=1)" [asio]="Asio coroutines" [raw]="raw epoll"
)
ALL_SERVERS=(callbacks fibers coroutines go asio raw)

for exe in "${EXE[callbacks]}" "${EXE[raw]}" "$LOADGEN"; do
  if [ ! -x "$exe" ]; then
    echo "run_echo: $exe is missing: build with -DRILL_BUILD_BENCH=ON and -DRILL_BUILD_SAMPLES=ON" >&2
    rm -rf "$TMP"
    exit 1
  fi
done

# ---- cleanup: every process we start is killed, whatever happens ----------
SERVER_PID=""
IDLE_PID=""
kill_pid() { # pid
  [ -n "$1" ] || return 0
  if kill -0 "$1" 2>/dev/null; then
    kill -TERM "$1" 2>/dev/null || true
    sleep 0.2
    kill -KILL "$1" 2>/dev/null || true
  fi
  wait "$1" 2>/dev/null || true
}
cleanup() {
  kill_pid "$IDLE_PID"
  IDLE_PID=""
  kill_pid "$SERVER_PID"
  SERVER_PID=""
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# ---- descriptors: 1000 (or the idle) connections need more than 1024 -----
need=$IDLE_CONNS
for c in $CONNS_LIST; do [ "$c" -gt "$need" ] && need=$c; done
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
PIN_SERVER=()
PIN_CLIENT=()
if command -v taskset >/dev/null && [ "$(nproc --all)" -gt "$CLIENT_CPU" ]; then
  PIN_SERVER=(taskset -c "$SERVER_CPU")
  PIN_CLIENT=(taskset -c "$CLIENT_CPU")
else
  echo "run_echo: taskset or a second CPU missing: running unpinned" >&2
fi

# ---- which servers: the ones that exist --------------------------------------
if command -v go >/dev/null; then
  (cd "$ROOT/samples/go" && go build -o "${EXE[go]}" .) >&2 ||
    echo "run_echo: building the Go server failed: skipping it" >&2
else
  echo "run_echo: go not installed: skipping the Go server" >&2
fi
SERVERS=()
for server in ${ECHO_SERVERS:-${ALL_SERVERS[*]}}; do
  if [ -z "${EXE[$server]:-}" ]; then
    echo "run_echo: unknown server '$server' (${ALL_SERVERS[*]})" >&2
    exit 2
  elif [ -x "${EXE[$server]}" ]; then
    SERVERS+=("$server")
  else
    echo "run_echo: ${EXE[$server]} not built: skipping ${TITLE[$server]}" >&2
  fi
done

start_server() { # name port
  GOMAXPROCS=1 "${PIN_SERVER[@]}" "${EXE[$1]}" --listen "127.0.0.1:$2" --quiet &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "run_echo: $1 server exited at start" >&2
      SERVER_PID=""
      return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  echo "run_echo: $1 server does not listen on port $2" >&2
  return 1
}

stop_server() { # name
  local pid=$SERVER_PID i
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "run_echo: $1 server ignored SIGTERM for 2 s: killed" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  SERVER_PID=""
}

# utime + stime of a process, all its threads, in clock ticks.
cpu_ticks() {
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
vm_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

median() { # [printf format] < numbers: their median, "n/a" if none
  sort -n | awk -v fmt="${1:-%.0f}" '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf fmt "\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ---- 1. ping-pong --------------------------------------------------------------
echo "# echo benchmark: size=$SIZE B, ${RUN_SECONDS}s x $REPS runs (+${WARMUP}s warm-up), servers: ${SERVERS[*]}" >&2
echo "# $(date -u +%F), $(uname -sr), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2

declare -A RESULTS # "server conns" -> space-separated rps values
declare -A CPU     # "server conns" -> server CPU microseconds per round trip
declare -A IDLE    # server -> space-separated bytes per idle connection
CLK_TCK=$(getconf CLK_TCK)
LOADGEN_ERR=$TMP/loadgen.err
nservers=${#SERVERS[@]}
for conns in $CONNS_LIST; do
  for rep in $(seq 1 "$REPS"); do
    # Take turns: each repetition starts with a different server.
    for k in $(seq 0 $((nservers - 1))); do
      server=${SERVERS[$(((k + rep - 1) % nservers))]}
      PORT=$((PORT + 1))
      rps=""
      cpu=""
      if start_server "$server" "$PORT"; then
        ticks0=$(cpu_ticks "$SERVER_PID")
        if out=$("${PIN_CLIENT[@]}" "$LOADGEN" --connect "127.0.0.1:$PORT" --conns "$conns" \
                  --size "$SIZE" --seconds "$RUN_SECONDS" --warmup "$WARMUP" 2>"$LOADGEN_ERR"); then
          rps=${out##*rps=}
          ticks1=$(cpu_ticks "$SERVER_PID")
          trips=$(sed -n 's/^loadgen: round_trips=//p' "$LOADGEN_ERR")
          cpu=$(awk -v t="$((ticks1 - ticks0))" -v hz="$CLK_TCK" -v n="${trips:-0}" \
                  'BEGIN { if (n > 0) printf "%.2f", t * 1e6 / hz / n }')
        else
          cat "$LOADGEN_ERR" >&2
          echo "run_echo: loadgen against $server failed" >&2
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
          echo "run_echo: $server server died during the run" >&2
          rps=""
          cpu=""
        fi
        stop_server "$server"
      fi
      printf '  conns=%-5s rep=%s %-10s rps=%-8s server cpu/rt=%s us\n' "$conns" "$rep" "$server" \
        "${rps:-failed}" "${cpu:-?}" >&2
      RESULTS["$server $conns"]="${RESULTS["$server $conns"]:-} $rps"
      CPU["$server $conns"]="${CPU["$server $conns"]:-} $cpu"
    done
  done
done

# ---- 2. idle memory --------------------------------------------------------------
idle_once() { # server: prints bytes per idle connection, or nothing
  local before after i
  PORT=$((PORT + 1))
  start_server "$1" "$PORT" || return 0
  # One connection comes and goes first: what every connection shares
  # (pools, the runtime's first growth) is in the baseline.
  if ! "${PIN_CLIENT[@]}" "$LOADGEN" --connect "127.0.0.1:$PORT" --conns 1 --size "$SIZE" \
       --seconds 0.2 --warmup 0 >/dev/null 2>"$LOADGEN_ERR"; then
    cat "$LOADGEN_ERR" >&2
    stop_server "$1"
    return 0
  fi
  sleep 0.2
  before=$(vm_rss_kb "$SERVER_PID")
  "${PIN_CLIENT[@]}" "$LOADGEN" --idle --connect "127.0.0.1:$PORT" --conns "$IDLE_CONNS" --size "$SIZE" \
    --seconds 120 >"$TMP/idle.out" 2>"$LOADGEN_ERR" &
  IDLE_PID=$!
  for i in $(seq 1 600); do
    grep -q ready "$TMP/idle.out" 2>/dev/null && break
    kill -0 "$IDLE_PID" 2>/dev/null || break
    sleep 0.1
  done
  if grep -q ready "$TMP/idle.out" 2>/dev/null; then
    sleep 0.5 # let the server settle (Go's background work, say)
    after=$(vm_rss_kb "$SERVER_PID")
    if [ -n "$before" ] && [ -n "$after" ]; then
      awk -v a="$after" -v b="$before" -v n="$IDLE_CONNS" 'BEGIN { printf "%.0f\n", (a - b) * 1024 / n }'
    fi
  else
    cat "$LOADGEN_ERR" >&2
    echo "run_echo: $1 did not hold $IDLE_CONNS idle connections" >&2
  fi
  kill_pid "$IDLE_PID"
  IDLE_PID=""
  stop_server "$1"
}

if [ "$IDLE_CONNS" -gt 0 ]; then
  for rep in $(seq 1 "$IDLE_REPS"); do
    for k in $(seq 0 $((nservers - 1))); do
      server=${SERVERS[$(((k + rep - 1) % nservers))]}
      bytes=$(idle_once "$server")
      printf '  idle conns=%s rep=%s %-10s bytes/conn=%s\n' "$IDLE_CONNS" "$rep" "$server" "${bytes:-failed}" >&2
      IDLE[$server]="${IDLE[$server]:-} $bytes"
    done
  done
fi

# ---- tables ---------------------------------------------------------------------
values() { # array-name key...: one value a line
  local -n arr=$1
  shift
  tr ' ' '\n' <<<"${arr["$*"]:-}" | grep -v '^$' || true
}
range() { values "$@" | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%s-%s", lo, hi; else print "n/a" }'; }
# "value (ratio to raw epoll)"
with_ratio() { # value raw-value format
  awk -v a="$1" -v b="$2" -v fmt="$3" 'BEGIN {
    if (a == "n/a") { print "n/a"; exit }
    printf fmt, a
    if (b != "n/a" && b > 0) printf " (%.2f)", a / b
    printf "\n" }'
}
have_raw=0
[[ " ${SERVERS[*]} " == *" raw "* ]] && have_raw=1

header="| conns |"
rule="|------:|"
for server in "${SERVERS[@]}"; do
  header="$header ${TITLE[$server]} |"
  rule="$rule------:|"
done
conns_rule=$rule

echo
echo "Round trips per second, median of $REPS (in brackets: the ratio to raw epoll; higher is better):"
echo
echo "$header"
echo "$conns_rule"
for conns in $CONNS_LIST; do
  raw=n/a
  [ $have_raw = 1 ] && raw=$(values RESULTS raw "$conns" | median)
  line="| $conns |"
  for server in "${SERVERS[@]}"; do
    line="$line $(with_ratio "$(values RESULTS "$server" "$conns" | median)" "$raw" %.0f) |"
  done
  echo "$line"
done

echo
echo "Server CPU per round trip, user + system, µs, median of $REPS (ratio to raw epoll; lower is better):"
echo
echo "$header"
echo "$conns_rule"
for conns in $CONNS_LIST; do
  raw=n/a
  [ $have_raw = 1 ] && raw=$(values CPU raw "$conns" | median %.2f)
  line="| $conns |"
  for server in "${SERVERS[@]}"; do
    line="$line $(with_ratio "$(values CPU "$server" "$conns" | median %.2f)" "$raw" %.2f) |"
  done
  echo "$line"
done

if [ "$IDLE_CONNS" -gt 0 ]; then
  echo
  echo "Server RSS per idle connection (bytes; $IDLE_CONNS connections, one round trip each, median of $IDLE_REPS):"
  echo
  line="|"
  idle_rule="|"
  for server in "${SERVERS[@]}"; do
    line="$line ${TITLE[$server]} |"
    idle_rule="$idle_rule------:|"
  done
  echo "$line"
  echo "$idle_rule"
  line="|"
  for server in "${SERVERS[@]}"; do
    line="$line $(values IDLE "$server" | median) |"
  done
  echo "$line"
fi

echo
echo "Spread over $REPS runs (round trips per second, min-max):"
echo
echo "$header"
echo "$conns_rule"
for conns in $CONNS_LIST; do
  line="| $conns |"
  for server in "${SERVERS[@]}"; do
    line="$line $(range RESULTS "$server" "$conns") |"
  done
  echo "$line"
done
