/* Hostile hosts files and the dial-error formatter after a failed lookup
 * (issue 8). Lookups use RILL_LOOKUP_HOSTS only, so no query is ever sent.
 * - Lines are read whole whatever their length: text deep inside a long
 *   comment never becomes an entry, and a long entry line still names its
 *   last host. A line over the limit (64 KiB) or holding a NUL byte is
 *   skipped whole.
 * - rill_dialer_format_error() after a failed lookup: NULL buffer with size
 *   0 measures, NULL with a size is RILL_EINVAL, a short buffer is cut and
 *   NUL-terminated; the return is what snprintf would give. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

#define LIMIT 10000

typedef struct answer {
  int calls;
  int status;
  char addr[64];
  char canonical[256];
} answer;

static char g_hosts[64];

static void on_answer(rill_dns_query *q, int status, const rill_dns_result *r, void *arg) {
  answer *a = arg;
  (void)q;
  a->calls++;
  a->status = status;
  if (status == 0 && r->count > 0) {
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)&r->addrs[0];
    inet_ntop(AF_INET, &in4->sin_addr, a->addr, sizeof a->addr);
    snprintf(a->canonical, sizeof a->canonical, "%s", r->canonical_name);
  }
}

static rill_dns_config hosts_only(void) {
  rill_dns_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.hosts_file = g_hosts;
  cfg.lookup = RILL_LOOKUP_HOSTS;
  cfg.servers = "127.0.0.1:9"; /* never asked: the hosts file only */
  return cfg;
}

static answer lookup(rill_base *base, const char *host) {
  rill_dns_config cfg = hosts_only();
  answer a;
  memset(&a, 0, sizeof a);
  assert_int_equal(rill_resolve(base, host, AF_INET, &cfg, on_answer, &a, NULL), 0);
  while (a.calls == 0)
    TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  return a;
}

static void write_hosts(const char *text, size_t len) {
  FILE *f = fopen(g_hosts, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, len, f), len);
  fclose(f);
}

/* A buffer of `n` copies of `ch`, NUL-terminated. */
static char *filler(size_t n, char ch) {
  char *s = malloc(n + 1);
  assert_non_null(s);
  memset(s, ch, n);
  s[n] = '\0';
  return s;
}

static void test_long_comment_is_no_entry(void **state) {
  rill_base *base = tu_base_new();
  size_t pad;
  (void)state;
  /* The fixed 1024-byte buffer ended inside the comment, so its tail was
   * read as a line of its own; try the tail at several offsets. */
  for (pad = 1000; pad <= 1100; pad += 7) {
    char *fill = filler(pad, 'x');
    size_t cap = pad + 256;
    char *text = malloc(cap);
    int n;
    answer a;
    assert_non_null(text);
    n = snprintf(text, cap, "# %s 10.6.6.6 evil.test\n127.0.0.2 good.test\n", fill);
    write_hosts(text, (size_t)n);
    a = lookup(base, "evil.test");
    if (a.status != RILL_EDNS_NOHOST)
      fail_msg("pad %zu: a name inside a comment resolved to %s", pad, a.addr);
    a = lookup(base, "good.test");
    assert_int_equal(a.status, 0);
    assert_string_equal(a.addr, "127.0.0.2");
    free(fill);
    free(text);
  }
  tu_base_free(base);
}

static void test_long_entry_line_names_last_host(void **state) {
  rill_base *base = tu_base_new();
  size_t cap = 40000, used = 0, i;
  char *text = malloc(cap);
  answer a;
  (void)state;
  assert_non_null(text);
  used += (size_t)snprintf(text + used, cap - used, "10.1.2.3 first.test");
  for (i = 0; used < 30000; i++)
    used += (size_t)snprintf(text + used, cap - used, " alias%zu.test", i);
  used += (size_t)snprintf(text + used, cap - used, " far.test\n");
  write_hosts(text, used);
  a = lookup(base, "far.test");
  assert_int_equal(a.status, 0);
  assert_string_equal(a.addr, "10.1.2.3");
  assert_string_equal(a.canonical, "first.test");
  free(text);
  tu_base_free(base);
}

static void test_over_long_and_nul_lines_skipped_whole(void **state) {
  rill_base *base = tu_base_new();
  char *fill = filler(70 * 1024, 'a');
  size_t cap = 80 * 1024, used;
  char *text = malloc(cap);
  static const char nul_line[] = "10.7.7.7 nul.test\0 after.test\n";
  answer a;
  (void)state;
  assert_non_null(text);
  used = (size_t)snprintf(text, cap, "10.4.4.4 huge.test %s 10.5.5.5 tail.test\n", fill);
  memcpy(text + used, nul_line, sizeof nul_line - 1);
  used += sizeof nul_line - 1;
  used += (size_t)snprintf(text + used, cap - used, "127.0.0.3 fine.test");  /* no newline */
  write_hosts(text, used);
  assert_int_equal(lookup(base, "huge.test").status, RILL_EDNS_NOHOST);
  assert_int_equal(lookup(base, "tail.test").status, RILL_EDNS_NOHOST);
  assert_int_equal(lookup(base, "nul.test").status, RILL_EDNS_NOHOST);
  assert_int_equal(lookup(base, "after.test").status, RILL_EDNS_NOHOST);
  a = lookup(base, "fine.test");
  assert_int_equal(a.status, 0);
  assert_string_equal(a.addr, "127.0.0.3");
  free(fill);
  free(text);
  tu_base_free(base);
}

typedef struct dial_result {
  int calls;
  int status;
  int measured;   /* format_error(NULL, 0) */
  int null_sized; /* format_error(NULL, 16) */
  int cut;        /* format_error(buf, 8) */
  char cut_buf[8];
  int full;
  char full_buf[256];
} dial_result;

static void on_dialed(rill_dialer *d, rill_conn *c, int status, void *arg) {
  dial_result *r = arg;
  r->calls++;
  r->status = status;
  if (c)
    rill_conn_abort(c);
  r->measured = rill_dialer_format_error(d, status, NULL, 0);
  r->null_sized = rill_dialer_format_error(d, status, NULL, 16);
  memset(r->cut_buf, 'z', sizeof r->cut_buf);
  r->cut = rill_dialer_format_error(d, status, r->cut_buf, sizeof r->cut_buf);
  r->full = rill_dialer_format_error(d, status, r->full_buf, sizeof r->full_buf);
}

static void test_dial_error_null_buffer_after_lookup(void **state) {
  rill_base *base = tu_base_new();
  rill_dns_config cfg = hosts_only();
  rill_socket_config opts;
  dial_result r;
  const char *want = "dial tcp: lookup nohost.test: no such host";
  (void)state;
  write_hosts("127.0.0.2 good.test\n", strlen("127.0.0.2 good.test\n"));
  memset(&opts, 0, sizeof opts);
  opts.dns = &cfg;
  memset(&r, 0, sizeof r);
  assert_int_equal(rill_dial(base, "tcp", "nohost.test:80", &opts, on_dialed, &r, NULL), 0);
  while (r.calls == 0)
    TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_int_equal(r.status, RILL_EDNS_NOHOST);
  assert_string_equal(r.full_buf, want);
  assert_int_equal(r.full, (int)strlen(want));
  assert_int_equal(r.measured, (int)strlen(want));
  assert_int_equal(r.null_sized, RILL_EINVAL);
  assert_int_equal(r.cut, (int)strlen(want));
  assert_memory_equal(r.cut_buf, "dial tc", 8); /* 7 bytes and the NUL */
  tu_base_free(base);
}

static int group_setup(void **state) {
  (void)state;
  snprintf(g_hosts, sizeof g_hosts, "/tmp/rill-hosts-%d", (int)getpid());
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  unlink(g_hosts);
  return 0;
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_fds, tu_teardown_fds)
  const struct CMUnitTest tests[] = {
      T(test_long_comment_is_no_entry),
      T(test_long_entry_line_names_last_host),
      T(test_over_long_and_nul_lines_skipped_whole),
      T(test_dial_error_null_buffer_after_lookup),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
