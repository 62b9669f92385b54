/* rill_strerror / rill_err_name: rill's own codes have Go's texts, errno
 * codes are -errno, unknown codes never give NULL. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "rill.h"
#include "test_util.h"

static void test_go_texts(void **state) {
  (void)state;
  assert_string_equal(rill_strerror(RILL_EOF), "EOF");
  assert_string_equal(rill_strerror(RILL_ECLOSED), "use of closed network connection");
  assert_string_equal(rill_strerror(RILL_ETIMEOUT), "i/o timeout");
  assert_string_equal(rill_strerror(RILL_ECONNREFUSED), "connection refused");
  assert_string_equal(rill_strerror(RILL_EDNS_NOHOST), "no such host");
}

static void test_names(void **state) {
  (void)state;
  assert_string_equal(rill_err_name(RILL_EOF), "EOF");
  assert_string_equal(rill_err_name(RILL_ECLOSED), "ECLOSED");
  assert_string_equal(rill_err_name(RILL_ETIMEOUT), "ETIMEOUT");
  assert_string_equal(rill_err_name(RILL_ECANCELED), "ECANCELED");
  assert_string_equal(rill_err_name(RILL_ENOTFIBER), "ENOTFIBER");
  assert_string_equal(rill_err_name(RILL_ENEEDDNS), "ENEEDDNS");
  assert_string_equal(rill_err_name(RILL_EBACKEND), "EBACKEND");
  assert_string_equal(rill_err_name(RILL_ECONNREFUSED), "ECONNREFUSED");
  assert_string_equal(rill_err_name(RILL_ETIMEDOUT), "ETIMEDOUT");
  assert_string_equal(rill_err_name(RILL_EINVAL), "EINVAL");
  assert_string_equal(rill_err_name(RILL_ENOMEM), "ENOMEM");
  assert_string_equal(rill_err_name(RILL_EBADF), "EBADF");
  assert_string_equal(rill_err_name(RILL_EEXIST), "EEXIST");
  assert_string_equal(rill_err_name(RILL_EBUSY), "EBUSY");
  assert_string_equal(rill_err_name(RILL_EAGAIN), "EAGAIN");
  assert_string_equal(rill_err_name(RILL_EPIPE), "EPIPE");
  assert_string_equal(rill_err_name(RILL_ECONNRESET), "ECONNRESET");
  assert_string_equal(rill_err_name(RILL_EADDRINUSE), "EADDRINUSE");
  assert_string_equal(rill_err_name(RILL_EMFILE), "EMFILE");
}

/* Every defined code has a distinct, real text and name. */
static void test_all_known_codes(void **state) {
  static const int codes[] = {
      RILL_EINVAL,       RILL_ENOMEM,      RILL_EBADF,         RILL_EEXIST,        RILL_EBUSY,
      RILL_EAGAIN,       RILL_ENOENT,      RILL_ENOSYS,        RILL_EMFILE,        RILL_ENFILE,
      RILL_EPIPE,        RILL_ECONNREFUSED, RILL_ECONNRESET,   RILL_ECONNABORTED,  RILL_ETIMEDOUT,
      RILL_EADDRINUSE,   RILL_EAFNOSUPPORT, RILL_EOF,          RILL_ECLOSED,       RILL_ETIMEOUT,
      RILL_ECANCELED,    RILL_ENOTFIBER,   RILL_ENEEDDNS,      RILL_EBACKEND,      RILL_EDNS_NOHOST,
      RILL_EDNS_SERVFAIL, RILL_EDNS_BADNAME, RILL_EADDR_NOPORT,
      RILL_EADDR_COLONS, RILL_EADDR_NOBRACKET, RILL_EADDR_OPENBRACKET, RILL_EADDR_CLOSEBRACKET,
      RILL_EADDR_PORT, RILL_EADDR_SERVICE, RILL_EADDR_MISSING, RILL_EADDR_FAMILY,
      RILL_EUNKNOWN_NETWORK,
  };
  size_t n = sizeof codes / sizeof codes[0], i, j;
  (void)state;
  for (i = 0; i < n; i++) {
    const char *s = rill_strerror(codes[i]);
    const char *name = rill_err_name(codes[i]);
    assert_non_null(s);
    assert_non_null(name);
    assert_true(strlen(s) > 0);
    assert_true(strlen(name) > 0);
    assert_string_not_equal(s, "unknown error");
    for (j = 0; j < i; j++) {
      assert_string_not_equal(rill_strerror(codes[j]), s);
      assert_string_not_equal(rill_err_name(codes[j]), name);
    }
  }
  /* Every code has its own name, texts Go shares included. */
  assert_string_not_equal(rill_err_name(RILL_EDNS_UNREACHABLE), rill_err_name(RILL_ECONNREFUSED));
  assert_string_not_equal(rill_err_name(RILL_EDNS_TIMEOUT), rill_err_name(RILL_ETIMEOUT));
  /* Codes Go words alike keep distinct names: a REFUSED rcode is "server
   * misbehaving" as SERVFAIL is, a DNS timeout "i/o timeout" as a
   * deadline is, an unreachable DNS server "connection refused" as a
   * refused dial is (G31). */
  assert_string_equal(rill_strerror(RILL_EDNS_REFUSED), rill_strerror(RILL_EDNS_SERVFAIL));
  assert_string_not_equal(rill_err_name(RILL_EDNS_REFUSED), rill_err_name(RILL_EDNS_SERVFAIL));
  assert_string_equal(rill_strerror(RILL_EDNS_TIMEOUT), rill_strerror(RILL_ETIMEOUT));
  assert_string_equal(rill_strerror(RILL_EDNS_UNREACHABLE), rill_strerror(RILL_ECONNREFUSED));
  assert_true(RILL_IS_DNS_ERROR(RILL_EDNS_UNREACHABLE));
  assert_true(RILL_IS_ADDR_ERROR(RILL_EADDR_NOPORT));
  assert_true(RILL_IS_ADDR_ERROR(RILL_EUNKNOWN_NETWORK));
  assert_false(RILL_IS_ADDR_ERROR(RILL_EDNS_NOHOST));
  /* The kernel's timeout and a deadline are different things. */
  assert_string_not_equal(rill_strerror(RILL_ETIMEDOUT), rill_strerror(RILL_ETIMEOUT));
}

static void test_unknown_codes(void **state) {
  static const int rill_range[] = {-10009, -10099, -10100, -10150, -10199,
                                   -10200, -20000, INT_MIN, INT_MIN + 1};
  static const int other[] = {0, 1, 5, 12345, INT_MAX, -9999, -4095, -10000};
  size_t i;
  (void)state;
  for (i = 0; i < sizeof rill_range / sizeof rill_range[0]; i++) {
    assert_non_null(rill_strerror(rill_range[i]));
    assert_string_equal(rill_strerror(rill_range[i]), "unknown error");
    assert_non_null(rill_err_name(rill_range[i]));
  }
  for (i = 0; i < sizeof other / sizeof other[0]; i++) {
    assert_non_null(rill_strerror(other[i]));
    assert_non_null(rill_err_name(other[i]));
  }
}

/* Codes the headers document (-EOPNOTSUPP for a TCP option on a Unix
 * socket, say) and any other errno: the C library's text, lower-cased like
 * Go's, and a name, never "unknown error". */
static void test_other_errnos(void **state) {
  static const int documented[] = {-EOPNOTSUPP, -EIO, -ENOBUFS, -ENOTSOCK, -EPROTO, -ENOSPC};
  char want[128];
  size_t i;
  (void)state;
  assert_string_equal(rill_strerror(-EOPNOTSUPP), "operation not supported");
  assert_string_equal(rill_strerror(-EIO), "input/output error");
  assert_string_equal(rill_strerror(-ENOBUFS), "no buffer space available");
  assert_string_equal(rill_err_name(-EOPNOTSUPP), "EOPNOTSUPP");
  assert_string_equal(rill_err_name(-EIO), "EIO");
  assert_string_equal(rill_err_name(-ENOBUFS), "ENOBUFS");
  for (i = 0; i < sizeof documented / sizeof documented[0]; i++) {
    assert_string_not_equal(rill_strerror(documented[i]), "unknown error");
    assert_string_not_equal(rill_err_name(documented[i]), "UNKNOWN");
  }
  /* An errno without a name here: "E<number>", and the C library's text. */
  snprintf(want, sizeof want, "E%d", EBADMSG);
  assert_string_equal(rill_err_name(-EBADMSG), want);
  assert_string_not_equal(rill_strerror(-EBADMSG), "unknown error");
  snprintf(want, sizeof want, "%s", strerror(EBADMSG));
  want[0] = (char)(want[0] >= 'A' && want[0] <= 'Z' ? want[0] - 'A' + 'a' : want[0]);
  assert_string_equal(rill_strerror(-EBADMSG), want);
  /* Past the kernel's errno range, and positive codes, stay unknown. */
  assert_string_equal(rill_strerror(-4096), "unknown error");
  assert_string_equal(rill_err_name(-4096), "UNKNOWN");
  assert_string_equal(rill_strerror(EIO), "unknown error");
}

static void test_errno_aliases(void **state) {
  (void)state;
  assert_int_equal(RILL_ECONNREFUSED, -ECONNREFUSED);
  assert_int_equal(RILL_EINVAL, -EINVAL);
  assert_true(RILL_IS_DNS_ERROR(RILL_EDNS_NOHOST));
  assert_true(RILL_IS_DNS_ERROR(RILL_EDNS_BADNAME));
  assert_false(RILL_IS_DNS_ERROR(RILL_EOF));
  assert_false(RILL_IS_DNS_ERROR(RILL_ECONNREFUSED));
  assert_false(RILL_IS_DNS_ERROR(-10200));
  assert_false(RILL_IS_DNS_ERROR(0));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_go_texts),
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_all_known_codes),
      cmocka_unit_test(test_unknown_codes),
      cmocka_unit_test(test_other_errnos),
      cmocka_unit_test(test_errno_aliases),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
