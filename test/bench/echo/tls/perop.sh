#!/usr/bin/env bash
# What a TLS echo server does per round trip or handshake, in counts that a
# busy machine does not blur: system calls (strace), user-space
# instructions (callgrind) or page faults. A companion to run_tls.sh, whose times a noisy
# machine moves; these numbers it does not.
#
#   test/bench/echo/tls/perop.sh <build dir> strace|callgrind|faults
#
# strace: the server runs each test once under strace -f -ttt, and the
# calls it made within tls_loadgen's measurement window (its window= times)
# are divided by the round trips or handshakes the window counted.
#
# callgrind (which cannot tell time from the outside): each server runs
# each test twice, for PEROP_SHORT and PEROP_LONG seconds of load; what the
# longer run cost beyond the shorter one, divided by the round trips or
# handshakes it did beyond it (tls_loadgen's total_ops), is the cost per
# operation: the start, the exit and the echo tests' 100 first handshakes
# cancel out.
#
# faults: as callgrind, with no tool: the page faults (minor) the server
# took, from /proc/PID/stat just before it is stopped (a fault is a page
# the kernel had to map: zeroed memory, or a stack page given back).
#
# Output, one line per server and test: instructions per op (callgrind), or
# system calls per op by name, "name=calls(errors)", errors being the calls
# that failed (a read() that met EAGAIN, say). The load generator is not
# pinned; the counts do not depend on the machine's load (the batching of
# epoll_wait a little).
#
# Knobs: PEROP_SERVERS (callbacks fibers raw libevent go; callgrind skips
# go), PEROP_TESTS (100x64 100x16384 full resumed), PEROP_SHORT (1),
# PEROP_LONG (3; under callgrind, a server may not make the echo tests' 100
# handshakes within tls_loadgen's 10 s: use 10x64 10x16384), PEROP_WARMUP
# (0.5; under callgrind the first handshakes take seconds each on a busy
# machine: give the handshake tests 10 or more, and a PEROP_SHORT long
# enough to count some), PEROP_PORT (17900), PEROP_KEEP (a directory: the
# tool's files are kept there, e.g. for callgrind_annotate).
set -euo pipefail

if [ $# -ne 2 ] || [ ! -d "$1" ]; then
  echo "usage: $0 <build dir> strace|callgrind|faults" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
TOOL=$2
HERE=$(cd "$(dirname "$0")" && pwd)
SERVERS=${PEROP_SERVERS:-"callbacks fibers raw libevent go"}
TESTS=${PEROP_TESTS:-"100x64 100x16384 full resumed"}
SHORT=${PEROP_SHORT:-1}
LONG=${PEROP_LONG:-3}
WARMUP=${PEROP_WARMUP:-0.5}
PORT=${PEROP_PORT:-17900}
TMP=$(mktemp -d)
case $TOOL in strace | callgrind | faults) ;; *) echo "perop: the tool is strace, callgrind or faults" >&2; exit 2 ;; esac

# shellcheck source=tls_servers.sh
. "$HERE/tls_servers.sh"

TOOL_PID=""
cleanup() {
  if [ -n "$TOOL_PID" ]; then
    kill -KILL "$TOOL_PID" 2>/dev/null || true
    wait "$TOOL_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

NEWKEY=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
tls_make_certs "perop CA" "basicConstraints=CA:FALSE" "subjectAltName=IP:127.0.0.1"
if [[ " $SERVERS " == *" go "* ]] && command -v go >/dev/null; then
  (cd "$HERE/go" && go build -o "${EXE[go]}" .) >&2
fi

# The server's pid: strace's child, or valgrind itself (it becomes the server).
server_pid() {
  if [ "$TOOL" = strace ]; then
    cat "/proc/$TOOL_PID/task/$TOOL_PID/children" 2>/dev/null | cut -d' ' -f1
  else
    echo "$TOOL_PID"
  fi
}

# One run: prints "<total ops> <cost file> <window ops> <window start> <window end>".
run_once() { # server test seconds port
  local server=$1 test=$2 seconds=$3 port=$4 out args spid
  out=$TMP/$server.$test.$seconds.$TOOL
  case $test in
    full | resumed) args=(--mode "$test" --conns 16 --size 64) ;;
    *) args=(--mode echo --conns "${test%x*}" --size "${test#*x}") ;;
  esac
  local cmd=("${EXE[$server]}" --cert "$TMP/server.pem" --key "$TMP/server.key" --listen "127.0.0.1:$port" --quiet)
  # shellcheck disable=SC2086 # ENVS holds NAME=VALUE words
  if [ "$TOOL" = strace ]; then
    env ${ENVS[$server]:-} strace -f -ttt -o "$out" "${cmd[@]}" >/dev/null 2>&1 &
  elif [ "$TOOL" = faults ]; then
    env ${ENVS[$server]:-} "${cmd[@]}" >/dev/null 2>&1 &
  else
    env ${ENVS[$server]:-} valgrind --tool=callgrind --callgrind-out-file="$out" "${cmd[@]}" >/dev/null 2>&1 &
  fi
  TOOL_PID=$!
  for _ in $(seq 1 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
  local line
  line=$("$LOADGEN" --connect "127.0.0.1:$port" "${args[@]}" --seconds "$seconds" --warmup "$WARMUP") || line=""
  spid=$(server_pid)
  if [ "$TOOL" = faults ]; then
    # minflt is field 10 of /proc/PID/stat; the name before it has no spaces here.
    cut -d' ' -f10 "/proc/$spid/stat" >"$out"
  fi
  kill -TERM "$spid"
  wait "$TOOL_PID" || true
  TOOL_PID=""
  local ops total window
  ops=$(sed -n 's/.* ops=\([0-9]*\) .*/\1/p' <<<"$line")
  total=$(sed -n 's/.* total_ops=\([0-9]*\).*/\1/p' <<<"$line")
  window=$(sed -n 's/.* window=\([0-9.]*\)-\([0-9.]*\).*/\1 \2/p' <<<"$line")
  echo "${total:--} $out ${ops:--} ${window:--}"
}

# The calls in strace -f -ttt's log between two times, per op:
# "total=T name=calls(errors) ..." (a call split by another thread's is
# counted where it started).
strace_window() { # log ops start end
  awk -v n="$2" -v t0="$3" -v t1="$4" '
    $2 + 0 < t0 || $2 + 0 > t1 || $3 == "<..." || $3 ~ /^[+-]/ { next }
    {
      name = $3; sub(/\(.*/, "", name)
      calls[name]++; total++
      if ($0 ~ / = -1 E/) errs[name]++
    }
    END {
      printf "total=%.2f", total / n
      for (k in calls) if (calls[k] / n >= 0.05) {
        printf " %s=%.2f", k, calls[k] / n
        if (errs[k] / n >= 0.05) printf "(%.2f)", errs[k] / n
      }
    }' "$1"
}

instructions() { # callgrind out file: total Ir
  sed -n 's/^totals: \([0-9]*\).*/\1/p' "$1"
}

echo "# perop.sh $TOOL: $(date -u '+%F %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for test in $TESTS; do
  for server in $SERVERS; do
    [ -x "${EXE[$server]}" ] || continue
    [ "$TOOL" = callgrind ] && [ "$server" = go ] && continue
    if [ "$TOOL" != strace ]; then
      PORT=$((PORT + 2))
      read -r n1 f1 _ <<<"$(run_once "$server" "$test" "$SHORT" $((PORT - 1)))"
      read -r n2 f2 _ <<<"$(run_once "$server" "$test" "$LONG" "$PORT")"
      if ! [[ $n1 =~ ^[0-9]+$ && $n2 =~ ^[0-9]+$ ]]; then
        printf '%-10s %-10s failed\n' "$test" "$server"
        continue
      fi
      ops=$((n2 - n1))
      if [ "$TOOL" = faults ]; then
        i1=$(cat "$f1") i2=$(cat "$f2") what=faults
      else
        i1=$(instructions "$f1") i2=$(instructions "$f2") what=instructions
      fi
      printf '%-10s %-10s ops=%-7s %s/op=%s\n' "$test" "$server" "$ops" "$what" \
        "$(awk -v a="$i1" -v b="$i2" -v n="$ops" 'BEGIN { printf "%.2f", (b - a) / n }')"
    else
      PORT=$((PORT + 1))
      read -r _ f2 ops w0 w1 <<<"$(run_once "$server" "$test" "$LONG" "$PORT")"
      if ! [[ ${w1:-} =~ ^[0-9.]+$ ]]; then
        printf '%-10s %-10s failed\n' "$test" "$server"
        continue
      fi
      printf '%-10s %-10s ops=%-7s %s\n' "$test" "$server" "$ops" "$(strace_window "$f2" "$ops" "$w0" "$w1")"
    fi
    if [ -n "${PEROP_KEEP:-}" ]; then
      mkdir -p "$PEROP_KEEP"
      cp "$f2" "$PEROP_KEEP/"
    fi
  done
done
