/* rw_client2 — sends each argument after a pause (seed 001, "conn.Read"
 * cases 2 and 3). Default: "hi" (fewer bytes than the server's 10-byte
 * buffer) then "abcdefghij12345" (more). Run against rw_server2. */
#include "seed.h"

static void run(void *arg) {
  static char *defaults[] = {"hi", "abcdefghij12345"};
  char **data = seed.nargs ? seed.args : defaults;
  int i, count = seed.nargs ? seed.nargs : 2, err;
  rill_net_conn *c;
  (void)arg;
  if (!(c = seed_dial(NULL))) {
    seed_status = 1;
    return;
  }
  for (i = 0; i < count; i++) {
    size_t len = strlen(data[i]);
    rill_sleep(seed_ms(2000, 100) * RILL_MSEC);
    if ((err = rill_net_write(c, data[i], len, NULL)) < 0) {
      say("write error: %s", seed_conn_error(c, "write", err));
      break;
    }
    say("write %d bytes: %s", (int)len, data[i]);
  }
  rill_net_conn_free(c);
  say("close");
}

int main(int argc, char **argv) {
  seed_parse(argc, argv, "127.0.0.1:8892");
  return seed_run(run);
}
