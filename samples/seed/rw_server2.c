/* rw_server2 — reads into a 10-byte buffer until EOF (seed 001,
 * "conn.Read" cases 2 and 3; docs/go-model.md G13, G14, G15): fewer bytes than
 * the buffer come back at once, more fill the buffer and the rest comes
 * with the next read. Run with rw_client2. */
#include "seed.h"

static void run(void *arg) {
  rill_net_listener *l;
  rill_net_conn *c;
  (void)arg;
  if (!(l = seed_listen(NULL)) || !(c = seed_accept_one(l))) {
    seed_status = 1;
    rill_net_listener_free(l);
    return;
  }
  rill_net_listener_free(l);
  for (;;) {
    char buf[10];
    ssize_t n;
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
  seed_parse(argc, argv, "127.0.0.1:8892");
  return seed_run(run);
}
