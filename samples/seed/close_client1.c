/* close_client1 — reading and writing a connection this side has closed
 * (seed 001, "closing"; docs/go-model.md G23): "use of closed network
 * connection", for both. Run against close_server1. */
#include "seed.h"

static void run(void *arg) {
  rill_net_conn *c;
  char buf[32] = {0};
  ssize_t n;
  int err;
  (void)arg;
  say("begin dial...");
  if (!(c = seed_dial(NULL))) {
    seed_status = 1;
    return;
  }
  rill_net_close(c);
  say("close ok");
  if ((n = rill_net_read(c, buf, sizeof buf)) < 0)
    say("read error: %s", seed_conn_error(c, "read", (int)n));
  else
    say("read %d bytes", (int)n);
  if ((err = rill_net_write(c, buf, sizeof buf, NULL)) < 0)
    say("write error: %s", seed_conn_error(c, "write", err));
  else
    say("write %d bytes", (int)sizeof buf);
  rill_net_conn_free(c);
}

int main(int argc, char **argv) {
  seed_parse(argc, argv, "127.0.0.1:8901");
  return seed_run(run);
}
