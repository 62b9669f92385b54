/* establish_client3 — a dial with a timeout to a peer that does not answer
 * (seed 001, "conn establish" case 3; docs/go-model.md G9/G10): "i/o timeout".
 *
 * The seed dials a far host over a slow network. To be reproducible
 * offline, this program makes the peer itself: a plain socket listening on
 * --addr with a backlog of 0 that never accepts. One connection fills its
 * queue; from then on the kernel drops every SYN, so the next dial hangs
 * until its timeout, as over a lossy network. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "seed.h"

/* The never-accepting peer: plain system calls (scaffolding, not the
 * experiment; rill's listener would accept into its own queue). */
static int stuck_listener(void) {
  struct sockaddr_storage ss;
  socklen_t len;
  int fd, on = 1;
  if (rill_addr_parse("tcp4", seed.addr, &ss, &len) < 0)
    return -1;
  if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
    return -1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 0) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void run(void *arg) {
  rill_socket_config opts = {0};
  rill_net_conn *filler = NULL, *c;
  uint64_t t0, took, timeout = seed_ms(2000, 200);
  char msg[256];
  int fd;
  (void)arg;
  if ((fd = stuck_listener()) < 0) {
    say("cannot listen on %s", seed.addr);
    seed_status = 1;
    return;
  }
  opts.timeout = timeout * RILL_MSEC;
  if (rill_net_dial("tcp", seed.addr, &opts, &filler, msg, sizeof msg) < 0) {
    say("filling the backlog failed: %s", msg);
    seed_status = 1;
    close(fd);
    return;
  }
  say("a peer that never answers is ready");
  say("begin dial...");
  t0 = seed_clock_ms();
  c = seed_dial(&opts);
  took = seed_clock_ms() - t0;
  if (c) {
    rill_net_conn_free(c);
    seed_status = 1;
  } else if (took + 5 >= timeout && took < timeout + 500) {
    say("the dial gave up after its %d ms timeout", (int)timeout);
  } else {
    say("the dial gave up after %d ms, not after its %d ms timeout", (int)took, (int)timeout);
  }
  rill_net_conn_free(filler);
  close(fd);
}

int main(int argc, char **argv) {
  seed_parse(argc, argv, "127.0.0.1:8883");
  return seed_run(run);
}
