/* establish_client2 — dialing a server whose listen backlog is full (seed
 * 001, "conn establish" case 2; G9 in docs/go-model.md). Run against
 * establish_server2, which has a backlog of 4 and accepts only when told.
 *
 * Serial dials complete at once while the kernel can queue them; then a
 * dial waits: the server's kernel drops the SYN and the dial completes only
 * once the server accepted and a SYN retransmission (after 1 s on Linux)
 * finds room. A dial with a timeout ends with "i/o timeout" instead.
 *
 * The server accepts nothing until this client writes a byte to its
 * control socket, which it does once its last dial is stuck: the socket is
 * in SYN_SENT (connect() sent the SYN, and the full queue dropped it). So
 * every line below follows from events, never from how fast either
 * process got to run. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "seed.h"

#define MAX_CONNS 1000

/* The dial of phase 2, run in a fiber of its own while the main fiber
 * watches its socket. */
struct stuck_dial {
  int fd; /* the dial's socket, from the control hook; -1 before */
  int done, err;
  rill_net_conn *conn;
  uint64_t took_ms;
  char msg[256];
};

static int remember_fd(int fd, const char *network, const char *address, void *arg) {
  (void)network;
  (void)address;
  ((struct stuck_dial *)arg)->fd = fd;
  return 0;
}

static void dial_in_fiber(void *arg) {
  struct stuck_dial *d = (struct stuck_dial *)arg;
  rill_socket_config opts = {0};
  uint64_t t0 = seed_clock_ms();
  opts.control = remember_fd;
  opts.control_arg = d;
  d->err = rill_net_dial("tcp", seed.addr, &opts, &d->conn, d->msg, sizeof d->msg);
  d->took_ms = seed_clock_ms() - t0;
  d->done = 1;
}

/* connect() has sent the SYN: the socket waits in SYN_SENT. */
static int syn_sent(int fd) {
  struct tcp_info info;
  socklen_t len = sizeof info;
  return fd >= 0 && getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 && info.tcpi_state == TCP_SYN_SENT;
}

static void run(void *arg) {
  static rill_net_conn *conns[MAX_CONNS];
  rill_socket_config timeout = {0};
  rill_net_conn *control = NULL;
  struct stuck_dial d = {-1, 0, 0, NULL, 0, ""};
  char control_addr[128], msg[256];
  int n = 0, i, at_once = 0, err;
  (void)arg;
  seed_control_address(control_addr, sizeof control_addr);
  if ((err = rill_net_dial("unix", control_addr, NULL, &control, msg, sizeof msg)) < 0) {
    say("control dial error: %s", msg);
    seed_status = 1;
    return;
  }
  timeout.timeout = seed_ms(2000, 200) * RILL_MSEC;
  /* Phase 1: dial with a timeout until one times out. The successes are
   * summed up in one line: their number is the server's queue length. */
  while (n < MAX_CONNS) {
    rill_net_conn *c;
    if (rill_net_dial("tcp", seed.addr, &timeout, &c, msg, sizeof msg) < 0) {
      say("1-%d: connect to server ok (at once)", at_once);
      say("%d: dial error: %s", n + 1, msg);
      break;
    }
    conns[n++] = c;
    at_once++;
    /* A pause between dials: on a loaded machine the kernel may finish
     * queueing one connection a little after its dial returned. */
    rill_sleep(2 * RILL_MSEC);
  }
  if (n == MAX_CONNS) {
    say("1-%d: connect to server ok (no dial ever waited)", n);
    seed_status = 1;
  }
  /* Phase 2: a dial without a timeout waits while the server does not
   * accept. Once it is stuck, the server is told to accept; the dial then
   * completes with the next SYN retransmission. */
  if (n < MAX_CONNS && rill_go(rill_fiber_base(), dial_in_fiber, &d) == 0) {
    while (!d.done && !syn_sent(d.fd))
      rill_sleep(RILL_MSEC);
    if (rill_net_write(control, "a", 1, NULL) < 0)
      seed_status = 1;
    while (!d.done)
      rill_sleep(RILL_MSEC);
    if (d.err < 0) {
      say("%d: dial error: %s", n + 2, d.msg);
      seed_status = 1;
    } else {
      conns[n++] = d.conn;
      /* n + 1: the dial that timed out had a number too. */
      say("%d: connect to server ok (%s)", n + 1,
          d.took_ms >= 100 ? "after waiting for an accept" : "at once");
    }
  } else {
    rill_net_write(control, "a", 1, NULL); /* let the server finish */
  }
  for (i = 0; i < n; i++)
    rill_net_conn_free(conns[i]);
  rill_net_conn_free(control);
}

int main(int argc, char **argv) {
  seed_parse(argc, argv, "127.0.0.1:8882");
  return seed_run(run);
}
