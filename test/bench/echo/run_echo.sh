#!/usr/bin/env bash
# Echo benchmark: rill's callback echo server against a raw epoll server and
# (when `go` is installed) the Go server, all driven by the same raw epoll
# load generator in another process.
#
#   test/bench/echo/run_echo.sh <build dir>
#
# The build dir must come from a -DRILL_BUILD_BENCH=ON build (it holds
# samples/echo_server and test/bench/echo/{raw_epoll_server,loadgen}). Servers
# run pinned to CPU 0, the load generator to CPU 1. For every connection count,
# each server is measured REPS times, the servers taking turns, and the median
# goes into the table.
#
# Knobs (environment): ECHO_CONNS ("1 100 1000"), ECHO_SIZE (64),
# ECHO_SECONDS (3), ECHO_WARMUP (0.5), ECHO_REPS (3), ECHO_PORT (first port,
# 17300), ECHO_SERVER_CPU (0), ECHO_CLIENT_CPU (1).
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
PORT=${ECHO_PORT:-17300}
SERVER_CPU=${ECHO_SERVER_CPU:-0}
CLIENT_CPU=${ECHO_CLIENT_CPU:-1}

RILL_SERVER=$BUILD/samples/echo_server
RAW_SERVER=$BUILD/test/bench/echo/raw_epoll_server
LOADGEN=$BUILD/test/bench/echo/loadgen
GO_SERVER=$BUILD/test/bench/echo/go_echo_server

for exe in "$RILL_SERVER" "$RAW_SERVER" "$LOADGEN"; do
  if [ ! -x "$exe" ]; then
    echo "run_echo: $exe is missing: build with -DRILL_BUILD_BENCH=ON and -DRILL_BUILD_SAMPLES=ON" >&2
    exit 1
  fi
done

# ---- cleanup: every server we start is killed, whatever happens -----------
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    sleep 0.2
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
  [ -z "${LOADGEN_ERR:-}" ] || rm -f "$LOADGEN_ERR"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# ---- descriptors: 1000 connections need more than the usual 1024 ----------
max_conns=0
for c in $CONNS_LIST; do [ "$c" -gt "$max_conns" ] && max_conns=$c; done
need=$((max_conns + 64))
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

# ---- the Go server, built into the build dir ----------------------------------
SERVERS=(rill raw)
if command -v go >/dev/null; then
  if (cd "$ROOT/samples/go" && go build -o "$GO_SERVER" .) >&2; then
    SERVERS+=(go)
  else
    echo "run_echo: building the Go server failed: skipping it" >&2
  fi
else
  echo "run_echo: go not installed: skipping the Go server" >&2
fi

server_cmd() {
  case $1 in
    rill) echo "$RILL_SERVER" ;;
    raw) echo "$RAW_SERVER" ;;
    go) echo "$GO_SERVER" ;;
  esac
}

start_server() { # name port
  local exe
  exe=$(server_cmd "$1")
  "${PIN_SERVER[@]}" "$exe" --listen "127.0.0.1:$2" --quiet &
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

median() { # [printf format] < numbers: their median, "n/a" if none
  sort -n | awk -v fmt="${1:-%.0f}" '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf fmt "\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ---- the runs -----------------------------------------------------------------
echo "# echo benchmark: size=$SIZE B, ${RUN_SECONDS}s x $REPS runs (+${WARMUP}s warm-up), servers: ${SERVERS[*]}" >&2
echo "# $(uname -sr), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //')" >&2

declare -A RESULTS # "server conns" -> space-separated rps values
declare -A CPU     # "server conns" -> server CPU microseconds per round trip
CLK_TCK=$(getconf CLK_TCK)
LOADGEN_ERR=$(mktemp)
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
      printf '  conns=%-5s rep=%s %-5s rps=%-8s server cpu/rt=%s us\n' "$conns" "$rep" "$server" \
        "${rps:-failed}" "${cpu:-?}" >&2
      RESULTS["$server $conns"]="${RESULTS["$server $conns"]:-} $rps"
      CPU["$server $conns"]="${CPU["$server $conns"]:-} $cpu"
    done
  done
done

values() { # array-name server conns: one value a line
  local -n arr=$1
  tr ' ' '\n' <<<"${arr["$2 $3"]:-}" | grep -v '^$' || true
}
med() { values RESULTS "$1" "$2" | median; }
range() { values "$1" "$2" "$3" | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR) printf "%s-%s", lo, hi; else print "n/a" }'; }

have_go=0
[[ " ${SERVERS[*]} " == *" go "* ]] && have_go=1
echo
if [ $have_go = 1 ]; then
  echo "| conns | rill rps | raw epoll rps | rill/raw ratio | go rps |"
  echo "|------:|---------:|--------------:|---------------:|-------:|"
else
  echo "| conns | rill rps | raw epoll rps | rill/raw ratio |"
  echo "|------:|---------:|--------------:|---------------:|"
fi
for conns in $CONNS_LIST; do
  r=$(med rill "$conns")
  w=$(med raw "$conns")
  ratio=$(awk -v a="$r" -v b="$w" 'BEGIN { if (a == "n/a" || b == "n/a" || b == 0) print "n/a"; else printf "%.2f", a / b }')
  if [ $have_go = 1 ]; then
    echo "| $conns | $r | $w | $ratio | $(med go "$conns") |"
  else
    echo "| $conns | $r | $w | $ratio |"
  fi
done

# Context for the medians: the spread over the repetitions, and what the
# server spent per round trip (user + system CPU, the kernel's TCP work
# included), which a busy machine disturbs less than the rate does.
echo
echo "Spread over $REPS runs (rps min-max) and median server CPU per round trip (us):"
echo
header="| conns |"
rule="|------:|"
for server in "${SERVERS[@]}"; do
  header="$header $server rps range | $server cpu/rt |"
  rule="$rule------:|------:|"
done
echo "$header"
echo "$rule"
for conns in $CONNS_LIST; do
  line="| $conns |"
  for server in "${SERVERS[@]}"; do
    line="$line $(range RESULTS "$server" "$conns") | $(values CPU "$server" "$conns" | median %.2f) |"
  done
  echo "$line"
done
