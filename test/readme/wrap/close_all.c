/* Harness for docs/graceful-shutdown.md's "close every connection": the
 * server's list of connections, as an array. */
#include <rill.h>
#include <stddef.h>
#include <stdint.h>

static rill_conn *conns[16];
static size_t n_conns;

int main(void) {
@FRAGMENT@
  return 0;
}
