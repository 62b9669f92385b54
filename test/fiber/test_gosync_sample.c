/* samples/go_shapes, run as a child process, prints exactly what its Go
 * twin (samples/go/go_shapes) prints: a worker pool, fan-in, a timeout, a
 * mutex and a context written with rill/chan.h behave as Go's (G35). */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "test_util.h"

static const char expected[] =
    "worker pool: 3 workers, 10 jobs, sum of squares 385\n"
    "fan-in: 6 messages from 2 producers, a0 a1 a2 in order, b0 b1 b2 in order\n"
    "timeout: no reply within 50 ms\n"
    "late reply: pong\n"
    "mutex: counter 4000\n"
    "context: worker stopped: context canceled\n"
    "context: deadline: context deadline exceeded\n";

static void go_shapes_prints_what_go_prints(void **state) {
  char out[4096];
  size_t len = 0, n;
  (void)state;
  FILE *p = popen(GO_SHAPES, "r");
  assert_non_null(p);
  while (len < sizeof out - 1 && (n = fread(out + len, 1, sizeof out - 1 - len, p)) > 0)
    len += n;
  out[len] = '\0';
  int status = pclose(p);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_string_equal(out, expected);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(go_shapes_prints_what_go_prints),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
