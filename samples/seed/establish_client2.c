/* establish_client2 — dialing a server whose listen backlog is full (seed
 * 001, "conn establish" case 2; GO_MODEL G9). Run against
 * establish_server2, which has a backlog of 4 and accepts slowly.
 *
 * Serial dials complete at once while the kernel can queue them; then a
 * dial waits: the server's kernel drops the SYN and the dial completes only
 * once the server accepted and a SYN retransmission (after 1 s on Linux)
 * finds room. A dial with a timeout ends with "i/o timeout" instead. */
#include "seed.h"

#define MAX_CONNS 1000

static void run(void *arg) {
  static rill_net_conn *conns[MAX_CONNS];
  rill_net_options timeout = {0};
  int n = 0, i, at_once = 0;
  char msg[256];
  (void)arg;
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
    /* A pause between dials, so the count does not depend on how fast the
     * server process gets to run, only on how much it queues. */
    rill_sleep(2 * RILL_MSEC);
  }
  if (n == MAX_CONNS) {
    say("1-%d: connect to server ok (no dial ever waited)", n);
    seed_status = 1;
  }
  /* Phase 2: dial without a timeout: it waits until the server accepted
   * (and the SYN was sent again). One dial only: after that, whether the
   * next one waits depends on how the accepts fall between retransmits. */
  for (i = 0; i < 1 && n < MAX_CONNS; i++) {
    rill_net_conn *c;
    uint64_t t0 = seed_clock_ms();
    if (rill_net_dial("tcp", seed.addr, NULL, &c, msg, sizeof msg) < 0) {
      say("%d: dial error: %s", n + 2, msg);
      seed_status = 1;
      break;
    }
    conns[n++] = c;
    /* n + 1: the dial that timed out had a number too. */
    say("%d: connect to server ok (%s)", n + 1,
        seed_clock_ms() - t0 >= 100 ? "after waiting for an accept" : "at once");
  }
  for (i = 0; i < n; i++)
    rill_net_conn_free(conns[i]);
}

int main(int argc, char **argv) {
  seed_parse(argc, argv, "127.0.0.1:8882");
  return seed_run(run);
}
