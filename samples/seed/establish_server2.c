/* establish_server2 — a server that accepts slowly, so its listen backlog
 * fills up (seed 001, "conn establish" case 2; GO_MODEL G9). Run with
 * establish_client2.
 *
 * The backlog is set to 4 (Go's net.Listen takes it from somaxconn, 4096
 * here, so the Go version makes its socket by hand): the client can then
 * fill it with a handful of connections. The server sleeps, then accepts
 * one connection per interval, exactly as many as the client makes. */
#include "seed.h"

#define BACKLOG 4
/* What establish_client2 makes: BACKLOG + 1 that the kernel queues at
 * once (Linux queues one more than the backlog), then one that waits for an
 * accept. The dial that times out in between never reaches the queue. */
#define TOTAL (BACKLOG + 1 + 1)

static void run(void *arg) {
  rill_net_options opts = {0};
  rill_net_conn *conns[TOTAL];
  rill_net_listener *l;
  int i, n = 0;
  (void)arg;
  opts.backlog = BACKLOG;
  if (!(l = seed_listen(&opts))) {
    seed_status = 1;
    return;
  }
  for (i = 1; i <= TOTAL; i++) {
    rill_net_conn *c;
    int err;
    rill_sleep(seed_ms(10000, 500) * RILL_MSEC);
    if ((err = rill_net_accept(l, &c)) < 0) {
      say("accept error: %s", rill_strerror(err));
      seed_status = 1;
      break;
    }
    conns[n++] = c;
    say("%d: accept a new connection", i);
  }
  for (i = 0; i < n; i++)
    rill_net_conn_free(conns[i]);
  rill_net_listener_free(l);
}

int main(int argc, char **argv) {
  seed_parse(argc, argv, "127.0.0.1:8882");
  return seed_run(run);
}
