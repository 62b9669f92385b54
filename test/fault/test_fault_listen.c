/* listen() fails after bind() (injected): rill_listen() returns the error,
 * closes its socket, and a Unix listener removes the socket file it had
 * just created, so the next attempt on the path is not blocked by it.
 *
 * Linked with --wrap=listen: the wrapper injects only while armed. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

int __real_listen(int fd, int backlog);

static struct {
  int armed;
  int err;
  int calls; /* listen() calls failed while armed */
} g_listen;

int __wrap_listen(int fd, int backlog) {
  if (g_listen.armed) {
    g_listen.calls++;
    errno = g_listen.err;
    return -1;
  }
  return __real_listen(fd, backlog);
}

static void on_accept_ignore(rill_listener *l, rill_conn *c, int status, void *arg) {
  (void)l;
  (void)status;
  (void)arg;
  if (c)
    rill_conn_abort(c);
}

static int listen_failing(rill_base *base, const char *network, const char *address, int err) {
  rill_listener *l = NULL;
  int rc;
  memset(&g_listen, 0, sizeof g_listen);
  g_listen.armed = 1;
  g_listen.err = err;
  rc = rill_listen(base, network, address, NULL, on_accept_ignore, NULL, &l);
  g_listen.armed = 0;
  assert_int_equal(g_listen.calls, 1);
  return rc;
}

static void test_unix_listen_failure_removes_file(void **state) {
  rill_base *base = tu_base_new();
  rill_listener *l = NULL;
  struct stat st;
  char path[108];
  (void)state;
  snprintf(path, sizeof path, "/tmp/rill-listenfail-%d.sock", (int)getpid());
  unlink(path);
  assert_int_equal(listen_failing(base, "unix", path, EOPNOTSUPP), -EOPNOTSUPP);
  if (lstat(path, &st) == 0) {
    unlink(path);
    fail_msg("a failed listen() left %s behind", path);
  }
  /* The path is free again, and a listener that works removes its file at
   * close as before. */
  assert_int_equal(rill_listen(base, "unix", path, NULL, on_accept_ignore, NULL, &l), 0);
  assert_int_equal(lstat(path, &st), 0);
  rill_listener_free(l);
  assert_int_equal(lstat(path, &st), -1);
  tu_base_free(base);
}

static void test_tcp_listen_failure_reported(void **state) {
  rill_base *base = tu_base_new();
  (void)state;
  assert_int_equal(listen_failing(base, "tcp", "127.0.0.1:0", EADDRINUSE), RILL_EADDRINUSE);
  tu_base_free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_unix_listen_failure_removes_file, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_tcp_listen_failure_reported, tu_setup_fds,
                                      tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
