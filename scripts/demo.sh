#!/bin/sh
# make demo: rill at work, in four short acts, each ending by itself.
#   1. the base: a timer, a pipe watcher, a cross-thread post (samples/demo)
#   2. the callback echo server and client exchanging lines, then 1,000
#      round trips (samples/echo_server, samples/echo_client)
#   3. the same server written with fibers in blocking style
#      (samples/echo_server_blocking)
#   4. dialing a host name through the resolver on the base (samples/dial
#      to "localhost", which needs no DNS server)
#
# usage: demo.sh [--build] [BUILD_DIR]
#   --build  first builds the library and the five programs above, and
#            nothing else, quietly (the compiler's output only on failure),
#            in a build directory already configured (`make demo` does both)
set -eu
build_first=false
if [ "${1:-}" = --build ]; then
  build_first=true
  shift
fi
build=${1:-build}
bin=$build/samples

if $build_first; then
  jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
  log=$build/demo-build.log
  printf 'building the library and the demo programs (log: %s) ... ' "$log"
  started=$(date +%s)
  if ! cmake --build "$build" -j"$jobs" --target demo echo_server echo_client echo_server_blocking dial \
    >"$log" 2>&1; then
    echo "failed:"
    cat "$log"
    exit 1
  fi
  echo "done in $(($(date +%s) - started)) s"
fi
out=$(mktemp)
server=
trap 'kill $server 2>/dev/null || true; rm -f "$out"' EXIT

section() { printf '\n== %s\n' "$1"; }

# start SERVER [ARGS]: starts it on a port the kernel picks and sets $addr
# from the "listening on ADDR" line it prints.
start() {
  : >"$out"
  "$bin/$1" --listen 127.0.0.1:0 >"$out" &
  server=$!
  i=0
  until addr=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$out") && [ -n "$addr" ]; do
    i=$((i + 1)); [ $i -lt 1500 ] || { echo "$1 did not start within 30 s"; exit 1; }
    sleep 0.02
  done
  cat "$out"
}

stop() {
  kill -INT "$server"
  wait "$server"
  server=
}

serve_and_talk() {
  start "$1"
  printf 'hello, rill\nline two\n' | "$bin/echo_client" --connect "$addr"
  "$bin/echo_client" --connect "$addr" --count 1000 --size 64
  stop
}

section "the base: timer, pipe watcher, cross-thread post"
"$bin/demo"

section "callback echo server + client"
serve_and_talk echo_server

section "blocking-style echo server (fibers) + the same client"
serve_and_talk echo_server_blocking

section "dialing a name: localhost resolves on the base, IPv6 then IPv4"
start echo_server
echo "ping through dial" | "$bin/dial" --timeout 2000 "localhost:${addr##*:}"
stop
