# The TLS echo servers that run_tls.sh and perop.sh measure, and the
# throwaway certificates they serve, sourced by both after BUILD and TMP
# are set. To add a server: its executable (taking --cert, --key, --listen,
# --quiet), title, family (rill, peer or limit for the chart colours), any
# environment it needs, and its key in ALL_SERVERS. rill's servers are the
# echo samples, which speak TLS when given a certificate.
# shellcheck shell=bash disable=SC2034 # what it sets is for the script

TLS_DIR=$BUILD/test/bench/echo/tls
LOADGEN=$TLS_DIR/tls_loadgen
declare -A EXE=(
  [callbacks]=$BUILD/samples/echo_server
  [fibers]=$BUILD/samples/echo_server_blocking
  [go]=$TMP/go_tls_echo_server
  [libevent]=$TLS_DIR/libevent_tls_server
  [raw]=$TLS_DIR/raw_tls_epoll_server
)
declare -A TITLE=(
  [callbacks]="rill callbacks" [fibers]="rill fibers" [go]="Go crypto/tls (GOMAXPROCS=1)"
  [libevent]="libevent bufferevent_openssl" [raw]="raw OpenSSL + epoll"
)
declare -A FAMILY=([callbacks]=rill [fibers]=rill [go]=peer [libevent]=peer [raw]=limit)
# rill's backend is named so a user's RILL_BACKEND cannot change a column.
declare -A ENVS=([callbacks]="RILL_BACKEND=epoll" [fibers]="RILL_BACKEND=epoll" [go]="GOMAXPROCS=1")
ALL_SERVERS=(callbacks fibers go libevent raw)

# A CA named `ca_cn` and its certificate for 127.0.0.1 with the extension
# lines given, keys made with the openssl arguments in NEWKEY: ca.pem,
# server.pem and server.key in TMP, readable by this user only.
tls_make_certs() { # ca_cn ext_line...
  (
    cd "$TMP" || exit 1
    umask 077
    openssl req -x509 "${NEWKEY[@]}" -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=$1" 2>/dev/null
    openssl req "${NEWKEY[@]}" -nodes -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
    shift
    printf '%s\n' "$@" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 1 -days 2 \
      -extfile server.ext -out server.pem 2>/dev/null
  )
}
