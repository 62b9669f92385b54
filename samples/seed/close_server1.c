/* close_server1 — reading and writing a connection the peer has closed
 * (seed 001, "closing"; docs/go-model.md G15, G22): the read gets EOF, yet a write
 * succeeds (the bytes land in this side's kernel buffer); the peer answers
 * them with a reset, and the next write fails with "broken pipe". Run with
 * close_client1. */
#include "seed.h"

static void run(void *arg) {
  rill_net_listener *l;
  rill_net_conn *c;
  char buf[10] = {0};
  ssize_t n;
  int err, i;
  (void)arg;
  if (!(l = seed_listen(NULL)) || !(c = seed_accept_one(l))) {
    seed_status = 1;
    rill_net_listener_free(l);
    return;
  }
  rill_net_listener_free(l);
  say("start to read from conn");
  if ((n = rill_net_read(c, buf, sizeof buf)) < 0)
    say("conn read error: %s", seed_conn_error(c, "read", (int)n));
  else
    say("read %d bytes", (int)n);
  for (i = 0; i < 2; i++) {
    size_t written = 0;
    if (i > 0)
      rill_sleep(seed_ms(1000, 100) * RILL_MSEC); /* the peer's RST comes back meanwhile */
    if ((err = rill_net_write(c, buf, sizeof buf, &written)) < 0)
      say("conn write error: %s", seed_conn_error(c, "write", err));
    else
      say("write %d bytes", (int)sizeof buf);
  }
  rill_net_conn_free(c);
}

int main(int argc, char **argv) {
  seed_parse(argc, argv, "127.0.0.1:8901");
  return seed_run(run);
}
