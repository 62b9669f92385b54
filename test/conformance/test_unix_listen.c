/* A Unix listener's socket file under hostile conditions (issue 8):
 * - unlink_stale may remove a file only when a probe connect proves nobody
 *   serves it; when the probe socket cannot even be made (EMFILE) the live
 *   server's file stays and rill_listen() fails with the probe's error;
 * - a listener whose setup fails after bind() removes the file it created
 *   (here: every allocation rill_listen makes fails in turn), and never a
 *   file it did not create.
 *
 * A program of its own: the failing allocator is process-global and must be
 * installed before any base exists. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"
#include "net_util.h"

#define LIMIT 10000

static void socket_path(char *path, size_t size, const char *what) {
  snprintf(path, size, "/tmp/rill-%s-%d.sock", what, (int)getpid());
  unlink(path);
}

static int file_exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

/* A blocking connect to the Unix socket at `path`: 0 or -errno. */
static int raw_unix_connect(const char *path, int *fd_out) {
  struct sockaddr_un un;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int rc;
  assert_true(fd >= 0);
  memset(&un, 0, sizeof un);
  un.sun_family = AF_UNIX;
  snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
  rc = connect(fd, (struct sockaddr *)&un, sizeof un) == 0 ? 0 : -errno;
  if (rc)
    close(fd);
  else
    *fd_out = fd;
  return rc;
}

static void on_accept_ignore(rill_listener *l, rill_conn *c, int status, void *arg) {
  (void)l;
  (void)status;
  (void)arg;
  if (c)
    rill_conn_abort(c);
}

/* While a server is live on the path, the process runs out of descriptors
 * so that only the new listener's own socket can be made, not the probe:
 * the live server's file must survive and keep serving. */
static void test_stale_probe_fails_keeps_live_file(void **state) {
  rill_base *base = tu_base_new();
  nu_server live;
  rill_listener *l = NULL;
  rill_socket_config opts;
  struct rlimit saved, tight;
  char path[108];
  int lowest, rc, client = -1;
  (void)state;
  socket_path(path, sizeof path, "probe");
  memset(&opts, 0, sizeof opts);
  opts.unlink_stale = 1;
  memset(&live, 0, sizeof live);
  assert_int_equal(nu_server_listen(base, &live, "unix", path, &opts), 0);

  /* Room for exactly one more descriptor: the lowest free number is the
   * last one allowed. */
  lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);
  assert_true(lowest >= 0);
  close(lowest);
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
  tight = saved;
  tight.rlim_cur = (rlim_t)lowest + 1;
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &tight), 0);
  rc = rill_listen(base, "unix", path, &opts, on_accept_ignore, NULL, &l);
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
  if (rc == 0) {
    rill_listener_free(l);
    fail_msg("rill_listen took over a live server's socket file");
  }
  assert_int_equal(rc, RILL_EMFILE);

  /* The live server still owns the path and accepts on it. */
  assert_true(file_exists(path));
  assert_int_equal(raw_unix_connect(path, &client), 0);
  nu_run_until_count(base, &live.accepted, 1, LIMIT);
  close(client);
  nu_server_close(&live);
  nu_settle(base);
  assert_false(file_exists(path));
  tu_base_free(base);
}

/* A file that is not a socket, or a socket somebody serves, is never
 * removed, with or without unlink_stale. */
static void test_foreign_files_stay(void **state) {
  rill_base *base = tu_base_new();
  rill_listener *l = NULL;
  rill_socket_config opts;
  char path[108];
  int fd;
  (void)state;
  socket_path(path, sizeof path, "foreign");
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(rill_listen(base, "unix", path, NULL, on_accept_ignore, NULL, &l), RILL_EADDRINUSE);
  assert_true(file_exists(path));
  memset(&opts, 0, sizeof opts);
  opts.unlink_stale = 1;
  assert_int_equal(rill_listen(base, "unix", path, &opts, on_accept_ignore, NULL, &l), RILL_EADDRINUSE);
  assert_true(file_exists(path));
  unlink(path);
  tu_base_free(base);
}

static void on_timer_unused(rill_timer *t, void *arg) {
  (void)t;
  (void)arg;
}

/* One round: every allocation rill_listen() makes fails in turn until it
 * succeeds. Each failure must leave no socket file behind. */
static void listen_with_failing_allocations(rill_base *base, const char *path) {
  rill_listener *l = NULL;
  int64_t n;
  int rc = -1;
  for (n = 0; n < 64; n++) {
    tu_alloc_fail_after(n);
    rc = rill_listen(base, "unix", path, NULL, on_accept_ignore, NULL, &l);
    tu_alloc_fail_after(-1);
    if (rc == 0)
      break;
    assert_int_equal(rc, RILL_ENOMEM);
    if (file_exists(path)) {
      unlink(path);
      fail_msg("allocation %d failed and left the socket file behind", (int)n);
    }
  }
  assert_int_equal(rc, 0);
  assert_true(file_exists(path));
  rill_listener_free(l);
  assert_false(file_exists(path));
}

/* Handles share one pool per base that grows by chunks, so the listener's
 * watcher (created after bind()) needs an allocation only when the pool is
 * exactly full: grow the pool one timer at a time so that some round meets
 * that failure after bind(). */
#define MAX_TIMERS 300
static void test_failure_after_bind_removes_file(void **state) {
  rill_base *base = tu_base_new();
  rill_timer *timers[MAX_TIMERS];
  char path[108];
  int k;
  (void)state;
  socket_path(path, sizeof path, "afterbind");
  for (k = 0; k < MAX_TIMERS; k++) {
    listen_with_failing_allocations(base, path);
    assert_int_equal(rill_timer_new(base, on_timer_unused, NULL, &timers[k]), 0);
  }
  for (k = 0; k < MAX_TIMERS; k++)
    rill_timer_free(timers[k]);
  tu_base_free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_stale_probe_fails_keeps_live_file, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_foreign_files_stay, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_failure_after_bind_removes_file, tu_setup_fds,
                                      tu_teardown_fds),
  };
  if (rill_set_allocator(tu_malloc, tu_realloc, tu_free) != 0) {
    fprintf(stderr, "rill_set_allocator failed\n");
    return 1;
  }
  return cmocka_run_group_tests(tests, NULL, NULL);
}
