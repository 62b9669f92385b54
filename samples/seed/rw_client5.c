/* rw_client5 — writes 64 KiB chunks until an error (seed 001,
 * "conn.Write" cases 2 and 3; docs/go-model.md G19, G21). Run against rw_server5.
 *
 * The seed printed every write and its total; those numbers depend on the
 * kernel's buffer sizes, so this prints events instead:
 *  - "write blocked": a write that took long, because the server did not
 *    read and both kernel buffers were full (G19);
 *  - "write resumed": a write that completed after that, once the server
 *    read. Certain: the server reads 480000 bytes, more than the buffers
 *    (2 x 64 KiB with the 32 KiB SO_SNDBUF/SO_RCVBUF the kernel doubles,
 *    plus a chunk in flight) hold;
 *  - the error when the server closes with unread data. The failing write
 *    reports how much of its chunk reached the kernel (G21), anything from
 *    0 up: that depends on where the kernel stood, so only n < 65536 is
 *    printed (rw_server6 checks such counts exactly). */
#include "seed.h"

static char chunk[65536];

static void run(void *arg) {
  rill_net_conn *c;
  uint64_t total = 0;
  int blocked = 0, resumed = 0;
  (void)arg;
  if (!(c = seed_dial(NULL))) {
    seed_status = 1;
    return;
  }
  rill_net_set_write_buffer(c, 32 * 1024);
  for (;;) {
    size_t n = 0;
    uint64_t t0 = seed_clock_ms();
    int err = rill_net_write(c, chunk, sizeof chunk, &n);
    uint64_t took = seed_clock_ms() - t0;
    total += n;
    if (err < 0) {
      say("write n %s %d bytes, error: %s", n < sizeof chunk ? "<" : ">=", (int)sizeof chunk, seed_conn_error(c, "write", err));
      break;
    }
    if (!blocked && took >= seed_ms(1000, 100)) {
      blocked = 1;
      say("write blocked: the kernel buffers were full");
    } else if (blocked && !resumed) {
      resumed = 1;
      say("write resumed: the server reads");
    }
  }
  say("write %s bytes in total", total > 0 ? ">0" : "0");
  rill_net_conn_free(c);
}

int main(int argc, char **argv) {
  seed_parse(argc, argv, "127.0.0.1:8895");
  return seed_run(run);
}
