/* Hostile input to the address parser and formatter, and to the op-error
 * formatter (issue 8, section 4): rill_addr_format() reads no byte past
 * `len`, zones are strict decimal numbers in range or interface names, and
 * rill_format_op_error() behaves as snprintf. Each sockaddr under test lives
 * in a heap block of exactly `len` bytes, so ASan reports any over-read. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "rill.h"
#include "test_util.h"

/* Formats the first `len` bytes of `sa`, copied into a block of exactly
 * that size. */
static int format_exact(const void *sa, size_t len, char *buf, size_t size) {
  void *copy = malloc(len ? len : 1);
  int rc;
  assert_non_null(copy);
  memcpy(copy, sa, len);
  rc = rill_addr_format((const struct sockaddr *)copy, (socklen_t)len, buf, size);
  free(copy);
  return rc;
}

static void test_format_short_lengths(void **state) {
  struct sockaddr_in6 in6;
  struct sockaddr_in in4;
  struct sockaddr_un un;
  char buf[RILL_ADDRSTRLEN];
  (void)state;
  memset(&in6, 0, sizeof in6);
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(80);
  inet_pton(AF_INET6, "::1", &in6.sin6_addr);
  memset(&in4, 0, sizeof in4);
  in4.sin_family = AF_INET;
  in4.sin_port = htons(80);
  in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  memset(&un, 0, sizeof un);
  un.sun_family = AF_UNIX;
  strcpy(un.sun_path, "/tmp/x.sock");

  /* An AF_INET6 family in a 16-byte block: the scope id and most of the
   * address lie past the end. */
  assert_int_equal(format_exact(&in6, 16, buf, sizeof buf), RILL_EINVAL);
  assert_int_equal(format_exact(&in6, sizeof in6 - 1, buf, sizeof buf), RILL_EINVAL);
  assert_int_equal(format_exact(&in6, sizeof in6, buf, sizeof buf), (int)strlen("[::1]:80"));
  assert_string_equal(buf, "[::1]:80");
  /* A 1-byte and an empty sockaddr: not even the family fits. */
  assert_int_equal(format_exact(&in4, 1, buf, sizeof buf), RILL_EINVAL);
  assert_int_equal(format_exact(&in4, 0, buf, sizeof buf), RILL_EINVAL);
  assert_int_equal(format_exact(&in4, sizeof in4 - 1, buf, sizeof buf), RILL_EINVAL);
  assert_int_equal(format_exact(&in4, sizeof in4, buf, sizeof buf), (int)strlen("127.0.0.1:80"));
  assert_string_equal(buf, "127.0.0.1:80");
  /* Unix: the path is what `len` covers, terminated or not. */
  assert_int_equal(format_exact(&un, 1, buf, sizeof buf), RILL_EINVAL);
  /* No path at all: an unnamed socket, "@" as Go shows it. */
  assert_int_equal(format_exact(&un, offsetof(struct sockaddr_un, sun_path), buf, sizeof buf), 1);
  assert_string_equal(buf, "@");
  assert_int_equal(format_exact(&un, offsetof(struct sockaddr_un, sun_path) + 4, buf, sizeof buf), 4);
  assert_string_equal(buf, "/tmp");
  un.sun_path[0] = '\0'; /* abstract: "@" and the name up to `len` */
  assert_int_equal(format_exact(&un, offsetof(struct sockaddr_un, sun_path) + 4, buf, sizeof buf), 4);
  assert_string_equal(buf, "@tmp");
  assert_int_equal(format_exact(&un, offsetof(struct sockaddr_un, sun_path) + 1, buf, sizeof buf), 1);
  assert_string_equal(buf, "@");
}

static void test_format_bad_arguments(void **state) {
  struct sockaddr_in in4;
  char buf[RILL_ADDRSTRLEN];
  (void)state;
  memset(&in4, 0, sizeof in4);
  in4.sin_family = AF_INET;
  assert_int_equal(rill_addr_format(NULL, sizeof in4, buf, sizeof buf), RILL_EINVAL);
  assert_int_equal(rill_addr_format((struct sockaddr *)&in4, sizeof in4, NULL, 16), RILL_EINVAL);
  assert_int_equal(rill_addr_format((struct sockaddr *)&in4, sizeof in4, buf, 0), RILL_EINVAL);
  assert_int_equal(rill_addr_format((struct sockaddr *)&in4, sizeof in4, buf, 8), RILL_EINVAL);
  in4.sin_family = AF_APPLETALK;
  assert_int_equal(rill_addr_format((struct sockaddr *)&in4, sizeof in4, buf, sizeof buf),
                   RILL_EAFNOSUPPORT);
}

static int zone_of(const char *address, unsigned *scope) {
  struct sockaddr_storage ss;
  socklen_t len;
  int rc = rill_addr_parse("tcp6", address, &ss, &len);
  if (rc == 0) {
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    *scope = ((struct sockaddr_in6 *)&ss)->sin6_scope_id;
  }
  return rc;
}

static void test_zones(void **state) {
  static const char *const bad[] = {
      "[fe80::1%4294967297]:80", /* wrapped to 1 before */
      "[fe80::1%4294967296]:80", "[fe80::1%18446744073709551617]:80",
      "[fe80::1%-1]:80",         "[fe80::1% 7]:80",
      "[fe80::1%+7]:80",         "[fe80::1%7 ]:80",
      "[fe80::1%0x7]:80",        "[fe80::1%]:80",
      "[fe80::1%no-such-if0]:80",
  };
  unsigned scope = 0;
  size_t i;
  unsigned lo = if_nametoindex("lo");
  (void)state;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = zone_of(bad[i], &scope);
    if (rc != RILL_EINVAL)
      fail_msg("%s: %d (%s), scope %u; RILL_EINVAL expected", bad[i], rc, rill_err_name(rc), scope);
  }
  assert_int_equal(zone_of("[fe80::1%7]:80", &scope), 0);
  assert_int_equal(scope, 7);
  assert_int_equal(zone_of("[fe80::1%4294967295]:80", &scope), 0);
  assert_int_equal(scope, 4294967295u);
  assert_int_equal(zone_of("[fe80::1%0]:80", &scope), 0);
  assert_int_equal(scope, 0);
  if (lo) {
    assert_int_equal(zone_of("[fe80::1%lo]:80", &scope), 0);
    assert_int_equal(scope, lo);
  }
}

/* rill_format_op_error() as snprintf: the full length whatever `size`,
 * never a byte past `size`, always a NUL when `size` > 0. */
static void test_op_error_like_snprintf(void **state) {
  const char *want = "dial tcp 127.0.0.1:5->127.0.0.1:1: connect: connection refused";
  size_t full = strlen(want), size;
  char buf[128];
  (void)state;
  assert_int_equal(rill_format_op_error("dial", "tcp", "127.0.0.1:5", "127.0.0.1:1", "connect",
                                        RILL_ECONNREFUSED, NULL, 0),
                   (int)full);
  for (size = 1; size <= full + 2; size++) {
    char *exact = malloc(size);
    int rc;
    assert_non_null(exact);
    rc = rill_format_op_error("dial", "tcp", "127.0.0.1:5", "127.0.0.1:1", "connect", RILL_ECONNREFUSED,
                              exact, size);
    assert_int_equal(rc, (int)full);
    assert_int_equal(strlen(exact), size - 1 < full ? size - 1 : full);
    assert_memory_equal(exact, want, strlen(exact));
    free(exact);
  }
  assert_int_equal(rill_format_op_error("dial", "tcp", NULL, NULL, NULL, 0, NULL, 5), RILL_EINVAL);
  assert_int_equal(rill_format_op_error(NULL, "tcp", NULL, NULL, NULL, 0, buf, sizeof buf),
                   RILL_EINVAL);
  assert_int_equal(rill_format_op_error("dial", NULL, NULL, NULL, NULL, 0, buf, sizeof buf),
                   RILL_EINVAL);
  /* Only a remote, only a local, neither. */
  assert_true(rill_format_op_error("read", "tcp", NULL, "a:1", NULL, RILL_ECLOSED, buf, sizeof buf) > 0);
  assert_string_equal(buf, "read tcp a:1: use of closed network connection");
  assert_true(rill_format_op_error("read", "tcp", "b:2", NULL, NULL, RILL_ECLOSED, buf, sizeof buf) > 0);
  assert_string_equal(buf, "read tcp b:2: use of closed network connection");
  /* Go's io.EOF is never wrapped; an empty network is left out. */
  assert_int_equal(rill_format_op_error("read", "tcp", "b:2", "a:1", "read", RILL_EOF, buf, sizeof buf), 3);
  assert_string_equal(buf, "EOF");
  assert_true(rill_format_op_error("dial", "", NULL, NULL, NULL, RILL_ECLOSED, buf, sizeof buf) > 0);
  assert_string_equal(buf, "dial: use of closed network connection");
  assert_true(rill_format_op_error("listen", "unix", NULL, NULL, NULL, -EIO, buf, sizeof buf) > 0);
  assert_string_equal(buf, "listen unix: input/output error");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_format_short_lengths),
      cmocka_unit_test(test_format_bad_arguments),
      cmocka_unit_test(test_zones),
      cmocka_unit_test(test_op_error_like_snprintf),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
