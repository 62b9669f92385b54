/* rill_base_reinit: after fork(), parent and child both keep serving.
 *
 * Each test forks once. The child never uses cmocka (a failed assertion
 * there would go on running the parent's remaining tests in the child): it
 * checks with CHILD_CHECK, which ends it with the failing line as its exit
 * status, and it reports progress to the parent over a socketpair. The
 * parent asserts, and finally that the child exited with status 0. Every
 * wait is bounded by a generous limit that only guards against hangs. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

#define LIMIT 5000
#define HANG_GUARD_MS 20000

/* Reads one byte from a blocking-or-not descriptor within the hang guard;
 * -1 on timeout, error or end of file. */
static int read_byte(int fd) {
  struct pollfd p;
  unsigned char c;
  p.fd = fd;
  p.events = POLLIN;
  for (;;) {
    int n = poll(&p, 1, HANG_GUARD_MS);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    n = (int)read(fd, &c, 1);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    return n == 1 ? c : -1;
  }
}

static int write_byte(int fd, unsigned char c) {
  ssize_t n;
  do {
    n = write(fd, &c, 1);
  } while (n < 0 && errno == EINTR);
  return n == 1 ? 0 : -1;
}

/* The child's exit status: 0 when it exited normally with 0. */
static int wait_child(pid_t pid) {
  int status = 0;
  uint64_t deadline = tu_now_ms() + HANG_GUARD_MS;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return -1;
    if (tu_now_ms() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      fprintf(stderr, "child hung: killed\n");
      return -1;
    }
    tu_sleep_ms(5);
  }
  if (!WIFEXITED(status)) {
    fprintf(stderr, "child died by signal %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return -1;
  }
  return WEXITSTATUS(status);
}

/* A non-blocking TCP listener on 127.0.0.1, any port. */
static int listen_loopback(struct sockaddr_in *addr) {
  socklen_t len = sizeof *addr;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  memset(addr, 0, sizeof *addr);
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)addr, sizeof *addr), 0);
  assert_int_equal(listen(fd, 16), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)addr, &len), 0);
  return fd;
}

/* A blocking client connected to `addr` (the listen backlog completes it). */
static int connect_loopback(const struct sockaddr_in *addr) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  assert_int_equal(connect(fd, (const struct sockaddr *)addr, sizeof *addr), 0);
  return fd;
}

/* The parent's service: accept one connection, greet it with 'P', close. */
static int g_accepted;
static void on_accept(rill_io *io, int fd, unsigned events, void *arg) {
  int c;
  (void)io;
  (void)events;
  (void)arg;
  while ((c = accept4(fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
    write_byte(c, 'P');
    close(c);
    g_accepted++;
  }
}

/* The child's service: answer every byte on its end of the socketpair
 * with 'C'. */
static int g_served;
static void on_request(rill_io *io, int fd, unsigned events, void *arg) {
  unsigned char buf[16];
  ssize_t n;
  (void)io;
  (void)events;
  (void)arg;
  while ((n = read(fd, buf, sizeof buf)) > 0) {
    ssize_t i;
    for (i = 0; i < n; i++) write_byte(fd, 'C');
    g_served += (int)n;
  }
}

static int g_ticks;
static void on_tick(rill_timer *t, void *arg) {
  (void)t;
  (void)arg;
  g_ticks++;
}

/* In the child: runs ONCE until *counter reaches want; 0 on success. */
static int child_run_until(rill_base *base, const int *counter, int want) {
  uint64_t deadline = tu_now_ms() + HANG_GUARD_MS;
  while (*counter < want) {
    if (tu_run(base, RILL_RUN_ONCE, LIMIT) < 0 || tu_run_timed_out() || tu_now_ms() > deadline)
      return -1;
  }
  return 0;
}

static void parent_run_until(rill_base *base, const int *counter, int want) {
  int i;
  for (i = 0; i < 1000 && *counter < want; i++) TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_true(*counter >= want);
}

/* The regression: without rill_base_reinit, the child's rill_io_free()
 * removed the listener from the epoll set it shares with the parent, and
 * the parent's watcher never fired again. */
static void test_parent_and_child_keep_serving(void **state) {
  rill_base *base = tu_base_new();
  struct sockaddr_in addr;
  int listener = listen_loopback(&addr);
  int ctl[2];
  rill_io *accept_io;
  rill_timer *timer;
  int client;
  pid_t pid;
  (void)state;

  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl), 0);
  assert_int_equal(rill_io_new(base, listener, on_accept, NULL, &accept_io), 0);
  assert_int_equal(rill_io_start(accept_io, RILL_READ), 0);
  assert_int_equal(rill_timer_new(base, on_tick, NULL, &timer), 0);
  assert_int_equal(rill_timer_start(timer, RILL_MSEC, RILL_MSEC), 0);

  /* Serve once before the fork: the registration is in the kernel now. */
  g_accepted = g_ticks = g_served = 0;
  client = connect_loopback(&addr);
  parent_run_until(base, &g_accepted, 1);
  assert_int_equal(read_byte(client), 'P');
  close(client);

  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    rill_io *request_io;
    int ticks;
    close(ctl[0]);
    CHILD_CHECK(rill_base_reinit(base) == 0);
    /* The child does not serve the listener: drop the watcher, close it. */
    rill_io_free(accept_io);
    close(listener);
    tu_nonblock(ctl[1]);
    CHILD_CHECK(rill_io_new(base, ctl[1], on_request, NULL, &request_io) == 0);
    CHILD_CHECK(rill_io_start(request_io, RILL_READ) == 0);
    CHILD_CHECK(write_byte(ctl[1], 'F') == 0);
    /* The inherited timer still runs, and the child serves its request. */
    ticks = g_ticks;
    CHILD_CHECK(child_run_until(base, &g_ticks, ticks + 2) == 0);
    CHILD_CHECK(child_run_until(base, &g_served, 1) == 0);
    rill_io_free(request_io);
    rill_timer_free(timer);
    CHILD_CHECK(rill_base_free(base) == 0);
    _exit(0);
  }

  close(ctl[1]);
  /* The child has freed its copy of the watcher and closed the listener. */
  assert_int_equal(read_byte(ctl[0]), 'F');

  /* The parent's watcher still fires. */
  client = connect_loopback(&addr);
  parent_run_until(base, &g_accepted, 2);
  assert_int_equal(read_byte(client), 'P');
  close(client);
  {
    int ticks = g_ticks;
    parent_run_until(base, &g_ticks, ticks + 2);
  }

  /* The child serves too. */
  assert_int_equal(write_byte(ctl[0], 'x'), 0);
  assert_int_equal(read_byte(ctl[0]), 'C');
  assert_int_equal(wait_child(pid), 0);

  /* And the parent still does, after the child is gone. */
  client = connect_loopback(&addr);
  parent_run_until(base, &g_accepted, 3);
  assert_int_equal(read_byte(client), 'P');
  close(client);

  close(ctl[0]);
  rill_io_free(accept_io);
  rill_timer_free(timer);
  close(listener);
  tu_base_free(base);
}

/* Posts: the wake-up descriptor must be the child's own too, and a function
 * posted before the fork runs in the child's copy of the queue. */
static int g_posted;
static void on_post(rill_base *base, void *arg) {
  (void)base;
  (void)arg;
  g_posted++;
}

static void test_posts_after_fork(void **state) {
  rill_base *base = tu_base_new();
  pid_t pid;
  (void)state;
  g_posted = 0;
  assert_int_equal(rill_base_post(base, on_post, NULL), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    CHILD_CHECK(rill_base_reinit(base) == 0);
    rill_base_ref(base);
    CHILD_CHECK(child_run_until(base, &g_posted, 1) == 0);
    CHILD_CHECK(rill_base_post(base, on_post, NULL) == 0);
    CHILD_CHECK(child_run_until(base, &g_posted, 2) == 0);
    rill_base_unref(base);
    CHILD_CHECK(rill_base_free(base) == 0);
    _exit(0);
  }
  assert_int_equal(wait_child(pid), 0);
  rill_base_ref(base);
  parent_run_until(base, &g_posted, 1);
  assert_int_equal(g_posted, 1);
  rill_base_unref(base);
  tu_base_free(base);
}

/* Signals: after reinit the child's watcher gets the child's signals, and a
 * signal the parent receives is never consumed by the child (the regression:
 * the child read the wake-up the parent's handler wrote to the descriptor
 * they shared, and the parent's watcher never ran). */
static int g_signals;
static void on_signal(rill_signal *sig, int signum, void *arg) {
  (void)sig;
  (void)arg;
  if (signum == SIGUSR1) g_signals++;
}

static void test_signal_after_fork(void **state) {
  rill_base *base = tu_base_new();
  rill_signal *sig;
  int ctl[2];
  pid_t pid;
  (void)state;
  g_signals = 0;
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl), 0);
  assert_int_equal(rill_signal_new(base, on_signal, NULL, &sig), 0);
  assert_int_equal(rill_signal_start(sig, SIGUSR1), 0);

  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int i;
    close(ctl[0]);
    CHILD_CHECK(rill_base_reinit(base) == 0);
    CHILD_CHECK(write_byte(ctl[1], 'R') == 0);
    /* The parent has raised SIGUSR1 in itself. */
    CHILD_CHECK(read_byte(ctl[1]) == 'S');
    for (i = 0; i < 5; i++) CHILD_CHECK(tu_run(base, RILL_RUN_NOWAIT, LIMIT) >= 0);
    CHILD_CHECK(g_signals == 0);
    /* The child's own signal reaches the child's watcher. */
    CHILD_CHECK(raise(SIGUSR1) == 0);
    CHILD_CHECK(child_run_until(base, &g_signals, 1) == 0);
    rill_signal_free(sig);
    CHILD_CHECK(rill_base_free(base) == 0);
    CHILD_CHECK(write_byte(ctl[1], 'D') == 0);
    _exit(0);
  }

  close(ctl[1]);
  assert_int_equal(read_byte(ctl[0]), 'R');
  assert_int_equal(raise(SIGUSR1), 0);
  assert_int_equal(write_byte(ctl[0], 'S'), 0);
  assert_int_equal(read_byte(ctl[0]), 'D');
  assert_int_equal(wait_child(pid), 0);
  parent_run_until(base, &g_signals, 1);
  assert_int_equal(g_signals, 1);

  close(ctl[0]);
  rill_signal_free(sig);
  tu_base_free(base);
}

static void test_bad_arguments(void **state) {
  (void)state;
  assert_int_equal(rill_base_reinit(NULL), RILL_EINVAL);
}

/* Reinit without a fork is allowed, from a callback too: the base keeps
 * working. */
static int g_reinit_result = 1;
static void reinit_from_callback(rill_timer *t, void *arg) {
  g_reinit_result = rill_base_reinit((rill_base *)arg);
  rill_timer_free(t);
}

static void test_reinit_in_place(void **state) {
  rill_base *base = tu_base_new();
  int sv[2];
  rill_io *io;
  (void)state;
  g_served = 0;
  tu_socketpair(sv);
  assert_int_equal(rill_io_new(base, sv[1], on_request, NULL, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(tu_run(base, RILL_RUN_NOWAIT, LIMIT), 1);
  assert_int_equal(rill_base_reinit(base), 0);
  assert_int_equal(write_byte(sv[0], 'x'), 0);
  parent_run_until(base, &g_served, 1);
  assert_int_equal(read_byte(sv[0]), 'C');
  {
    rill_timer *t;
    assert_int_equal(rill_timer_new(base, reinit_from_callback, base, &t), 0);
    assert_int_equal(rill_timer_start(t, 0, 0), 0);
    assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, LIMIT), 1);
    assert_int_equal(g_reinit_result, 0);
  }
  assert_int_equal(write_byte(sv[0], 'y'), 0);
  parent_run_until(base, &g_served, 2);
  assert_int_equal(read_byte(sv[0]), 'C');
  rill_io_free(io);
  close(sv[0]);
  close(sv[1]);
  tu_base_free(base);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_fds, tu_teardown_fds)
  const struct CMUnitTest tests[] = {
      T(test_parent_and_child_keep_serving),
      T(test_posts_after_fork),
      T(test_signal_after_fork),
      T(test_bad_arguments),
      T(test_reinit_in_place),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
