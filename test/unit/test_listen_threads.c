/* Two threads, each with its own base, listen on "tcp" ":0" at the same
 * time. Choosing the wildcard family asks whether IPv6 is available, and
 * that answer is cached process-wide: the cache must be race-free (run
 * under ThreadSanitizer with the `threaded` label). This must be the
 * first listen of the process, so the program holds nothing else. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>

#include "rill.h"
#include "test_util.h"

typedef struct listen_job {
  pthread_barrier_t *start;
  int rc;
  int port;
} listen_job;

static void on_accept_none(rill_listener *l, rill_conn *c, int status, void *arg) {
  (void)l;
  (void)status;
  (void)arg;
  if (c)
    rill_conn_abort(c);
}

static void *listen_thread(void *arg) {
  listen_job *job = arg;
  rill_base *base;
  rill_listener *l = NULL;
  if (rill_base_new(NULL, &base) != 0) {
    job->rc = -1;
    return NULL;
  }
  pthread_barrier_wait(job->start);
  job->rc = rill_listen(base, "tcp", ":0", NULL, on_accept_none, NULL, &l);
  if (job->rc == 0) {
    job->port = rill_listener_port(l);
    rill_listener_free(l);
  }
  rill_base_free(base);
  return NULL;
}

static void test_wildcard_listen_from_two_threads(void **state) {
  pthread_barrier_t start;
  pthread_t threads[2];
  listen_job jobs[2];
  int i;
  (void)state;
  assert_int_equal(pthread_barrier_init(&start, NULL, 2), 0);
  for (i = 0; i < 2; i++) {
    jobs[i].start = &start;
    jobs[i].rc = 1;
    jobs[i].port = 0;
    assert_int_equal(pthread_create(&threads[i], NULL, listen_thread, &jobs[i]), 0);
  }
  for (i = 0; i < 2; i++)
    assert_int_equal(pthread_join(threads[i], NULL), 0);
  pthread_barrier_destroy(&start);
  for (i = 0; i < 2; i++) {
    assert_int_equal(jobs[i].rc, 0);
    assert_true(jobs[i].port > 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wildcard_listen_from_two_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
