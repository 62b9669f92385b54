/* rw_client4 — waits a little, sends 65536 bytes, closes. Run against
 * rw_server4 (seed 001, "conn.Read" case 5). */
#include "seed.h"

static void run(void *arg) {
  static char data[65536];
  rill_net_conn *c;
  int err;
  (void)arg;
  if (!(c = seed_dial(NULL))) {
    seed_status = 1;
    return;
  }
  /* After rw_server4's first read has timed out (its deadline is 1/2 of this). */
  rill_sleep(seed_ms(2000, 200) * RILL_MSEC);
  if ((err = rill_net_write(c, data, sizeof data, NULL)) < 0)
    say("write error: %s", seed_conn_error(c, "write", err));
  else
    say("write %d bytes", (int)sizeof data);
  rill_net_conn_free(c);
  say("close");
}

int main(int argc, char **argv) {
  seed_parse(argc, argv, "127.0.0.1:8894");
  return seed_run(run);
}
