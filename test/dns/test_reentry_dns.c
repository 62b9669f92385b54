/* Lookups and dials cancelled from inside their own and each other's
 * callbacks (issue 8). Every name here is "localhost", answered by rill
 * itself: no query leaves the process. Each lookup and each dial completes
 * exactly once; a cancel from inside the handle's own completion is
 * refused with RILL_ECLOSED. Runs under ASan in the sanitizer suite. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "rill/dns.h"
#include "test_util.h"
#include "net_util.h"

#define LIMIT 10000

struct pair_q {
  rill_dns_query *a, *b;
  rill_dialer *d;
  int a_calls, b_calls, d_calls;
  int a_status, b_status, d_status;
  int a_own_rc, b_own_rc, other_rc;
};

static void q_b_done(rill_dns_query *q, int status, const rill_dns_result *res, void *arg) {
  struct pair_q *s = (struct pair_q *)arg;
  (void)res;
  s->b_calls++;
  s->b_status = status;
  s->b_own_rc = rill_dns_query_cancel(q);
}

static void q_a_cancels_b(rill_dns_query *q, int status, const rill_dns_result *res, void *arg) {
  struct pair_q *s = (struct pair_q *)arg;
  (void)res;
  s->a_calls++;
  s->a_status = status;
  s->a_own_rc = rill_dns_query_cancel(q);
  s->other_rc = rill_dns_query_cancel(s->b);
}

static void settle_runs(rill_base *base) {
  int i;
  for (i = 0; i < 5; i++) rill_base_run(base, RILL_RUN_NOWAIT);
}

static void test_query_cancels_itself_and_another(void **state) {
  rill_base *base = tu_base_new();
  struct pair_q s;
  (void)state;
  memset(&s, 0, sizeof s);
  assert_int_equal(rill_resolve(base, "localhost", AF_INET, NULL, q_a_cancels_b, &s, &s.a), 0);
  assert_int_equal(rill_resolve(base, "localhost", AF_INET, NULL, q_b_done, &s, &s.b), 0);
  nu_run_until_count(base, &s.b_calls, 1, LIMIT);
  settle_runs(base);
  assert_int_equal(s.a_calls, 1);
  assert_int_equal(s.b_calls, 1);
  assert_int_equal(s.a_status, 0);
  assert_int_equal(s.b_status, RILL_ECANCELED);
  assert_int_equal(s.a_own_rc, RILL_ECLOSED);
  assert_int_equal(s.b_own_rc, RILL_ECLOSED);
  assert_int_equal(s.other_rc, 0);
  tu_base_free(base);
}

static void dial_done(rill_dialer *d, rill_conn *c, int status, void *arg) {
  struct pair_q *s = (struct pair_q *)arg;
  s->d_calls++;
  s->d_status = status;
  if (c) rill_conn_abort(c);
  if (rill_dialer_cancel(d) != RILL_ECLOSED) s->d_status = 12345;
}

static void q_cancels_dial(rill_dns_query *q, int status, const rill_dns_result *res, void *arg) {
  struct pair_q *s = (struct pair_q *)arg;
  (void)q;
  (void)res;
  s->a_calls++;
  s->a_status = status;
  s->other_rc = rill_dialer_cancel(s->d);
}

/* A lookup's callback cancels a dial that is resolving its own name. */
static void test_query_cancels_dial(void **state) {
  rill_base *base = tu_base_new();
  struct pair_q s;
  char addr[64];
  int port, lfd;
  (void)state;
  memset(&s, 0, sizeof s);
  lfd = nu_raw_listen("127.0.0.1", 16, &port);
  snprintf(addr, sizeof addr, "localhost:%d", port);
  assert_int_equal(rill_resolve(base, "localhost", AF_INET, NULL, q_cancels_dial, &s, &s.a), 0);
  assert_int_equal(rill_dial(base, "tcp4", addr, NULL, dial_done, &s, &s.d), 0);
  nu_run_until_count(base, &s.d_calls, 1, LIMIT);
  settle_runs(base);
  assert_int_equal(s.a_calls, 1);
  assert_int_equal(s.other_rc, 0);
  assert_int_equal(s.d_calls, 1);
  assert_int_equal(s.d_status, RILL_ECANCELED);
  close(lfd);
  tu_base_free(base);
}

static void dial_cancels_query(rill_dialer *d, rill_conn *c, int status, void *arg) {
  struct pair_q *s = (struct pair_q *)arg;
  (void)d;
  (void)c;
  s->d_calls++;
  s->d_status = status;
  s->other_rc = rill_dns_query_cancel(s->b);
}

/* A dial's callback cancels a lookup whose answer is already queued. */
static void test_dial_cancels_query(void **state) {
  rill_base *base = tu_base_new();
  struct pair_q s;
  char path[108];
  (void)state;
  memset(&s, 0, sizeof s);
  snprintf(path, sizeof path, "/tmp/rill-reentry-dns-%d.sock", (int)getpid());
  unlink(path);
  assert_int_equal(rill_dial(base, "unix", path, NULL, dial_cancels_query, &s, &s.d), 0);
  assert_int_equal(rill_resolve(base, "localhost", AF_UNSPEC, NULL, q_b_done, &s, &s.b), 0);
  nu_run_until_count(base, &s.b_calls, 1, LIMIT);
  settle_runs(base);
  assert_int_equal(s.d_calls, 1);
  assert_int_equal(s.d_status, -ENOENT);
  assert_int_equal(s.other_rc, 0);
  assert_int_equal(s.b_calls, 1);
  assert_int_equal(s.b_status, RILL_ECANCELED);
  assert_int_equal(s.b_own_rc, RILL_ECLOSED);
  tu_base_free(base);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_fds, tu_teardown_fds)
  const struct CMUnitTest tests[] = {
      T(test_query_cancels_itself_and_another),
      T(test_query_cancels_dial),
      T(test_dial_cancels_query),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
