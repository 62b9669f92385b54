/* rw_server1 — reading a connection that has no data yet (seed 001,
 * "conn.Read" case 1; docs/go-model.md G12): the read waits, parked, using no CPU,
 * until rw_client1 sends; then the read returns what came; then EOF. */
#include <sys/resource.h>

#include "seed.h"

static uint64_t cpu_ms(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000u +
         (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000u;
}

static void run(void *arg) {
  rill_net_listener *l;
  rill_net_conn *c;
  char buf[10];
  ssize_t n;
  uint64_t t0, cpu0, waited, cpu, client_delay = seed_ms(2000, 200);
  (void)arg;
  if (!(l = seed_listen(NULL)) || !(c = seed_accept_one(l))) {
    seed_status = 1;
    rill_net_listener_free(l);
    return;
  }
  rill_net_listener_free(l);
  say("start to read from conn");
  t0 = seed_clock_ms();
  cpu0 = cpu_ms();
  n = rill_net_read(c, buf, sizeof buf);
  waited = seed_clock_ms() - t0;
  cpu = cpu_ms() - cpu0;
  if (n < 0) {
    say("conn read error: %s", seed_conn_error(c, "read", (int)n));
    seed_status = 1;
  } else {
    say("read %d bytes, content is %.*s", (int)n, (int)n, buf);
    /* Half the client's delay: the accept itself took part of it. */
    if (waited >= client_delay / 2)
      say("the read waited for the data");
    if (cpu * 10 < waited)
      say("and used (almost) no CPU while it waited");
    say("start to read from conn");
    n = rill_net_read(c, buf, sizeof buf);
    if (n < 0)
      say("conn read error: %s", seed_conn_error(c, "read", (int)n));
    else
      say("read %d bytes, content is %.*s", (int)n, (int)n, buf);
  }
  rill_net_conn_free(c);
}

int main(int argc, char **argv) {
  seed_parse(argc, argv, "127.0.0.1:8891");
  return seed_run(run);
}
