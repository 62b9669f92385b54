/* What the TLS tests (test_tls_*.c) share: one side of a connection as a
 * test drives it, a dial that records its result, a rill TLS listener that
 * records what it accepted, `openssl` peers, and raw sockets that play
 * hostile peers. Certificates come from support/tls_peer.c. */
#ifndef RILL_TEST_TLS_TEST_H
#define RILL_TEST_TLS_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/types.h>

#include "rill.h"
#include "test_util.h"
#include "tls_peer.h"

/* Runs `tests` (cmocka) with the certificate fixture; TEST_TLS_FILTER=name
 * runs the ones matching (cmocka's pattern). Built without TLS, runs only
 * the check that every rill_tls_* call answers RILL_ENOTSUP. */
int tt_run(const char *prog, const struct CMUnitTest *tests, size_t count);
#define TT_RUN(prog, tests) tt_run(prog, tests, sizeof tests / sizeof tests[0])

#ifdef RILL_TEST_HAVE_TLS

/* ---- one side of a connection ------------------------------------------- */

typedef struct side {
  rill_conn *conn;
  char in[1 << 16];
  size_t in_len;
  int read_status;  /* 0, or the terminal status on_read reported */
  int closed;
  const char *expect;  /* close the write side (or all) once this much arrived */
  int echo;            /* write back what arrives */
  int close_after;     /* 1: rill_conn_close once `expect` arrived; 2: close_write */
} side;

void side_start(side *s, rill_conn *conn);

/* ---- dialing --------------------------------------------------------------- */

typedef struct dial_result {
  int done;
  int status;
  char text[512];
  rill_conn *conn;
  side *s;          /* started on success, when set */
  const char *send; /* written on success */
} dial_result;

void on_dialed(rill_tls_dialer *d, rill_conn *conn, int status, void *arg);
/* A client trusting the test CA; a server with tp_cert(crt), tp_cert(key). */
rill_tls_config *client_config(void);
rill_tls_config *server_config(const char *crt, const char *key);
/* Runs the base until `*flag` is set, at most `ms`, and asserts it was. */
void run_until(rill_base *base, const int *flag, unsigned ms);
/* rill_tls_dial of host:port (tcp4), timeout 10 s. */
void dial_port(rill_base *base, rill_tls_config *cfg, const char *host, int port, dial_result *r);
/* dial_port of localhost:port, run until it ends; asserts it succeeded. */
void dial_ok(rill_base *base, rill_tls_config *cfg, int port, dial_result *r);

/* ---- a rill TLS listener on 127.0.0.1 ------------------------------------- */

typedef struct server {
  rill_tls_listener *l;
  side sides[4];
  int accepted;
  int errors;
  int last_error;
  char error_text[256];
  int port;
  int echo;
  int close_after;
  const char *expect;
} server;

/* Listens on 127.0.0.1:0 (server_start, asserting) or `address`
 * (server_listen: 0 or rill_tls_listen's error). */
void server_start(rill_base *base, server *sv, rill_tls_config *cfg);
int server_listen(rill_base *base, server *sv, rill_tls_config *cfg, const char *address);
/* A fresh base with `sv` started on server.crt and server.key. */
rill_base *base_with_server(server *sv);
/* Runs the base until every side `sv` accepted has closed (at most 5 s
 * each), then frees the listener. */
void server_end(rill_base *base, server *sv);
/* One echo round with `sv` (an echo server) over a fresh dial: the
 * subject the server showed, into `subject` when set, and whether the
 * session was resumed. */
int echo_round(rill_base *base, server *sv, rill_tls_config *ccfg, char *subject, size_t size);

/* A fresh base and listener of `scfg`, dialed with `ccfg` ("localhost"). */
typedef struct pair {
  rill_base *base;
  server sv;
  side client;
  dial_result r;
} pair;

void pair_dial(pair *p, rill_tls_config *scfg, rill_tls_config *ccfg, const char *send);
void pair_end(pair *p);

/* ---- openssl peers ---------------------------------------------------------- */

/* `openssl s_server` on a free port with tp_cert(crt), tp_cert(key), then
 * the NULL-terminated `extra` arguments (NULL: "-rev", "-quiet"); stdin
 * from `in_file` and output to `out_file` (NULL: /dev/null). */
pid_t s_server_args(const char *crt, const char *key, int *port, const char *const *extra,
                    const char *in_file, const char *out_file);
/* The same with one `extra` argument (NULL: -rev -quiet). */
pid_t s_server(const char *crt, const char *key, int *port, const char *extra);
/* `openssl s_client` to 127.0.0.1:port as "localhost", verifying against
 * the test CA, then the NULL-terminated `extra` arguments; stdin from
 * `in_file`, output to `out_file`. */
pid_t s_client_args(int port, const char *const *extra, const char *in_file, const char *out_file);
/* Runs the base until `pid` exited, at most `ms`: its exit status. */
int run_until_exited(rill_base *base, pid_t pid, unsigned ms);
/* Runs the base until the file holds `text`, at most `ms`; asserts it. */
void run_until_file_has(rill_base *base, const char *path, const char *text, unsigned ms);

/* ---- raw sockets --------------------------------------------------------- */

int raw_connect(int port);
void raw_send(int fd, const void *data, size_t len);
void raw_reset(int fd);  /* close with RST */
/* tp_silent_listener, asserting: the socket, its address in `addr`. */
int silent_listener(char *addr, size_t size);

void copy_file(const char *from, const char *to);

#endif /* RILL_TEST_HAVE_TLS */
#endif
