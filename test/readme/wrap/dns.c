/* Harness for the README's "Dialing host names" fragment. The fragment
 * names its DNS server, 127.0.0.1:5353, so it never asks the system's
 * resolver: nothing there knows example.com (or nothing listens), and
 * each request must end with exactly one callback, whatever its status,
 * within the dial's timeout. */
#include <rill.h>
#include <stdio.h>
#include <sys/socket.h>

static int dials, lookups;

static void on_dial(rill_dialer *dialer, rill_conn *conn, int status, void *arg) {
  dials++;
  if (status == 0)
    rill_conn_close(conn);
}

static void on_resolved(rill_dns_query *query, int status, const rill_dns_result *result,
                        void *arg) {
  lookups++;
}

int main(void) {
  rill_base *base;
@FRAGMENT@
  /* Built without c-ares, both calls fail at once, without a callback. */
  int expected = rill_dns_version() != NULL;
  rill_base_run(base, RILL_RUN_DEFAULT);
  if (dials != expected || lookups != expected) {
    fprintf(stderr, "%d dial and %d lookup callbacks, expected %d each\n", dials, lookups,
            expected);
    return 1;
  }
  return rill_base_free(base) < 0;
}
