/* rw_server3 — reads only after the client has closed (seed 001,
 * "conn.Read" case 4; docs/go-model.md G15): the data that was sent before the
 * close comes first, then EOF. Run with rw_client3. */
#include "seed.h"

static void run(void *arg) {
  rill_net_listener *l;
  rill_net_conn *c;
  int i;
  (void)arg;
  if (!(l = seed_listen(NULL)) || !(c = seed_accept_one(l))) {
    seed_status = 1;
    rill_net_listener_free(l);
    return;
  }
  rill_net_listener_free(l);
  for (i = 0; i < 2; i++) {
    char buf[10];
    ssize_t n;
    rill_sleep(seed_ms(10000, 100) * RILL_MSEC); /* the client is long gone by then */
    say("start to read from conn");
    n = rill_net_read(c, buf, sizeof buf);
    if (n < 0) {
      say("conn read error: %s", seed_conn_error(c, "read", (int)n));
      break;
    }
    say("read %d bytes, content is %.*s", (int)n, (int)n, buf);
  }
  rill_net_conn_free(c);
}

int main(int argc, char **argv) {
  seed_parse(argc, argv, "127.0.0.1:8893");
  return seed_run(run);
}
