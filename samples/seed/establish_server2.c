/* establish_server2 — a server that does not accept, so its listen backlog
 * fills up (seed 001, "conn establish" case 2; G9 in docs/go-model.md). Run
 * with establish_client2.
 *
 * The backlog is set to 4 (Go's net.Listen takes it from somaxconn, 4096
 * here, so the Go version makes its socket by hand): the client can then
 * fill it with a handful of connections. The seed's server sleeps before
 * each accept; here it accepts nothing until the client says so over a
 * control socket, once a dial of its own is stuck on the full backlog. A
 * sleep raced with the client (a client started late saw an accept too
 * early), the client's word does not: the output depends on events only.
 * Then it accepts every connection the client made. */
#include "seed.h"

#define BACKLOG 4
/* What establish_client2 makes: BACKLOG + 1 that the kernel queues at
 * once (Linux queues one more than the backlog), then one that waits for an
 * accept. The dial that times out in between never reaches the queue. */
#define TOTAL (BACKLOG + 1 + 1)

static void run(void *arg) {
  rill_socket_config opts = {0};
  rill_net_conn *conns[TOTAL];
  rill_net_listener *l, *control_l = NULL;
  rill_net_conn *control = NULL;
  char control_addr[128], go;
  int i, n = 0, err;
  (void)arg;
  /* The control socket first: the client may start once "listen ok" is out. */
  seed_control_address(control_addr, sizeof control_addr);
  if ((err = rill_net_listen("unix", control_addr, NULL, &control_l)) < 0) {
    say("control listen error: %s", rill_strerror(err));
    seed_status = 1;
    return;
  }
  opts.backlog = BACKLOG;
  if (!(l = seed_listen(&opts))) {
    seed_status = 1;
    rill_net_listener_free(control_l);
    return;
  }
  /* Nothing is accepted on `l` until the client asks for it. */
  if ((err = rill_net_accept(control_l, &control)) < 0 || (err = (int)rill_net_read(control, &go, 1)) < 0) {
    say("control error: %s", rill_strerror(err));
    seed_status = 1;
  }
  for (i = 1; i <= TOTAL && !seed_status; i++) {
    rill_net_conn *c;
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
  rill_net_conn_free(control);
  rill_net_listener_free(l);
  rill_net_listener_free(control_l);
}

int main(int argc, char **argv) {
  seed_parse(argc, argv, "127.0.0.1:8882");
  return seed_run(run);
}
