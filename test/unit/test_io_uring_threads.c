/* A base on io_uring that moves between threads. With SINGLE_ISSUER the
 * kernel ties a ring to the one task that submits to it; a base may be
 * created on one thread, run on another, then on a third, and freed on the
 * first (one thread at a time, as rill_base allows). The backend gives
 * the ring to the first thread that waits and, when another thread meets
 * -EEXIST, trades it for a shared one with every watcher armed again.
 * Without that, the second run below returns -EEXIST, and the free on the
 * main thread leaves the descriptor open in the kernel. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

static int g_reads;
static void on_read(rill_io *io, int fd, unsigned events, void *arg) {
  char buf[16];
  (void)io;
  (void)events;
  (void)arg;
  while (read(fd, buf, sizeof buf) > 0) {
  }
  g_reads++;
}

static void on_guard(rill_timer *t, void *arg) {
  (void)t;
  rill_base_stop((rill_base *)arg);
}

struct run_job {
  rill_base *base;
  int write_fd;
  int result;    /* of the last rill_base_run */
  int reads;     /* g_reads after the runs */
};

/* Makes the pipe readable and runs ONCE until the watcher has read it; a
 * guard timer stops a run that would otherwise wait forever. */
static void *run_on_thread(void *arg) {
  struct run_job *job = arg;
  int before = g_reads;
  int i;
  if (write(job->write_fd, "x", 1) != 1) {
    job->result = -1;
    return NULL;
  }
  for (i = 0; i < 20 && g_reads == before; i++) {
    job->result = rill_base_run(job->base, RILL_RUN_ONCE);
    if (job->result < 0) break;
  }
  job->reads = g_reads;
  return NULL;
}

static void run_job_on_new_thread(struct run_job *job) {
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, run_on_thread, job), 0);
  assert_int_equal(pthread_join(th, NULL), 0);
}

static void test_base_moves_between_threads(void **state) {
  rill_base *base = NULL;
  rill_io *io;
  rill_timer *guard;
  struct run_job job;
  int fds[2];
  int sv[2];
  rill_io *sock_io;
  struct pollfd pfd;
  char c;
  (void)state;

  base = tu_uring_base();
  if (!base)
    skip();
  tu_pipe(fds);
  tu_socketpair(sv);
  g_reads = 0;
  assert_int_equal(rill_io_new(base, fds[0], on_read, NULL, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(rill_io_new(base, sv[0], on_read, NULL, &sock_io), 0);
  assert_int_equal(rill_io_start(sock_io, RILL_READ), 0);
  assert_int_equal(rill_timer_new(base, on_guard, base, &guard), 0);
  assert_int_equal(rill_timer_start(guard, 10000 * RILL_MSEC, 0), 0);

  memset(&job, 0, sizeof job);
  job.base = base;
  job.write_fd = fds[1];
  run_job_on_new_thread(&job); /* created on this thread, run on another */
  assert_true(job.result >= 0);
  assert_int_equal(job.reads, 1);
  run_job_on_new_thread(&job); /* and on a third */
  assert_true(job.result >= 0);
  assert_int_equal(job.reads, 2);

  /* Freed here, with the socket's poll in flight: the descriptor is
   * released (the peer sees the end of the stream). Not at once: the
   * poll's cancellation completes as task work of the thread that armed
   * it, which has exited, so the kernel runs it from a worker a tick
   * later (docs/io_uring.md). */
  rill_io_free(sock_io);
  close(sv[0]);
  pfd.fd = sv[1];
  pfd.events = POLLIN;
  assert_int_equal(poll(&pfd, 1, 10000), 1);
  assert_int_equal(recv(sv[1], &c, 1, MSG_DONTWAIT), 0);

  /* And this thread can run it too. */
  run_on_thread(&job);
  assert_true(job.result >= 0);
  assert_int_equal(job.reads, 3);

  rill_io_free(io);
  rill_timer_free(guard);
  close(fds[0]);
  close(fds[1]);
  close(sv[1]);
  tu_base_free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_base_moves_between_threads, tu_setup_fds,
                                      tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
