/* How a connection ends when input is still unread (issue 8).
 *
 * A TCP socket closed with unread input makes the kernel reset the
 * connection (RST) instead of sending FIN, and a reset discards what the
 * kernel had not yet sent. Go's Close does exactly that; so does
 * rill_conn_close_now() (net.h says so). rill_conn_close(), the graceful
 * close, discards the unread input first, so the peer reads every byte and
 * then a clean EOF. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"
#include "net_util.h"

#define LIMIT 10000

static int closes;
static void count_close(rill_conn *c, void *arg) {
  (void)c;
  (void)arg;
  closes++;
}

/* A pair whose rill side has `unread` bytes from the peer in its kernel
 * buffer and never reads them. */
static void pair_with_unread_input(rill_base *base, nu_pair *p, size_t unread) {
  static const char junk[4096];
  struct pollfd pfd;
  rill_conn_events ev;
  nu_pair_accepted(base, "127.0.0.1", NULL, p);
  memset(&ev, 0, sizeof ev);
  ev.on_close = count_close;
  assert_int_equal(rill_conn_start(p->conn, &ev, NULL), 0);
  assert_true(unread <= sizeof junk);
  assert_int_equal(nu_send_all(p->peer, junk, unread, 1000), unread);
  pfd.fd = rill_conn_fd(p->conn);
  pfd.events = POLLIN;
  assert_int_equal(poll(&pfd, 1, LIMIT), 1);
}

/* Documented: close_now with unread input resets the connection. */
static void test_close_now_with_unread_input_resets(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  (void)state;
  closes = 0;
  pair_with_unread_input(base, &p, 100);
  assert_int_equal(rill_conn_close_now(p.conn), 0);
  p.conn = NULL;
  nu_run_until_count(base, &closes, 1, LIMIT);
  assert_int_equal(nu_wait_eof(p.peer, LIMIT, NULL), -ECONNRESET);
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

/* The graceful close discards the unread input: the peer reads what was
 * written, then EOF, no reset. */
static void test_close_with_unread_input_sends_fin(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  char got[5];
  size_t discarded = 0;
  (void)state;
  closes = 0;
  pair_with_unread_input(base, &p, 100);
  assert_int_equal(rill_conn_write(p.conn, "hello", 5), 0);
  assert_int_equal(rill_conn_close(p.conn), 0);
  p.conn = NULL;
  nu_run_until_count(base, &closes, 1, LIMIT);
  assert_int_equal(nu_recv_all(p.peer, got, 5, LIMIT), 5);
  assert_memory_equal(got, "hello", 5);
  assert_int_equal(nu_wait_eof(p.peer, LIMIT, &discarded), 1);
  assert_int_equal(discarded, 0);
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

/* The same with a queue to flush first: every queued byte arrives. */
static void test_close_flushes_then_fin_despite_unread_input(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  nu_sink sink;
  const size_t total = 4u * 1024 * 1024;
  unsigned char *buf = (unsigned char *)malloc(total);
  int v = 32 * 1024;
  (void)state;
  closes = 0;
  assert_non_null(buf);
  nu_pat_fill(buf, 0, total);
  pair_with_unread_input(base, &p, 1000);
  assert_int_equal(rill_conn_set_write_buffer(p.conn, v), 0);
  assert_int_equal(setsockopt(p.peer, SOL_SOCKET, SO_RCVBUF, &v, sizeof v), 0);
  assert_int_equal(rill_conn_write(p.conn, buf, total), 0);
  assert_true(rill_conn_write_queued(p.conn) > 0);
  assert_int_equal(rill_conn_close(p.conn), 0);
  p.conn = NULL;
  memset(&sink, 0, sizeof sink);
  sink.stop_base = base;
  nu_sink_start(base, &sink, p.peer, 1);
  TU_RUN(base, RILL_RUN_DEFAULT, LIMIT);
  nu_sink_stop(&sink);
  nu_run_until_count(base, &closes, 1, LIMIT);
  assert_int_equal(sink.err, 0);
  assert_int_equal(sink.eof, 1);
  assert_int_equal(sink.got, total);
  assert_int_equal(sink.bad_at, -1);
  free(buf);
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

/* A graceful close from inside on_read throws the unread input away
 * without touching the bytes on_read is looking at. */
static char seen_after_close[8];
static size_t close_inside_on_read(rill_conn *c, const char *data, size_t len, int status,
                                   void *arg) {
  (void)arg;
  if (status != 0) return 0;
  assert_int_equal(len, 5);
  assert_int_equal(rill_conn_close(c), 0);
  memcpy(seen_after_close, data, len); /* after the close */
  return len;
}

static void test_close_inside_on_read_keeps_its_data(void **state) {
  rill_base *base = tu_base_new();
  nu_pair p;
  rill_socket_config o;
  rill_conn_events ev;
  size_t discarded = 0;
  (void)state;
  closes = 0;
  memset(&o, 0, sizeof o);
  o.read_max = 5; /* "hello" is read; "WORLD" stays in the kernel */
  nu_pair_accepted(base, "127.0.0.1", &o, &p);
  memset(&ev, 0, sizeof ev);
  ev.on_read = close_inside_on_read;
  ev.on_close = count_close;
  assert_int_equal(nu_send_all(p.peer, "helloWORLD", 10, 1000), 10);
  tu_sleep_ms(20); /* both halves in the kernel before the first read */
  assert_int_equal(rill_conn_start(p.conn, &ev, NULL), 0);
  nu_run_until_count(base, &closes, 1, LIMIT);
  p.conn = NULL;
  assert_memory_equal(seen_after_close, "hello", 5);
  assert_int_equal(nu_wait_eof(p.peer, LIMIT, &discarded), 1);
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_fds, tu_teardown_fds)
  const struct CMUnitTest tests[] = {
      T(test_close_now_with_unread_input_resets),
      T(test_close_with_unread_input_sends_fin),
      T(test_close_flushes_then_fin_despite_unread_input),
      T(test_close_inside_on_read_keeps_its_data),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
