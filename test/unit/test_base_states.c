/* The base's states (rill/base.h): rill_base_free() and rill_base_run()
 * called from a callback that rill_base_free() itself runs are refused with
 * RILL_EBUSY and change nothing; the outer free then completes.
 *
 * The callbacks rill_base_free() runs: functions still queued by
 * rill_base_post(), and the completions of lookups it cancels. Both used
 * to tear the base down from inside the teardown (a heap use-after-free
 * under AddressSanitizer).
 *
 * Network rule: the lookup goes to the fake DNS server on 127.0.0.1 only,
 * with an empty hosts file. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"
#ifdef TU_HAVE_CARES
#include "fake_dns.h"
#endif

/* What a callback run by rill_base_free() saw when it tried to free and
 * to run the base. */
struct reentry {
  rill_base *base;
  int calls;
  int status;   /* the lookup's status */
  int free_rc;
  int run_rc;
};

static void try_reenter(struct reentry *r) {
  r->calls++;
  r->free_rc = rill_base_free(r->base);
  r->run_rc = rill_base_run(r->base, RILL_RUN_NOWAIT);
}

/* ---- a post still queued when the base is freed -------------------------- */

static void reenter_post(rill_base *base, void *arg) {
  (void)base;
  try_reenter(arg);
}

static void test_free_from_queued_post(void **state) {
  (void)state;
  struct reentry r;
  memset(&r, 0, sizeof r);
  r.base = tu_base_new();
  r.free_rc = r.run_rc = 12345;
  assert_int_equal(rill_base_post(r.base, reenter_post, &r), 0);
  /* The post runs inside this call; its own free and run are refused. */
  assert_int_equal(rill_base_free(r.base), 0);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.free_rc, RILL_EBUSY);
  assert_int_equal(r.run_rc, RILL_EBUSY);
}

/* A post that the refused free leaves things to: it queues another post,
 * which the outer free still runs, exactly once. */
static int g_second_calls;
static int g_second_post_rc;

static void second_post(rill_base *base, void *arg) {
  (void)base;
  (void)arg;
  g_second_calls++;
}

static void reenter_and_post(rill_base *base, void *arg) {
  try_reenter(arg);
  g_second_post_rc = rill_base_post(base, second_post, NULL);
}

static void test_free_from_post_then_more_posts(void **state) {
  (void)state;
  struct reentry r;
  memset(&r, 0, sizeof r);
  r.base = tu_base_new();
  g_second_calls = 0;
  g_second_post_rc = 12345;
  assert_int_equal(rill_base_post(r.base, reenter_and_post, &r), 0);
  assert_int_equal(rill_base_free(r.base), 0);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.free_rc, RILL_EBUSY);
  assert_int_equal(g_second_post_rc, 0);
  assert_int_equal(g_second_calls, 1);
}

/* A base that refused a free (live handles) is idle again: it runs and
 * frees normally afterwards. */
static void noop_timer(rill_timer *t, void *arg) {
  (void)t;
  (void)arg;
}

static void test_refused_free_leaves_base_idle(void **state) {
  (void)state;
  rill_base *base = tu_base_new();
  rill_timer *t;
  assert_int_equal(rill_timer_new(base, noop_timer, NULL, &t), 0);
  assert_int_equal(rill_base_free(base), RILL_EBUSY);
  assert_int_equal(rill_timer_start(t, 0, 0), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, 5000), 0);
  rill_timer_free(t);
  tu_base_free(base);
}

/* ---- a lookup that rill_base_free() cancels ------------------------------ */

#ifdef TU_HAVE_CARES
static fake_dns *g_dns;
static char g_empty_hosts[64];

static int dns_setup(void **state) {
  (void)state;
  fake_dns_rule r;
  if (fake_dns_start(&g_dns) < 0)
    return -1;
  memset(&r, 0, sizeof r);
  r.name = "never.test";
  r.qtype = FAKE_DNS_ANY;
  r.action = FAKE_DNS_DROP;
  if (fake_dns_add_rule(g_dns, &r) != 0)
    return -1;
  snprintf(g_empty_hosts, sizeof g_empty_hosts, "/tmp/rill_states_hosts_XXXXXX");
  int fd = mkstemp(g_empty_hosts);
  if (fd < 0)
    return -1;
  close(fd);
  return 0;
}

static int dns_teardown(void **state) {
  (void)state;
  fake_dns_stop(g_dns);
  unlink(g_empty_hosts);
  return 0;
}

static void reenter_lookup(rill_dns_query *q, int status, const rill_dns_result *res, void *arg) {
  (void)q;
  (void)res;
  struct reentry *r = arg;
  r->status = status;
  try_reenter(r);
}

static void test_free_from_cancelled_lookup(void **state) {
  (void)state;
  rill_base_config cfg;
  struct reentry r;
  rill_dns_query *q = NULL;
  memset(&cfg, 0, sizeof cfg);
  cfg.dns.servers = fake_dns_server(g_dns);
  cfg.dns.hosts_file = g_empty_hosts;
  cfg.dns.lookup = RILL_LOOKUP_DNS;
  memset(&r, 0, sizeof r);
  r.free_rc = r.run_rc = 12345;
  assert_int_equal(rill_base_new(&cfg, &r.base), 0);
  assert_int_equal(rill_resolve(r.base, "never.test", AF_INET, NULL, reenter_lookup, &r, &q), 0);
  /* One iteration sends the query; the server never answers it. */
  assert_true(rill_base_run(r.base, RILL_RUN_NOWAIT) >= 0);
  assert_int_equal(r.calls, 0);
  /* The free cancels the lookup, whose callback tries to free and run. */
  assert_int_equal(rill_base_free(r.base), 0);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.status, RILL_ECANCELED);
  assert_int_equal(r.free_rc, RILL_EBUSY);
  assert_int_equal(r.run_rc, RILL_EBUSY);
}
#endif

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_free_from_queued_post, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_free_from_post_then_more_posts, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_refused_free_leaves_base_idle, tu_setup_fds,
                                      tu_teardown_fds),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
#ifdef TU_HAVE_CARES
  const struct CMUnitTest dns_tests[] = {
      cmocka_unit_test(test_free_from_cancelled_lookup),
  };
  failed += cmocka_run_group_tests(dns_tests, dns_setup, dns_teardown);
#endif
  return failed;
}
