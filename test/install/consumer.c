/* A tiny program built against an installed rill: a base, a timer, a run. */
#include <stdio.h>

#include <rill.h>

static void on_timer(rill_timer *timer, void *arg) {
  (void)timer;
  ++*(int *)arg;
}

int main(void) {
  rill_base *base = NULL;
  rill_timer *timer = NULL;
  int fired = 0, rc;

  if (rill_version() != ((RILL_VERSION_MAJOR << 16) | (RILL_VERSION_MINOR << 8) |
                         RILL_VERSION_PATCH)) {
    fprintf(stderr, "header version %s, library %s\n", RILL_VERSION_STRING,
            rill_version_string());
    return 1;
  }
  rc = rill_base_new(NULL, &base);
  if (rc != 0) {
    fprintf(stderr, "rill_base_new: %s\n", rill_strerror(rc));
    return 1;
  }
  if (rill_timer_new(base, on_timer, &fired, &timer) != 0 ||
      rill_timer_start(timer, 10 * RILL_MSEC, 0) != 0) {
    fprintf(stderr, "timer setup failed\n");
    return 1;
  }
  rc = rill_base_run(base, RILL_RUN_DEFAULT);
  printf("rill %s on %s: timer fired %d time(s)\n", rill_version_string(),
         rill_base_backend(base), fired);
  rill_timer_free(timer);
  if (rc != 0 || fired != 1 || rill_base_free(base) != 0) {
    fprintf(stderr, "run returned %d, timer fired %d time(s)\n", rc, fired);
    return 1;
  }
  return 0;
}
