/* Harness for docs/proxying.md's water marks: a base and an accept
 * callback for rill_listen(). */
#include <rill.h>

static void on_accept(rill_listener *l, rill_conn *conn, int status, void *arg) {}

int main(void) {
  rill_base *base;
  rill_listener *listener;
  if (rill_base_new(NULL, &base) < 0)
    return 1;
@FRAGMENT@
  rill_listener_free(listener);
  rill_base_run(base, RILL_RUN_DEFAULT);
  return rill_base_free(base) < 0;
}
