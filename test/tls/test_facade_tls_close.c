/* Go's tls.Conn.Close through the facade: rill_net_close() (and
 * rill_net_conn_free(), which closes) on a TLS connection sends close_notify
 * and waits, from a fiber, until the kernel took it, the bound passed (Go's
 * 5 s, shortened here through rill_internal_set_close_notify_bound) or the
 * peer went away; the socket is closed whichever came first.
 *
 * The server is a facade TLS listener on a Unix socket: the kernel is made
 * full for a moment by shrinking the send buffer below what it already
 * holds (a Unix socket's unread bytes count against the sender, and TCP
 * would still append a short record to its last unsent segment). The peer
 * starts reading only once Close waits, from a fiber that runs when the
 * closer parks, so a Close that did not wait would have closed before the
 * alert could go. Peers: a blocking OpenSSL client on a thread
 * (ssl_thread_peer.c), which says whether the stream ended with
 * close_notify, and `openssl s_client`, stopped with SIGSTOP meanwhile,
 * which prints the alert it received. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "test_util.h"
#include "fiber_check.h"
#include "tls_peer.h"

#define LIMIT 60000 /* a hang guard only */

#ifdef RILL_TEST_HAVE_TLS

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "ssl_thread_peer.h"

/* lib/fiber/net_conn.cpp's knob for tests (the static library has it). */
void rill_internal_set_close_notify_bound(uint64_t ns);

#define SENT (256 * 1024)
#define BOUND_MS 200

static unsigned char pattern[SENT];

typedef struct close_run {
  /* How the case goes. */
  int never_read; /* the peer reads only once Close returned */
  int hang_up;    /* the peer closes its socket once Close waits */
  int by_free;    /* rill_net_conn_free() closes, not rill_net_close() */
  int during_write; /* Close while another fiber's write waits */
  int use_s_client; /* else the thread peer */
  /* What happened. */
  char path[108];
  rill_tls_config *cfg;
  pthread_t thread;
  sp_reader peer;
  unsigned char buf[SENT + 16384];
  int go;
  int close_err;
  uint64_t close_ms;
  rill_net_conn *conn;
  int write_err;
  size_t written;
  pid_t s_client;
  char out[300]; /* s_client's output */
} close_run;

static void let_peer_go(void *arg) {
  close_run *r = arg;
  if (r->s_client)
    kill(r->s_client, SIGCONT);
  sp_put(&r->go, 1);
}

/* `openssl s_client` to the Unix socket, writing the TLS messages it sees
 * to r->out (the plaintext, binary, goes to /dev/null); the end of its
 * stdin does not end it (-quiet). */
static pid_t start_s_client(close_run *r) {
  snprintf(r->out, sizeof r->out, "%s", tp_cert("s_client_close.msg"));
  unlink(r->out);
  char *argv[] = {"openssl", "s_client", "-unix", r->path, "-servername", "localhost", "-CAfile",
                  (char *)tp_cert("ca.crt"), "-verify_return_error", "-quiet", "-msg", "-msgfile",
                  r->out, NULL};
  return tp_spawn(argv, NULL, NULL);
}

static void writer(void *arg) {
  close_run *r = arg;
  r->write_err = rill_net_write(r->conn, pattern, SENT, &r->written);
}

/* Go's Close while a Write is in progress: the socket closes, with no
 * close_notify (the peer must not take the cut stream for a whole one),
 * even when the kernel would take it. */
static void close_during_write(close_run *r, rill_net_conn *c) {
  FCHECK_EQ(rill_net_set_write_buffer(c, 4096), 0);
  r->conn = c;
  FCHECK_EQ(rill_go(rill_fiber_base(), writer, r), 0);
  FCHECK_EQ(rill_yield(), 0); /* the writer runs until the kernel is full and it waits */
  FCHECK_EQ(rill_net_set_write_buffer(c, 4 << 20), 0); /* room for an alert now */
  r->close_err = rill_net_close(c);
  FCHECK_EQ(rill_yield(), 0); /* the writer returns */
  let_peer_go(r);
  rill_net_conn_free(c);
}

static void server_main(void *arg) {
  close_run *r = arg;
  rill_net_listener *l = NULL;
  rill_net_conn *c = NULL;
  FCHECK_EQ(rill_net_tls_listen("unix", r->path, NULL, r->cfg, &l), 0);
  if (!l)
    return;
  if (r->use_s_client) {
    r->s_client = start_s_client(r);
    FCHECK(r->s_client > 0);
  } else {
    FCHECK_EQ(pthread_create(&r->thread, NULL, sp_read_stream, &r->peer), 0);
  }
  FCHECK_EQ(rill_net_accept(l, &c), 0);
  rill_net_listener_free(l);
  if (!c)
    return;
  if (r->s_client)
    kill(r->s_client, SIGSTOP); /* reads nothing until let_peer_go */
  if (r->during_write) {
    close_during_write(r, c);
    return;
  }
  /* All of it into the kernel, then a send buffer smaller than what the
   * kernel holds: nothing more goes until the peer reads. */
  FCHECK_EQ(rill_net_set_write_buffer(c, 4 << 20), 0);
  FCHECK_EQ(rill_net_write(c, pattern, SENT, NULL), 0);
  FCHECK_EQ(rill_net_set_write_buffer(c, 4096), 0);
  if (!r->never_read)
    FCHECK_EQ(rill_go(rill_fiber_base(), let_peer_go, r), 0); /* runs once Close waits */
  uint64_t start = tu_now_ms();
  if (r->by_free) {
    rill_net_conn_free(c);
    c = NULL;
  } else {
    r->close_err = rill_net_close(c);
  }
  r->close_ms = tu_now_ms() - start;
  if (r->never_read)
    let_peer_go(r);
  rill_net_conn_free(c);
  if (r->s_client) {
    int status = -1;
    for (int i = 0; i < 3000 && (status = tp_exited(r->s_client)) < 0; i++)
      rill_sleep(10 * RILL_MSEC); /* a hang guard: 30 s */
    if (status < 0)
      tp_kill(r->s_client);
  }
}

static void run_close(close_run *r) {
  snprintf(r->path, sizeof r->path, "%s", tp_cert("facade_close.sock"));
  unlink(r->path);
  assert_int_equal(rill_tls_config_new(RILL_TLS_SERVER, &r->cfg), 0);
  assert_int_equal(
      rill_tls_config_set_cert_key_files(r->cfg, tp_cert("server.crt"), tp_cert("server.key")), 0);
  r->peer.path = r->path;
  r->peer.go = &r->go;
  r->peer.hang_up = r->hang_up;
  r->peer.buf = r->buf;
  r->peer.cap = sizeof r->buf;
  rill_base *base = tu_base_new();
  assert_int_equal(rill_go(base, server_main, r), 0);
  fiber_check_run(base, LIMIT); /* frees the base */
  if (!r->use_s_client)
    pthread_join(r->thread, NULL);
  rill_tls_config_unref(r->cfg);
  unlink(r->path);
}

static close_run *new_run(void) {
  close_run *r = calloc(1, sizeof *r);
  assert_non_null(r);
  rill_internal_set_close_notify_bound(30 * RILL_SEC); /* never the one that ends a wait here */
  return r;
}

/* The peer read everything, then `clean` says whether close_notify ended
 * it, then the socket's end came. */
static void check_peer_read_all(const close_run *r, int clean) {
  assert_true(r->peer.handshaken);
  assert_int_equal(r->peer.got, SENT);
  assert_memory_equal(r->buf, pattern, SENT);
  assert_int_equal(r->peer.clean, clean);
  assert_true(r->peer.fin);
}

/* The kernel was full when Close came: close_notify waits for the peer to
 * read, and goes before the socket closes. */
static void test_close_waits_for_close_notify(void **state) {
  (void)state;
  close_run *r = new_run();
  run_close(r);
  assert_int_equal(r->close_err, 0);
  check_peer_read_all(r, 1); /* close_notify, not a truncated stream */
  free(r);
}

/* rill_net_conn_free() closes the same way (the README's TLS dial ends
 * with it). */
static void test_free_waits_for_close_notify(void **state) {
  (void)state;
  close_run *r = new_run();
  r->by_free = 1;
  run_close(r);
  check_peer_read_all(r, 1);
  free(r);
}

/* A peer that never reads: Close gives up once the bound passed, says
 * RILL_ETIMEOUT, and the socket is closed anyway: the peer, reading
 * afterwards, gets the data and an end without close_notify. */
static void test_close_bounded_when_peer_never_reads(void **state) {
  (void)state;
  close_run *r = new_run();
  r->never_read = 1;
  rill_internal_set_close_notify_bound(BOUND_MS * RILL_MSEC);
  run_close(r);
  rill_internal_set_close_notify_bound(5 * RILL_SEC);
  assert_int_equal(r->close_err, RILL_ETIMEOUT);
  assert_true(r->close_ms >= BOUND_MS - 10);
  check_peer_read_all(r, 0);
  free(r);
}

/* The peer goes away while Close waits: Close ends with the write error,
 * long before the bound (30 s here), and the socket is closed. */
static void test_close_ends_when_peer_hangs_up(void **state) {
  (void)state;
  close_run *r = new_run();
  r->hang_up = 1;
  run_close(r);
  assert_true(r->close_err == -EPIPE || r->close_err == -ECONNRESET);
  assert_true(r->peer.handshaken);
  assert_int_equal(r->peer.got, 0);
  free(r);
}

static void test_close_during_write_sends_no_close_notify(void **state) {
  (void)state;
  close_run *r = new_run();
  r->during_write = 1;
  run_close(r);
  assert_int_equal(r->close_err, 0);
  assert_int_equal(r->write_err, RILL_ECLOSED);
  assert_true(r->written > 0 && r->written < SENT);
  assert_true(r->peer.got <= r->written); /* a record's tail the kernel refused is lost */
  assert_memory_equal(r->buf, pattern, r->peer.got);
  assert_false(r->peer.clean);
  assert_true(r->peer.fin);
  free(r);
}

/* openssl s_client, stopped while the kernel is full and continued once
 * Close waits, receives the alert. */
static void test_s_client_receives_close_notify(void **state) {
  (void)state;
  close_run *r = new_run();
  r->use_s_client = 1;
  run_close(r);
  assert_int_equal(r->close_err, 0);
  char *text = tp_read_file(r->out);
  assert_non_null(text);
  const char *alert = strstr(text, "<<< TLS 1.3, Alert [length 0002], warning close_notify");
  if (!alert)
    fail_msg("s_client did not receive close_notify; it printed:\n%.2000s",
             strlen(text) > 2000 ? text + strlen(text) - 2000 : text);
  free(text);
  free(r);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* the thread peer's OpenSSL writes with write(2) */
  for (size_t i = 0; i < SENT; i++)
    pattern[i] = (unsigned char)(i * 131u + (i >> 11) * 7u + 1u);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_close_waits_for_close_notify),
      cmocka_unit_test(test_free_waits_for_close_notify),
      cmocka_unit_test(test_close_bounded_when_peer_never_reads),
      cmocka_unit_test(test_close_ends_when_peer_hangs_up),
      cmocka_unit_test(test_close_during_write_sends_no_close_notify),
      cmocka_unit_test(test_s_client_receives_close_notify),
  };
  return cmocka_run_group_tests(tests, tp_certs_setup, tp_certs_teardown);
}

#else /* built without TLS */

int main(void) {
  printf("test_facade_tls_close: built without TLS (test_facade_tls checks RILL_ENOTSUP)\n");
  return 0;
}

#endif
