#!/bin/sh
# run_examples.sh BASE_EXAMPLE DIAL_EXAMPLE ECHO_SERVER
# Runs the README's examples, built from the README itself by
# check_blocks.sh (the readme_blocks test; the blocks marked name=...), the
# way a user would first try them. The backend comes
# from RILL_BACKEND, as for every test. Each run has a generous time limit
# that only guards against a hang.
set -u
base_example=$1
dial_example=$2
echo_server=$3
backend=${RILL_BACKEND:-epoll}
for program in "$base_example" "$dial_example"; do
  [ -x "$program" ] || { echo "FAIL: $program: not built (see the readme_blocks test)"; exit 1; }
done
work=$(mktemp -d)
server=
cleanup() {
  [ -z "$server" ] || kill "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
failed=0
fail() {
  echo "FAIL: $*"
  for f in "$work"/out "$work"/err; do
    [ -s "$f" ] && { echo "--- $(basename "$f"):"; cat "$f"; }
  done
  failed=1
}

# 1. The base API in one page, stdin a regular file. epoll cannot watch a
#    file: the example must say so and exit 1 (it used an uninitialised
#    watcher before). poll and kqueue watch it: it reads it to the end
#    (kqueue never reports the end itself).
printf 'twelve bytes' >"$work/in"
timeout 60 "$base_example" <"$work/in" >"$work/out" 2>"$work/err"
status=$?
if [ "$backend" = epoll ]; then
  if [ $status -ne 1 ] || ! grep -q '^rill: stdin: ' "$work/err"; then
    fail "stdin a file on epoll: exit $status, expected 1 and a message naming stdin"
  fi
elif [ "$backend" = kqueue ]; then
  # kqueue reports a file readable only while bytes remain before its end
  # (EVFILT_READ on a vnode): no EOF, the example's 5 s timer ends it.
  if [ $status -ne 0 ] || ! grep -q '^read 12 bytes$' "$work/out" || grep -q '^read 0 bytes$' "$work/out"; then
    fail "stdin a file on kqueue: exit $status, expected 0 after reading 12 bytes and no EOF"
  fi
elif [ $status -ne 0 ] || ! grep -q '^read 12 bytes$' "$work/out" || ! grep -q '^read 0 bytes$' "$work/out"; then
  fail "stdin a file on $backend: exit $status, expected 0 after reading 12 bytes and EOF"
fi

# 2. The same, stdin a pipe: every backend watches it.
printf 'hello\n' | timeout 60 "$base_example" >"$work/out" 2>"$work/err"
status=$?
if [ $status -ne 0 ] || ! grep -q '^read 6 bytes$' "$work/out" || ! grep -q '^read 0 bytes$' "$work/out"; then
  fail "stdin a pipe on $backend: exit $status, expected 0 after reading 6 bytes and EOF"
fi

# 3. The dial example against the echo server: it closes its connection,
#    so its loop ends by itself (it ran forever before).
"$echo_server" --listen 127.0.0.1:0 >"$work/server" &
server=$!
i=0
addr=
while [ -z "$addr" ] && [ $i -lt 1500 ]; do
  addr=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$work/server")
  i=$((i + 1))
  [ -n "$addr" ] || sleep 0.02
done
if [ -z "$addr" ]; then
  fail "the echo server did not start"
else
  timeout 60 "$dial_example" "$addr" >"$work/out" 2>"$work/err"
  status=$?
  [ $status -eq 0 ] || fail "dial to $addr: exit $status (1: a handle left open, 124: still running after 60 s)"
fi
kill "$server" 2>/dev/null
wait "$server" 2>/dev/null
server=

# 4. The dial example's error path: nothing listens on port 1 of loopback.
#    Not on Linux's kqueue, libkqueue: it reads a refused connect's error
#    off the socket (SO_ERROR) before rill sees it (README.md, Backends).
if [ "$backend" = kqueue ] && [ "$(uname -s)" = Linux ]; then
  echo "skipped on kqueue over libkqueue: the dial to a closed port (libkqueue reads a refused connect's error off the socket)"
else
  timeout 60 "$dial_example" 127.0.0.1:1 >"$work/out" 2>"$work/err"
  status=$?
  if [ $status -ne 1 ] || ! grep -q '^dial tcp 127.0.0.1:1: connect: connection refused$' "$work/err"; then
    fail "dial to a closed port: exit $status, expected 1 and Go's error text"
  fi
fi

[ $failed -eq 0 ] && echo "the README's examples behave as it says ($backend)"
exit $failed
