/* rw_server6 — reads only after the client's write deadline has passed,
 * then everything until EOF (seed 001, "conn.Write" case 4; docs/go-model.md G20).
 * Run with rw_client6, which ends its stream with an 8-byte trailer: the
 * number of bytes its writes reported, the timed-out partial write
 * included. The server checks that it received exactly that many. */
#include "seed.h"

static void run(void *arg) {
  rill_net_listener *l;
  rill_net_conn *c;
  unsigned char buf[65536], last[8] = {0};
  uint64_t total = 0, reported = 0;
  ssize_t n;
  int i;
  (void)arg;
  if (!(l = seed_listen(NULL)) || !(c = seed_accept_one(l))) {
    seed_status = 1;
    rill_net_listener_free(l);
    return;
  }
  rill_net_listener_free(l);
  rill_net_set_read_buffer(c, 32 * 1024);
  rill_sleep(seed_ms(3000, 300) * RILL_MSEC); /* past the client's write deadline */
  say("start to read from conn until EOF");
  while ((n = rill_net_read(c, buf, sizeof buf)) > 0) {
    /* Keep the stream's last 8 bytes. */
    for (i = 0; i < n; i++) {
      memmove(last, last + 1, 7);
      last[7] = buf[i];
    }
    total += (uint64_t)n;
  }
  say("conn read error: %s", seed_conn_error(c, "read", (int)n));
  for (i = 0; i < 8; i++)
    reported = reported << 8 | last[i];
  if (total >= 8 && total - 8 == reported)
    say("received exactly the bytes the client's writes reported, the partial one included");
  else
    say("received %llu bytes, but the client reported %llu", (unsigned long long)(total - 8),
        (unsigned long long)reported);
  rill_net_conn_free(c);
}

int main(int argc, char **argv) {
  seed_parse(argc, argv, "127.0.0.1:8896");
  return seed_run(run);
}
