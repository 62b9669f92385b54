/* rill_resolve() for one family returns addresses of that family only, even
 * when the server's answer also carries records of the other type (found by
 * test/fuzz/fuzz_dns_answer: a AAAA query answered with an A record gave an
 * IPv4 address to an AF_INET6 lookup; c-ares 1.18 takes every A and AAAA
 * record of the answer, whatever the question asked).
 *
 * The fake DNS server answers in raw mode: every query gets the same
 * records, its own question echoed. Network rule: only the fake server on
 * 127.0.0.1 and an empty hosts file are ever consulted. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_util.h"
#include "fake_dns.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static fake_dns *g_dns;
static char g_empty_hosts[64];

/* A response header (id patched by the server), the question echoed after
 * it, then the records: the owner is a pointer to the question's name. */
static const unsigned char header[12] = {0, 0, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0};
static const unsigned char record_a[] = {0xC0, 0x0C, 0, 1,  0, 1, 0, 0, 0, 60, 0, 4,
                                         127,  0,    0, 9};
static const unsigned char record_aaaa[] = {0xC0, 0x0C, 0, 28, 0, 1, 0, 0, 0, 60, 0, 16,
                                            0,    0,    0, 0,  0, 0, 0, 0, 0, 0, 0, 0,
                                            0,    0,    0, 9};

/* Answers every query with the records given (A and/or AAAA). */
static void answer_with(int with_a, int with_aaaa) {
  unsigned char msg[sizeof header + sizeof record_a + sizeof record_aaaa];
  size_t len = sizeof header;
  memcpy(msg, header, sizeof header);
  if (with_a) {
    memcpy(msg + len, record_a, sizeof record_a);
    len += sizeof record_a;
  }
  if (with_aaaa) {
    memcpy(msg + len, record_aaaa, sizeof record_aaaa);
    len += sizeof record_aaaa;
  }
  msg[7] = (unsigned char)(with_a + with_aaaa); /* ANCOUNT */
  assert_int_equal(fake_dns_set_raw(g_dns, msg, len, FAKE_DNS_RAW_ECHO_QUESTION), 0);
}

typedef struct lookup {
  int calls;
  int status;
  size_t count;
  size_t inet, inet6;
} lookup;

static void on_resolved(rill_dns_query *q, int status, const rill_dns_result *r, void *arg) {
  (void)q;
  lookup *l = arg;
  l->calls++;
  l->status = status;
  if (status != 0)
    return;
  l->count = r->count;
  for (size_t i = 0; i < r->count; i++) {
    if (r->addrs[i].ss_family == AF_INET)
      l->inet++;
    else if (r->addrs[i].ss_family == AF_INET6)
      l->inet6++;
  }
}

static void resolve(int family, lookup *l) {
  rill_base_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.dns.servers = fake_dns_server(g_dns);
  cfg.dns.hosts_file = g_empty_hosts;
  cfg.dns.timeout = 2 * RILL_SEC;
  cfg.dns.tries = 2;
  rill_base *base = NULL;
  assert_int_equal(rill_base_new(&cfg, &base), 0);
  memset(l, 0, sizeof *l);
  assert_int_equal(rill_resolve(base, "mixed.test", family, NULL, on_resolved, l, NULL), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, 10000);
  assert_int_equal(l->calls, 1);
  tu_base_free(base);
}

/* Both record types in every answer: each family gets its own only. */
static void test_family_filters_mixed_answer(void **state) {
  (void)state;
  answer_with(1, 1);
  lookup l;
  resolve(AF_INET6, &l);
  assert_int_equal(l.status, 0);
  assert_int_equal(l.inet, 0);
  assert_true(l.inet6 >= 1);
  resolve(AF_INET, &l);
  assert_int_equal(l.status, 0);
  assert_int_equal(l.inet6, 0);
  assert_true(l.inet >= 1);
  resolve(AF_UNSPEC, &l);
  assert_int_equal(l.status, 0);
  assert_true(l.inet >= 1 && l.inet6 >= 1);
}

/* The fuzzer's case: an AF_INET6 lookup whose answer holds only an A
 * record has no address to give. */
static void test_family_only_other_type_is_nohost(void **state) {
  (void)state;
  answer_with(1, 0);
  lookup l;
  resolve(AF_INET6, &l);
  assert_int_equal(l.status, RILL_EDNS_NOHOST);
  answer_with(0, 1);
  resolve(AF_INET, &l);
  assert_int_equal(l.status, RILL_EDNS_NOHOST);
}

static int group_setup(void **state) {
  (void)state;
  if (fake_dns_start(&g_dns) <= 0)
    return -1;
  snprintf(g_empty_hosts, sizeof g_empty_hosts, "/tmp/rill-test-hosts-family-%d", (int)getpid());
  FILE *f = fopen(g_empty_hosts, "w");
  if (!f)
    return -1;
  fclose(f);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  fake_dns_stop(g_dns);
  unlink(g_empty_hosts);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_family_filters_mixed_answer, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_family_only_other_type_is_nohost, tu_setup_fds,
                                      tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
