/* rw_server5 — a slow reader that dies (seed 001, "conn.Write" cases 2 and
 * 3). Run with rw_client5.
 *
 * It does not read at first, so the client's writes fill both kernel
 * buffers and block (G19); then it reads 60000 bytes a few times, so the
 * client's writes resume; then it closes the connection with unread data,
 * which resets it: the client's blocked write fails with the bytes it had
 * written so far (G21). The seed killed the server; closing with unread
 * data sends the same RST. Small socket buffers keep the amounts small. */
#include "seed.h"

#define READS 8 /* 480000 bytes: more than both buffers hold, see rw_client5 */

static char buf[60000];

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
  rill_net_set_read_buffer(c, 32 * 1024);
  rill_sleep(seed_ms(10000, 300) * RILL_MSEC);
  for (i = 0; i < READS; i++) {
    size_t got = 0;
    ssize_t n = 0;
    rill_sleep(seed_ms(5000, 50) * RILL_MSEC);
    say("start to read from conn");
    /* io.ReadFull: one read returns what the small buffer holds. */
    while (got < sizeof buf && (n = rill_net_read(c, buf + got, sizeof buf - got)) > 0)
      got += (size_t)n;
    if (n < 0) {
      say("conn read error: %s", seed_conn_error(c, "read", (int)n));
      break;
    }
    say("read %d bytes", (int)got);
  }
  say("close with unread data (resets the connection)");
  rill_net_conn_free(c);
}

int main(int argc, char **argv) {
  seed_parse(argc, argv, "127.0.0.1:8895");
  return seed_run(run);
}
