/* make demo: the base at work. A repeating timer ticks, a pipe watcher
 * reports what a second thread writes, that thread also posts a function to
 * the base's thread, and a SIGINT stops the whole thing early. The program
 * ends by itself once the ticks are done. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rill.h>

struct demo {
  rill_base *base;
  rill_timer *tick;
  rill_io *pipe_watch;
  rill_signal *sigint;
  int pipe_fds[2];
  int ticks;
  uint64_t start;
};

static double now_s(const struct demo *d) { return (double)(rill_time_now() - d->start) / RILL_SEC; }

static void finish(struct demo *d) {
  rill_timer_free(d->tick);
  rill_io_free(d->pipe_watch);
  rill_signal_free(d->sigint);
  d->tick = NULL;
  d->pipe_watch = NULL;
  d->sigint = NULL;
}

static void on_tick(rill_timer *t, void *arg) {
  struct demo *d = arg;
  (void)t;
  printf("[%6.3f] timer: tick %d\n", now_s(d), ++d->ticks);
  if (d->ticks == 5) {
    printf("[%6.3f] timer: done, freeing every handle\n", now_s(d));
    finish(d);
  }
}

static void on_pipe(rill_io *io, int fd, unsigned events, void *arg) {
  struct demo *d = arg;
  char buf[128];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  (void)io;
  (void)events;
  if (n > 0) {
    buf[n] = '\0';
    printf("[%6.3f] pipe:  read \"%s\"\n", now_s(d), buf);
  }
}

static void on_post(rill_base *base, void *arg) {
  struct demo *d = arg;
  (void)base;
  printf("[%6.3f] post:  running on the base's thread, posted from the worker\n", now_s(d));
}

static void on_sigint(rill_signal *sig, int signum, void *arg) {
  struct demo *d = arg;
  (void)sig;
  printf("[%6.3f] signal %d: shutting down\n", now_s(d), signum);
  finish(d);
}

static void *worker(void *arg) {
  struct demo *d = arg;
  const char *msg = "hello from another thread";
  usleep(120 * 1000);
  if (write(d->pipe_fds[1], msg, strlen(msg)) < 0)
    perror("write");
  rill_base_post(d->base, on_post, d);
  return NULL;
}

/* A demo has nothing sensible to do when setting up fails: say why and
 * stop. A real program would also free what it already made. */
static void must(int err, const char *what) {
  if (err < 0) {
    fprintf(stderr, "demo: %s: %s\n", what, rill_strerror(err));
    exit(1);
  }
}

int main(void) {
  struct demo d = {0};
  pthread_t thread;
  int err;

  setvbuf(stdout, NULL, _IOLBF, 0);
  if ((err = rill_base_new(NULL, &d.base)) < 0) {
    fprintf(stderr, "rill_base_new: %s\n", rill_strerror(err));
    return 1;
  }
  d.start = rill_time_now();
  printf("rill %s on the %s backend\n", rill_version_string(), rill_base_backend(d.base));
  if (pipe(d.pipe_fds) < 0)
    return 1;
  must(rill_timer_new(d.base, on_tick, &d, &d.tick), "rill_timer_new");
  must(rill_timer_start(d.tick, 50 * RILL_MSEC, 50 * RILL_MSEC), "rill_timer_start");
  must(rill_io_new(d.base, d.pipe_fds[0], on_pipe, &d, &d.pipe_watch), "rill_io_new");
  must(rill_io_start(d.pipe_watch, RILL_READ), "rill_io_start");
  must(rill_signal_new(d.base, on_sigint, &d, &d.sigint), "rill_signal_new");
  must(rill_signal_start(d.sigint, SIGINT), "rill_signal_start");
  pthread_create(&thread, NULL, worker, &d);

  rill_base_run(d.base, RILL_RUN_DEFAULT);

  pthread_join(thread, NULL);
  /* The worker's post may still be queued; rill_base_free runs it. */
  err = rill_base_free(d.base);
  printf("loop ended, rill_base_free: %s\n", rill_strerror(err));
  close(d.pipe_fds[0]);
  close(d.pipe_fds[1]);
  return err == 0 ? 0 : 1;
}
