/* rw_server4 — reads under deadlines (seed 001, "conn.Read" case 5;
 * docs/go-model.md G16). Run with rw_client4, which sends 65536 bytes after a
 * pause and closes.
 *
 * The seed set a 10 us deadline and saw either "0 bytes, i/o timeout" or
 * all the data, depending on timing, never part of the data with the
 * error. Here the three cases are made deterministic:
 *   1. a deadline that passes before any data came: 0 bytes, i/o timeout;
 *   2. a deadline already passed while data waits: still 0 bytes and
 *      i/o timeout (the deadline is checked before reading), nothing lost;
 *   3. a deadline in the future: every byte, then EOF. */
#include "seed.h"

static char buf[65536];

static void run(void *arg) {
  rill_net_listener *l;
  rill_net_conn *c;
  ssize_t n;
  size_t total = 0;
  (void)arg;
  if (!(l = seed_listen(NULL)) || !(c = seed_accept_one(l))) {
    seed_status = 1;
    rill_net_listener_free(l);
    return;
  }
  rill_net_listener_free(l);

  say("start to read from conn (deadline soon, no data yet)");
  rill_net_set_deadline(c, RILL_DEADLINE_READ, rill_time_now() + (seed_ms(1000, 100)) * RILL_MSEC);
  n = rill_net_read(c, buf, sizeof buf);
  say("conn read %d bytes, error: %s", n < 0 ? 0 : (int)n, n < 0 ? seed_conn_error(c, "read", (int)n) : "none");

  rill_sleep(seed_ms(4000, 500) * RILL_MSEC); /* the data arrives meanwhile */
  say("start to read from conn (deadline passed, data waiting)");
  rill_net_set_deadline(c, RILL_DEADLINE_READ, rill_time_now() - RILL_MSEC);
  n = rill_net_read(c, buf, sizeof buf);
  say("conn read %d bytes, error: %s", n < 0 ? 0 : (int)n, n < 0 ? seed_conn_error(c, "read", (int)n) : "none");

  say("start to read from conn (deadline in 1 s)");
  rill_net_set_deadline(c, RILL_DEADLINE_READ, rill_time_now() + RILL_SEC);
  /* Every read returns what is there; how it is split depends on the
   * kernel, so only the sum is printed. */
  while (total < sizeof buf && (n = rill_net_read(c, buf + total, sizeof buf - total)) > 0)
    total += (size_t)n;
  if (n < 0)
    say("conn read error: %s", seed_conn_error(c, "read", (int)n));
  say("read %d bytes in total: nothing was lost to the timeouts", (int)total);
  say("start to read from conn");
  n = rill_net_read(c, buf, sizeof buf);
  if (n < 0)
    say("conn read error: %s", seed_conn_error(c, "read", (int)n));
  else
    say("read %d bytes", (int)n);
  rill_net_conn_free(c);
}

int main(int argc, char **argv) {
  seed_parse(argc, argv, "127.0.0.1:8894");
  return seed_run(run);
}
