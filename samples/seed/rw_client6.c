/* rw_client6 — rw_client5 with a write deadline (seed 001, "conn.Write"
 * case 4; docs/go-model.md G20). Run against rw_server6, which does not read
 * until the deadline has passed.
 *
 * The write that is blocked when the deadline passes returns "i/o timeout"
 * AND the bytes it did write; a later write fails at once. After clearing
 * the deadline, the client sends the total its writes reported as an
 * 8-byte trailer, so the server can check that no byte was hidden. */
#include "seed.h"

static char chunk[65536];

static void run(void *arg) {
  rill_net_conn *c;
  uint64_t total = 0;
  unsigned char trailer[8];
  size_t n;
  int err, i;
  (void)arg;
  if (!(c = seed_dial(NULL))) {
    seed_status = 1;
    return;
  }
  rill_net_set_write_buffer(c, 32 * 1024);
  rill_net_set_deadline(c, RILL_DEADLINE_WRITE, rill_time_now() + (seed_ms(1000, 100)) * RILL_MSEC);
  for (;;) {
    err = rill_net_write(c, chunk, sizeof chunk, &n);
    total += n;
    if (err < 0) {
      /* How far the last write got depends on the kernel's buffers. */
      say("write n %s %d bytes, error: %s", n < sizeof chunk ? "<" : ">=", (int)sizeof chunk, seed_conn_error(c, "write", err));
      break;
    }
  }
  say("write %s bytes in total", total > 0 ? ">0" : "0");
  err = rill_net_write(c, chunk, sizeof chunk, &n);
  say("write again: %d bytes, error: %s", (int)n, err < 0 ? seed_conn_error(c, "write", err) : "none");
  rill_net_set_deadline(c, RILL_DEADLINE_WRITE, 0);
  for (i = 0; i < 8; i++)
    trailer[i] = (unsigned char)(total >> (56 - 8 * i));
  if ((err = rill_net_write(c, trailer, sizeof trailer, NULL)) < 0)
    say("write error: %s", seed_conn_error(c, "write", err));
  else
    say("no deadline: write the total as an 8-byte trailer");
  rill_net_conn_free(c);
  say("close");
}

int main(int argc, char **argv) {
  seed_parse(argc, argv, "127.0.0.1:8896");
  return seed_run(run);
}
