/* G29 through the facade: deadlines and sleeps in nanoseconds, measured
 * from the real time of the call. The seed's read deadline of 10 us. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "rill.h"
#include "test_util.h"

#include "facade_util.c"

#define LIMIT 60000 /* a hang guard only */

static void ten_us_main(void *arg) {
  struct fu_pair p;
  char buf[16];
  uint64_t t0;
  (void)arg;
  if (fu_pair_open(&p) != 0)
    return;
  t0 = rill_time_now();
  FCHECK_EQ(rill_net_set_deadline(p.c, RILL_DEADLINE_READ, t0 + 10 * RILL_USEC), 0);
  FCHECK_EQ(rill_net_read(p.c, buf, sizeof buf), RILL_ETIMEOUT);
  FCHECK(rill_time_now() - t0 >= 10 * RILL_USEC);
  /* Nothing was lost: with the deadline gone, the byte sent now is read. */
  FCHECK_EQ(rill_net_set_deadline(p.c, RILL_DEADLINE_READ, 0), 0);
  FCHECK_EQ(fu_peer_write(p.peer, "x", 1), 0);
  FCHECK_EQ(rill_net_read(p.c, buf, sizeof buf), 1);
  fu_pair_close(&p);
}

static void test_g29_ten_microsecond_read_deadline(void **state) {
  (void)state;
  fu_run_fiber(ten_us_main, NULL, LIMIT);
}

static void short_sleep_main(void *arg) {
  uint64_t t0 = rill_time_now();
  (void)arg;
  FCHECK_EQ(rill_sleep(500 * RILL_USEC), 0);
  FCHECK(rill_time_now() - t0 >= 500 * RILL_USEC);
  t0 = rill_time_now();
  FCHECK_EQ(rill_sleep(0), 0);
  FCHECK(rill_time_now() >= t0);
}

static void test_g29_sub_millisecond_sleep(void **state) {
  (void)state;
  fu_run_fiber(short_sleep_main, NULL, LIMIT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_g29_ten_microsecond_read_deadline),
      cmocka_unit_test(test_g29_sub_millisecond_sleep),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
