/* The io_uring backend's own behaviour (docs/io_uring.md): the fallback to
 * epoll when the kernel refuses io_uring, and polls in flight that a stop
 * or a free must cancel. The rest of its contract is the whole suite's,
 * which runs on io_uring as on every backend.
 *
 * The fallback is tested for real: a child process installs a seccomp
 * filter that makes io_uring_setup fail with EPERM, as Docker's default
 * profile does, and then asks for io_uring. The child never uses cmocka;
 * it reports a failing check through its exit status. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

#define LIMIT 5000
#define HANG_GUARD_MS 20000

/* io_uring_setup fails with EPERM from now on, in this process and its
 * children; everything else is allowed. The syscall number is the same on
 * every architecture (new system calls share one table since Linux 5.1). */
static int refuse_io_uring_setup(void) {
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog;
  prog.len = (unsigned short)(sizeof filter / sizeof filter[0]);
  prog.filter = filter;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
  return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

/* Whether this kernel lets this process set up a ring at all. */
static int kernel_allows_io_uring(void) {
  unsigned char params[120]; /* struct io_uring_params, zeroed */
  long fd;
  memset(params, 0, sizeof params);
  fd = syscall(SYS_io_uring_setup, 1, params);
  if (fd < 0) return 0;
  close((int)fd);
  return 1;
}

static int exit_status(pid_t pid) {
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
  if (WIFSIGNALED(status)) {
    fprintf(stderr, "child killed by signal %d\n", WTERMSIG(status));
    return -1;
  }
  return WEXITSTATUS(status);
}

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

static int g_fired;
static void on_timer(rill_timer *t, void *arg) {
  (void)t;
  (void)arg;
  g_fired++;
}

/* Runs ONCE until *counter reaches want, in the child; 0 on success. */
static int child_run_until(rill_base *base, const int *counter, int want) {
  uint64_t deadline = tu_now_ms() + HANG_GUARD_MS;
  while (*counter < want) {
    if (tu_run(base, RILL_RUN_ONCE, LIMIT) < 0 || tu_run_timed_out() || tu_now_ms() > deadline)
      return -1;
  }
  return 0;
}

/* In a child refused io_uring: both ways of asking for it give a working
 * epoll base, and rill_base_backend() says so. */
static void child_refused(void) {
  unsigned char params[120];
  rill_base_config cfg;
  rill_base *base = NULL;
  rill_io *io = NULL;
  rill_timer *timer = NULL;
  int fds[2];

  CHILD_CHECK(refuse_io_uring_setup() == 0);
  memset(params, 0, sizeof params);
  errno = 0;
  CHILD_CHECK(syscall(SYS_io_uring_setup, 1, params) == -1 && errno == EPERM);

  memset(&cfg, 0, sizeof cfg);
  cfg.backend = "io_uring";
  CHILD_CHECK(rill_base_new(&cfg, &base) == 0);
  CHILD_CHECK(strcmp(rill_base_backend(base), "epoll") == 0);
  CHILD_CHECK(rill_base_free(base) == 0);

  CHILD_CHECK(setenv("RILL_BACKEND", "io_uring", 1) == 0);
  base = NULL;
  CHILD_CHECK(rill_base_new(NULL, &base) == 0);
  CHILD_CHECK(strcmp(rill_base_backend(base), "epoll") == 0);

  /* And it works: a pipe watcher and a timer fire. */
  CHILD_CHECK(pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
  CHILD_CHECK(rill_io_new(base, fds[0], on_read, NULL, &io) == 0);
  CHILD_CHECK(rill_io_start(io, RILL_READ) == 0);
  CHILD_CHECK(rill_timer_new(base, on_timer, NULL, &timer) == 0);
  CHILD_CHECK(rill_timer_start(timer, 5 * RILL_MSEC, 0) == 0);
  CHILD_CHECK(write(fds[1], "x", 1) == 1);
  CHILD_CHECK(child_run_until(base, &g_reads, 1) == 0);
  CHILD_CHECK(child_run_until(base, &g_fired, 1) == 0);
  rill_io_free(io);
  rill_timer_free(timer);
  close(fds[0]);
  close(fds[1]);
  CHILD_CHECK(rill_base_free(base) == 0);
  _exit(0);
}

static void test_refused_falls_back_to_epoll(void **state) {
  pid_t pid;
  (void)state;
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) child_refused();
  assert_int_equal(exit_status(pid), 0);
}

/* Where the kernel allows it, io_uring is what runs and what is named. */
static rill_base *uring_base_or_skip(void) {
  rill_base *base = tu_uring_base();
  if (!base)
    assert_false(kernel_allows_io_uring());
  return base;
}

static void test_used_where_allowed(void **state) {
  rill_base *base;
  (void)state;
  if (!kernel_allows_io_uring()) skip();
  base = uring_base_or_skip();
  assert_non_null(base);
  tu_base_free(base);
}

/* A watcher stopped while its poll is in flight is not called when the
 * poll completes, and is called again once restarted. */
static void test_stopped_in_flight_never_reports(void **state) {
  rill_base *base = uring_base_or_skip();
  rill_io *io;
  int sv[2];
  int i;
  (void)state;
  if (!base) skip();
  tu_socketpair(sv);
  g_reads = 0;
  assert_int_equal(rill_io_new(base, sv[0], on_read, NULL, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, LIMIT), 1); /* the poll is armed */
  assert_int_equal(rill_io_stop(io), 0);
  tu_write_byte(sv[1]);
  for (i = 0; i < 5; i++) TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
  assert_int_equal(g_reads, 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  for (i = 0; i < 100 && g_reads == 0; i++) TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_int_equal(g_reads, 1);
  rill_io_free(io);
  close(sv[0]);
  close(sv[1]);
  tu_base_free(base);
}

/* A watcher freed while its poll is in flight, and its descriptor closed:
 * the poll no longer holds the file (the peer sees the end of the stream
 * at once, with no loop iteration in between), the readiness that came
 * meanwhile reaches nobody, and a new watcher on the same number sees only
 * its own file. */
static void test_freed_in_flight_releases_file(void **state) {
  rill_base *base = uring_base_or_skip();
  rill_io *io;
  rill_io *io2;
  int sv[2];
  int fds[2];
  char c;
  int number;
  int i;
  (void)state;
  if (!base) skip();
  tu_socketpair(sv);
  g_reads = 0;
  assert_int_equal(rill_io_new(base, sv[0], on_read, NULL, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, LIMIT), 1);
  tu_write_byte(sv[1]); /* the poll completes, not yet reaped */
  number = sv[0];
  rill_io_free(io);
  close(sv[0]);
  /* Closed: the unread byte makes it a reset. Still open: EAGAIN. */
  errno = 0;
  assert_int_equal(recv(sv[1], &c, 1, MSG_DONTWAIT), -1);
  assert_int_equal(errno, ECONNRESET);

  /* Another file at the same number, not readable. */
  tu_pipe(fds);
  if (fds[0] != number) {
    assert_int_equal(dup2(fds[0], number), number);
    close(fds[0]);
    fds[0] = number;
  }
  assert_int_equal(rill_io_new(base, fds[0], on_read, NULL, &io2), 0);
  assert_int_equal(rill_io_start(io2, RILL_READ), 0);
  for (i = 0; i < 5; i++) TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
  assert_int_equal(g_reads, 0);
  tu_write_byte(fds[1]);
  for (i = 0; i < 100 && g_reads == 0; i++) TU_RUN(base, RILL_RUN_ONCE, LIMIT);
  assert_int_equal(g_reads, 1);
  rill_io_free(io2);
  close(fds[0]);
  close(fds[1]);
  close(sv[1]);
  tu_base_free(base);
}

/* An interest change while a poll is in flight replaces it: the new
 * direction is reported, and a write-ready socket stays reported while
 * watched (level-triggered) and not after. */
static int g_writes;
static void on_write(rill_io *io, int fd, unsigned events, void *arg) {
  (void)fd;
  (void)arg;
  if (events & RILL_WRITE) g_writes++;
  if (g_writes == 3) rill_io_start(io, RILL_READ);
}

static void test_interest_change_in_flight(void **state) {
  rill_base *base = uring_base_or_skip();
  rill_io *io;
  int sv[2];
  int i;
  (void)state;
  if (!base) skip();
  tu_socketpair(sv);
  g_writes = 0;
  assert_int_equal(rill_io_new(base, sv[0], on_write, NULL, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, LIMIT), 1); /* READ in flight */
  assert_int_equal(rill_io_start(io, RILL_READ | RILL_WRITE), 0);
  for (i = 0; i < 10; i++) TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
  assert_int_equal(g_writes, 3);
  rill_io_free(io);
  close(sv[0]);
  close(sv[1]);
  tu_base_free(base);
}

/* More descriptors ready at once than the completion queue holds (4096)
 * and than one wait returns (1024), and more polls to arm than the
 * submission queue holds (256): every watcher is reported exactly once per
 * byte, twice over (so every poll was armed again). On a ring without
 * DEFER_TASKRUN the completions overflow the queue and the kernel keeps
 * the rest; with it, the kernel posts a few dozen per wait (about 40 per
 * iteration here, where epoll hands out 1024). */
#define MANY 5000
static int g_many_reads[MANY];
static void on_many(rill_io *io, int fd, unsigned events, void *arg) {
  char c;
  (void)io;
  (void)events;
  while (read(fd, &c, 1) == 1) {
  }
  g_many_reads[(intptr_t)arg]++;
}

static void test_more_ready_than_the_rings_hold(void **state) {
  rill_base *base = uring_base_or_skip();
  static int fds[MANY][2];
  static rill_io *ios[MANY];
  struct rlimit rl;
  int n = MANY;
  int i, round, pass;
  (void)state;
  if (!base) skip();
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      (rlim_t)(2 * n + 64) > rl.rlim_cur)
    n = (int)((rl.rlim_cur - 64) / 2);
  memset(g_many_reads, 0, sizeof g_many_reads);
  for (i = 0; i < n; i++) {
    tu_pipe(fds[i]);
    assert_int_equal(rill_io_new(base, fds[i][0], on_many, (void *)(intptr_t)i, &ios[i]), 0);
    assert_int_equal(rill_io_start(ios[i], RILL_READ), 0);
  }
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, LIMIT), 1); /* every poll armed */
  for (round = 1; round <= 2; round++) {
    int done = 0;
    for (i = 0; i < n; i++) tu_write_byte(fds[i][1]);
    for (pass = 0; pass < 200 && done < n; pass++) {
      TU_RUN(base, RILL_RUN_ONCE, LIMIT);
      for (done = 0, i = 0; i < n; i++) done += g_many_reads[i] >= round;
    }
    for (i = 0; i < 3; i++) TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
    for (i = 0; i < n; i++) {
      if (g_many_reads[i] != round) fprintf(stderr, "watcher %d: %d reports\n", i, g_many_reads[i]);
      assert_int_equal(g_many_reads[i], round);
    }
  }
  for (i = 0; i < n; i++) {
    rill_io_free(ios[i]);
    close(fds[i][0]);
    close(fds[i][1]);
  }
  tu_base_free(base);
}

#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_fds, tu_teardown_fds)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_refused_falls_back_to_epoll),
      T(test_used_where_allowed),
      T(test_stopped_in_flight_never_reports),
      T(test_freed_in_flight_releases_file),
      T(test_interest_change_in_flight),
      T(test_more_ready_than_the_rings_hold),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
