/* rw_client3 — sends "hello" (or its argument) and closes at once. Run
 * against rw_server3 (seed 001, "conn.Read" case 4). */
#include "seed.h"

static void run(void *arg) {
  const char *data = seed.nargs ? seed.args[0] : "hello";
  rill_net_conn *c;
  int err;
  (void)arg;
  if (!(c = seed_dial(NULL))) {
    seed_status = 1;
    return;
  }
  if ((err = rill_net_write(c, data, strlen(data), NULL)) < 0)
    say("write error: %s", seed_conn_error(c, "write", err));
  else
    say("write %d bytes: %s", (int)strlen(data), data);
  rill_net_conn_free(c);
  say("close");
}

int main(int argc, char **argv) {
  seed_parse(argc, argv, "127.0.0.1:8893");
  return seed_run(run);
}
