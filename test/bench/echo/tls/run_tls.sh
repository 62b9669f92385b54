#!/usr/bin/env bash
# TLS echo benchmark: the same TLS 1.3 echo server written several ways,
# driven by one OpenSSL load generator (tls_loadgen.c) in another process:
#
#   callbacks  samples/echo_server --cert --key           rill's callback API over rill/tls.h
#   fibers     samples/echo_server_blocking --cert --key  rill's blocking facade (rill_net_tls_listen)
#   go         go/tls_echo_server.go (GOMAXPROCS=1)       crypto/tls, when go is installed
#   libevent   libevent_tls_server                        libevent's bufferevent_openssl
#   raw        raw_tls_epoll_server                       OpenSSL + epoll by hand: the limit
#
#   test/bench/echo/tls/run_tls.sh <build dir>
#
# Every connection is TLS 1.3, TLS_AES_128_GCM_SHA256, X25519, with a
# throwaway CA and server certificate (ECDSA P-256, or RSA 2048 with
# TLS_KEY=rsa) made in a temporary directory at each run and removed after:
# no key is ever kept. Every server takes the command line
# `--cert FILE --key FILE --listen ADDR --quiet` (tls_peer.h).
#
# Tests, each run on every server in every repeat, the servers taking turns
# in an order that rotates (so a burst of noise falls on different servers):
#   CONNSxBYTES  ping-pong on CONNS connections with BYTES-byte messages
#                (TLS_SHAPES, "100x64 100x16384"): round trips per second
#   full         TLS_HS_CONNS (16) connections at a time, each: connect, full
#                handshake, one 64-byte echo, close: handshakes per second
#   resumed      the same, each resuming with a TLS 1.3 ticket from an
#                earlier connection (tls_loadgen fails if < 90% resumed)
# and for each, the server's CPU (user + system from /proc/PID/stat, its
# kernel TCP work included) per round trip or handshake over the same
# window (and the load generator's own, to judge what set the rate).
# Medians of the repeats, and their ratio to the raw server's.
#
# Servers run pinned to one CPU, the load generator to another (taskset).
# The load generator spends about what the server does per handshake, so the
# handshake rates can be the client's limit: the server CPU per handshake is
# the comparable number (the "core busy" table says how loaded the server
# and the load generator were: both well under 100% means the machine's other
# work set the rate).
#
# Medians go to TLS_RESULTS (docs/bench/tls.tsv), every measurement beside it
# (tls-runs.tsv); tls_tables.sh prints the tables (stdout) from them.
#
# Knobs (environment): TLS_SHAPES, TLS_HANDSHAKES ("full resumed"),
# TLS_HS_CONNS (16), TLS_SECONDS (3), TLS_WARMUP (0.5), TLS_REPS (3),
# TLS_SERVERS (all of the above that exist), TLS_KEY (ec), TLS_PORT (first
# port, 17600), TLS_SERVER_CPU (0), TLS_CLIENT_CPU (1), TLS_RESULTS.
# BENCH_QUICK=1 is a short run (1 s per point, 1 repeat) that writes its
# results into the build dir, not docs/.
#
# TLS_PROFILE=DIR records each run's server with perf, writes the results
# into DIR instead of docs/, and ends with ../profile_tables.sh's tables:
# each server's CPU per round trip or handshake by function, against the
# first server named (as run_echo.sh's ECHO_PROFILE).
set -euo pipefail

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 <build dir>" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../../.." && pwd)
BENCH_NAME=run_tls
# shellcheck source=../bench_lib.sh
. "$HERE/../bench_lib.sh"

if [ "${BENCH_QUICK:-0}" = 1 ]; then
  q_seconds=1 q_warmup=0.2 q_reps=1 q_results=$BUILD/tls-quick.tsv
else
  q_seconds=3 q_warmup=0.5 q_reps=3 q_results=$ROOT/docs/bench/tls.tsv
fi
PROFILE=$(bench_profile_dir TLS_PROFILE)
[ -z "$PROFILE" ] || q_results=$PROFILE/tls.tsv
SHAPES=${TLS_SHAPES:-"100x64 100x16384"}
HANDSHAKES=${TLS_HANDSHAKES:-"full resumed"}
HS_CONNS=${TLS_HS_CONNS:-16}
RUN_SECONDS=${TLS_SECONDS:-$q_seconds}
WARMUP=${TLS_WARMUP:-$q_warmup}
REPS=${TLS_REPS:-$q_reps}
RESULTS=${TLS_RESULTS:-$q_results}
RUNS=$(dirname "$RESULTS")/$(basename "$RESULTS" .tsv)-runs.tsv
KEY_TYPE=${TLS_KEY:-ec}
PORT=${TLS_PORT:-17600}
SERVER_CPU=${TLS_SERVER_CPU:-0}
CLIENT_CPU=${TLS_CLIENT_CPU:-1}

# shellcheck disable=SC2086 # the shapes are words
bench_check_shapes TLS_SHAPES $SHAPES
for hs in $HANDSHAKES; do
  case $hs in full | resumed) ;; *) echo "run_tls: bad handshake '$hs' in TLS_HANDSHAKES: full, resumed" >&2; exit 2 ;; esac
done
case $KEY_TYPE in
  ec) NEWKEY=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) KEY_TITLE="ECDSA P-256" ;;
  rsa) NEWKEY=(-newkey rsa:2048) KEY_TITLE="RSA 2048" ;;
  *) echo "run_tls: TLS_KEY is ec or rsa" >&2; exit 2 ;;
esac
TESTS="$SHAPES $HANDSHAKES"

TMP=$(mktemp -d)

# ---- the servers (tls_servers.sh); a missing executable is skipped with a note --
# shellcheck source=tls_servers.sh
. "$HERE/tls_servers.sh"

for exe in "${EXE[raw]}" "$LOADGEN"; do
  if [ ! -x "$exe" ]; then
    echo "run_tls: $exe is missing: build with -DRILL_BUILD_BENCH=ON and OpenSSL 3 (libssl-dev)" >&2
    rm -rf "$TMP"
    exit 1
  fi
done
if ! command -v openssl >/dev/null; then
  echo "run_tls: the openssl command is missing (openssl): it makes the certificates" >&2
  rm -rf "$TMP"
  exit 1
fi

# ---- cleanup: every process we start is killed, the keys removed --------------
bench_traps PERF_PID

# ---- a throwaway CA and server certificate (for 127.0.0.1) --------------------
tls_make_certs "rill TLS benchmark CA" "basicConstraints=CA:FALSE" \
  "keyUsage=digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1" ||
  { echo "run_tls: openssl could not make the certificates" >&2; exit 1; }
CERT_ARGS=(--cert "$TMP/server.pem" --key "$TMP/server.key")

# ---- pinning ----------------------------------------------------------------
bench_pin "$SERVER_CPU" "$CLIENT_CPU"

start_server() { # name port
  # shellcheck disable=SC2086 # ENVS holds NAME=VALUE words
  bench_start "$1" "$2" /dev/null env ${ENVS[$1]:-} "${PIN_SERVER[@]}" "${EXE[$1]}" "${CERT_ARGS[@]}" \
    --listen "127.0.0.1:$2" --quiet
}

# Echoes, the chain checked against the CA: the server speaks TLS 1.3 with
# the certificate it was given before it is measured. (A server that cannot
# resume fails only the resumed test: tls_loadgen checks that one itself.)
server_works() { # name
  local ok=0
  PORT=$((PORT + 1))
  start_server "$1" "$PORT" || return 1
  "$LOADGEN" --mode echo --connect "127.0.0.1:$PORT" --ca "$TMP/ca.pem" --seconds 0.1 --warmup 0 \
    >/dev/null 2>"$TMP/check.err" || ok=1
  stop_server "$1"
  [ $ok = 0 ] || sed 's/^/  /' "$TMP/check.err" >&2
  return $ok
}

checked() { # server
  server_works "$1" && return 0
  echo "run_tls: ${TITLE[$1]} failed the check (echoes over TLS 1.3, chain verified): skipping it" >&2
  NOTES+=("${TITLE[$1]}: skipped, failed the check run")
  return 1
}

# ---- which servers: the ones that exist and work -------------------------------
bench_build_go "$HERE/go" "${EXE[go]}"
# shellcheck disable=SC2086 # the server names are words
bench_select_servers checked ${TLS_SERVERS:-${ALL_SERVERS[*]}}
[ ${#SERVERS[@]} -gt 0 ] || { echo "run_tls: no server to measure" >&2; exit 1; }

# ---- the measurements ------------------------------------------------------------
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
MACHINE="$(bench_machine), $(openssl version | cut -d' ' -f1-2)"
if [ -x "${EXE[go]}" ]; then MACHINE="$MACHINE, $(go version | cut -d' ' -f3)"; fi
echo "# TLS benchmark: tests $TESTS, ${RUN_SECONDS}s x $REPS repeats (+${WARMUP}s warm-up), $KEY_TITLE, servers: ${SERVERS[*]}" >&2
echo "# $MACHINE, load average $LOAD_BEFORE" >&2

declare -A RATE # "server test" -> space-separated values, one per repeat
declare -A CPU  # "server test" -> server CPU µs per round trip or handshake
declare -A CCPU # "server test" -> the load generator's CPU µs per the same
LOADGEN_ERR=$TMP/loadgen.err
mkdir -p "$(dirname "$RESULTS")"
printf '# repeat\ttest\tserver\trate\tcpu_us_per_op\tclient_cpu_us_per_op\n' >"$RUNS"
measure() { # rep test server port
  local rep=$1 test=$2 server=$3 port=$4 rate="" cpu="" ccpu="" out args
  case $test in
    full | resumed) args=(--mode "$test" --conns "$HS_CONNS" --size 64) ;;
    *) args=(--mode echo --conns "${test%x*}" --size "${test#*x}") ;;
  esac
  if start_server "$server" "$port"; then
    [ -z "$PROFILE" ] || profile_start "$PROFILE/$server.$test.$rep.data"
    if out=$("${PIN_CLIENT[@]}" "$LOADGEN" --connect "127.0.0.1:$port" "${args[@]}" --seconds "$RUN_SECONDS" \
              --warmup "$WARMUP" --pid "$SERVER_PID" 2>"$LOADGEN_ERR"); then
      rate=$(sed -n 's/.* rate=\([0-9.]*\) .*/\1/p' <<<"$out")
      cpu=$(sed -n 's/.* server_cpu_us=\([0-9.]*\) .*/\1/p' <<<"$out")
      ccpu=$(sed -n 's/.* client_cpu_us=\([0-9.]*\) .*/\1/p' <<<"$out")
    else
      cat "$LOADGEN_ERR" >&2
      echo "run_tls: tls_loadgen against $server failed" >&2
    fi
    profile_stop
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "run_tls: $server server died during the run" >&2
      rate=""
      cpu=""
    fi
    stop_server "$server"
  else
    echo "run_tls: $server server exited at start" >&2
  fi
  printf '  rep=%s %-10s %-10s rate=%-8s server cpu/op=%s us\n' "$rep" "$test" "$server" \
    "${rate:-failed}" "${cpu:-?}" >&2
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$test" "$server" "${rate:-NaN}" "${cpu:-NaN}" \
    "${ccpu:-NaN}" >>"$RUNS"
  RATE["$server $test"]="${RATE["$server $test"]:-} $rate"
  CPU["$server $test"]="${CPU["$server $test"]:-} $cpu"
  CCPU["$server $test"]="${CCPU["$server $test"]:-} $ccpu"
}
# shellcheck disable=SC2086 # the tests are words
bench_rotate measure "$REPS" $TESTS
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the results file: medians, one line per server ------------------------------
{
  echo "# TLS echo benchmark (test/bench/echo/tls/run_tls.sh): medians of $REPS repeats of ${RUN_SECONDS}s (+${WARMUP}s warm-up); TLS 1.3, TLS_AES_128_GCM_SHA256, X25519, $KEY_TITLE certificate; handshakes: $HS_CONNS connections at a time"
  echo "# $MACHINE; load average $LOAD_BEFORE before, $LOAD_AFTER after"
  line="# key	title	family"
  for test in $TESTS; do line="$line	rate:$test"; done
  for test in $TESTS; do line="$line	cpu:$test"; done
  for test in $TESTS; do line="$line	client_cpu:$test"; done
  echo "$line"
  for server in "${SERVERS[@]}"; do
    line="$server	${TITLE[$server]}	${FAMILY[$server]}"
    for test in $TESTS; do line="$line	$(values RATE "$server" "$test" | median %.0f)"; done
    for test in $TESTS; do line="$line	$(values CPU "$server" "$test" | median %.3f)"; done
    for test in $TESTS; do line="$line	$(values CCPU "$server" "$test" | median %.3f)"; done
    echo "$line"
  done
} | sed 's/\tn\/a/\tNaN/g' >"$RESULTS"

bench_report "$HERE/tls_tables.sh" "$RESULTS" "$RUNS"

# ---- where the CPU went (TLS_PROFILE) ------------------------------------------------
[ -z "$PROFILE" ] || bash "$HERE/../profile_tables.sh" "$PROFILE" "$RUNS"
