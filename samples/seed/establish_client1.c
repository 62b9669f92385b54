/* establish_client1 — dialing a port nobody listens on (seed 001, "conn
 * establish" case 1; docs/go-model.md G8): the dial fails at once with "connection
 * refused". Go version: samples/go/seed/establish_client1/main.go. */
#include "seed.h"

static void run(void *arg) {
  rill_net_conn *c;
  uint64_t t0 = seed_clock_ms();
  (void)arg;
  say("begin dial...");
  c = seed_dial(NULL);
  if (!c) {
    /* Well under 100 ms: the kernel answers a SYN to a closed port with RST. */
    if (seed_clock_ms() - t0 < 100)
      say("the dial failed at once (under 100 ms)");
    return;
  }
  rill_net_conn_free(c);
  seed_status = 1;
}

int main(int argc, char **argv) {
  seed_parse(argc, argv, "127.0.0.1:8881");
  return seed_run(run);
}
