#!/usr/bin/env bash
# Echo benchmark, facade edition: the same load generator as
# test/bench/echo/run_echo.sh against rill's callback echo server
# (samples/echo_server), the blocking-facade one
# (samples/echo_server_blocking) and the Go one (samples/go/echo_server.go,
# with GOMAXPROCS=1 and with Go's default), to show what the fibers cost.
#
#   test/bench/fiber/run_echo_facade.sh <build dir>
#
# Servers run pinned to CPU 0 (taskset -c 0), the load generator to CPU 1;
# 64-byte messages; for each connection count every server runs REPS times
# (taking turns) and the median goes into the table. Pinned to one CPU, Go's
# default GOMAXPROCS is 1 too (the runtime counts the CPUs it may use), so
# "go default" differs from "go GOMAXPROCS=1" only when unpinned.
# Knobs (environment): ECHO_CONNS ("1 100 1000"), ECHO_SIZE (64),
# ECHO_SECONDS (3), ECHO_WARMUP (0.5), ECHO_REPS (3), ECHO_PORT (17600).
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
SECONDS_RUN=${ECHO_SECONDS:-3}
WARMUP=${ECHO_WARMUP:-0.5}
REPS=${ECHO_REPS:-3}
PORT=${ECHO_PORT:-17600}

CALLBACK=$BUILD/samples/echo_server
FACADE=$BUILD/samples/echo_server_blocking
LOADGEN=$BUILD/test/bench/echo/loadgen
for exe in "$CALLBACK" "$FACADE" "$LOADGEN"; do
  if [ ! -x "$exe" ]; then
    echo "run_echo_facade: $exe is missing: build with -DRILL_BUILD_BENCH=ON (samples on)" >&2
    exit 1
  fi
done

TMP=$(mktemp -d)
SERVER_PID=""
stop_server() {
  local pid=$SERVER_PID i
  [ -n "$pid" ] || return 0
  SERVER_PID=""
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "run_echo_facade: server $pid ignored SIGTERM for 2 s: killed" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop_server
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

# 1000 connections need more than the usual 1024 descriptors.
max=0
for c in $CONNS_LIST; do [ "$c" -gt "$max" ] && max=$c; done
if [ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt $((max + 64)) ]; then
  ulimit -Sn $((max + 64)) 2>/dev/null || { echo "run_echo_facade: need $((max + 64)) descriptors" >&2; exit 1; }
fi

PIN_SERVER=()
PIN_CLIENT=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  PIN_SERVER=(taskset -c 0)
  PIN_CLIENT=(taskset -c 1)
else
  echo "run_echo_facade: taskset or a second CPU missing: running unpinned" >&2
fi

SERVERS=(callback facade)
if command -v go >/dev/null; then
  if (cd "$ROOT/samples/go" && go build -o "$TMP/go_echo_server" .) >&2; then
    SERVERS+=(go1 go)
  else
    echo "run_echo_facade: building samples/go failed: no Go server" >&2
  fi
else
  echo "run_echo_facade: go not installed: no Go server" >&2
fi

start_server() { # name port
  local i
  case $1 in
    callback) "${PIN_SERVER[@]}" "$CALLBACK" --listen "127.0.0.1:$2" --quiet & ;;
    facade) "${PIN_SERVER[@]}" "$FACADE" --listen "127.0.0.1:$2" --quiet 2>/dev/null & ;;
    go1) GOMAXPROCS=1 "${PIN_SERVER[@]}" "$TMP/go_echo_server" --listen "127.0.0.1:$2" --quiet & ;;
    go) env -u GOMAXPROCS "${PIN_SERVER[@]}" "$TMP/go_echo_server" --listen "127.0.0.1:$2" --quiet & ;;
  esac
  SERVER_PID=$!
  for i in $(seq 1 100); do
    kill -0 "$SERVER_PID" 2>/dev/null || { SERVER_PID=""; return 1; }
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  return 1
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "# echo (facade edition): ${SIZE} B messages, ${SECONDS_RUN}s x $REPS runs, servers: ${SERVERS[*]}" >&2
echo "# $(uname -sr), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //')" >&2
declare -A RESULTS
n=${#SERVERS[@]}
for conns in $CONNS_LIST; do
  for rep in $(seq 1 "$REPS"); do
    for k in $(seq 0 $((n - 1))); do
      server=${SERVERS[$(((k + rep - 1) % n))]}
      PORT=$((PORT + 1))
      rps=""
      if start_server "$server" "$PORT"; then
        if out=$("${PIN_CLIENT[@]}" "$LOADGEN" --connect "127.0.0.1:$PORT" --conns "$conns" --size "$SIZE" \
                  --seconds "$SECONDS_RUN" --warmup "$WARMUP" 2>"$TMP/loadgen.err"); then
          rps=${out##*rps=}
        else
          cat "$TMP/loadgen.err" >&2
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "run_echo_facade: $server died" >&2; rps=""; }
      else
        echo "run_echo_facade: $server did not start" >&2
      fi
      stop_server
      printf '  conns=%-5s rep=%s %-8s rps=%s\n' "$conns" "$rep" "$server" "${rps:-failed}" >&2
      RESULTS["$server $conns"]="${RESULTS["$server $conns"]:-} $rps"
    done
  done
done

med() { tr ' ' '\n' <<<"${RESULTS["$1 $2"]:-}" | grep -v '^$' | median; }
have_go=0
[[ " ${SERVERS[*]} " == *" go "* ]] && have_go=1
echo
if [ $have_go = 1 ]; then
  echo "| conns | callback rps | facade rps | facade/callback | Go GOMAXPROCS=1 rps | Go default rps |"
  echo "|------:|-------------:|-----------:|----------------:|--------------------:|---------------:|"
else
  echo "| conns | callback rps | facade rps | facade/callback |"
  echo "|------:|-------------:|-----------:|----------------:|"
fi
for conns in $CONNS_LIST; do
  cb=$(med callback "$conns")
  fa=$(med facade "$conns")
  ratio=$(awk -v a="$fa" -v b="$cb" 'BEGIN { if (a == "n/a" || b == "n/a" || b == 0) print "n/a"; else printf "%.2f", a / b }')
  if [ $have_go = 1 ]; then
    echo "| $conns | $cb | $fa | $ratio | $(med go1 "$conns") | $(med go "$conns") |"
  else
    echo "| $conns | $cb | $fa | $ratio |"
  fi
done
