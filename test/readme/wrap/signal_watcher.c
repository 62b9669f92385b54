/* Harness for docs/graceful-shutdown.md's first fragment: the server
 * structure it passes to its signal callback. */
#include <rill.h>
#include <signal.h>

struct server {
  rill_listener *listener;
  rill_signal *sigterm;
};

static void on_signal(rill_signal *sig, int signum, void *arg) {
  struct server *server = arg;
  rill_listener_free(server->listener);
}

int main(void) {
  rill_base *base;
  struct server server = {0};
  if (rill_base_new(NULL, &base) < 0)
    return 1;
@FRAGMENT@
  rill_signal_free(server.sigterm);
  return rill_base_free(base) < 0;
}
