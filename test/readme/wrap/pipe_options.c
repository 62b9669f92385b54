/* Harness for docs/proxying.md's pipe options: the two connections and
 * the completion callback of the example before it. */
#include <rill.h>

static void on_piped(rill_pipe *pipe, const rill_pipe_result *r, void *arg) {}

static void proxy(rill_conn *client, rill_conn *upstream) {
@FRAGMENT@
}

int main(void) {
  (void)proxy;
  return 0;
}
