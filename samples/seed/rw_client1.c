/* rw_client1 — connects, says nothing for a while, then sends "hello" and
 * closes. Run against rw_server1 (seed 001, "conn.Read" case 1). */
#include "seed.h"

static void run(void *arg) {
  rill_net_conn *c;
  int err;
  (void)arg;
  if (!(c = seed_dial(NULL))) {
    seed_status = 1;
    return;
  }
  rill_sleep(seed_ms(2000, 200) * RILL_MSEC); /* rw_server1 expects at least half of this */
  if ((err = rill_net_write(c, "hello", 5, NULL)) < 0)
    say("write error: %s", seed_conn_error(c, "write", err));
  else
    say("write 5 bytes: hello");
  rill_net_conn_free(c);
  say("close");
}

int main(int argc, char **argv) {
  seed_parse(argc, argv, "127.0.0.1:8891");
  return seed_run(run);
}
