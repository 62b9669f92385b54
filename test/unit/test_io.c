/* rill_io: readiness, level triggering, interest changes, stop/free from
 * callbacks, stale events, descriptor reuse, argument checks.
 *
 * Callbacks only record; assertions run after rill_base_run() returned. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"

#define LIMIT 3000

struct rec {
  int calls;
  unsigned events[16];
  int fds[16];
  rill_io *ios[16];
  void *self;
  /* Behaviour switches. */
  int stop_in_cb;
  int free_in_cb;
  int restart_in_cb;      /* stop + start(restart_mask) */
  unsigned restart_mask;
  int drain_in_cb;
};

static void rec_cb(rill_io *io, int fd, unsigned events, void *arg) {
  struct rec *r = (struct rec *)arg;
  if (r->calls < 16) {
    r->events[r->calls] = events;
    r->fds[r->calls] = fd;
    r->ios[r->calls] = io;
  }
  r->calls++;
  r->self = arg;
  if (r->drain_in_cb) tu_drain(fd);
  if (r->restart_in_cb) {
    rill_io_stop(io);
    rill_io_start(io, r->restart_mask);
  }
  if (r->stop_in_cb) rill_io_stop(io);
  if (r->free_in_cb) rill_io_free(io);
}

static void closepair(int fds[2]) {
  close(fds[0]);
  close(fds[1]);
}

/* ---- readiness ---------------------------------------------------------- */

static void test_pipe_readiness(void **state) {
  rill_base *base = tu_base_new();
  struct rec rr = {0}, wr = {0};
  rill_io *rio, *wio;
  int p[2];
  (void)state;
  tu_pipe(p);

  assert_int_equal(rill_io_new(base, p[0], rec_cb, &rr, &rio), 0);
  assert_int_equal(rill_io_new(base, p[1], rec_cb, &wr, &wio), 0);
  assert_int_equal(rill_io_fd(rio), p[0]);
  assert_int_equal(rill_io_fd(wio), p[1]);
  assert_int_equal(rill_io_events(rio), 0);

  /* A new watcher is stopped: nothing keeps the loop alive. */
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, LIMIT), 0);
  assert_int_equal(rr.calls + wr.calls, 0);

  assert_int_equal(rill_io_start(rio, RILL_READ), 0);
  assert_int_equal(rill_io_events(rio), RILL_READ);
  /* No data yet: not readable. */
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, LIMIT), 1);
  assert_int_equal(rr.calls, 0);

  /* Writable end: ready at once; no callback inside the API call. */
  assert_int_equal(rill_io_start(wio, RILL_WRITE), 0);
  assert_int_equal(wr.calls, 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(wr.calls, 1);
  assert_int_equal(wr.events[0], RILL_WRITE);
  assert_int_equal(wr.fds[0], p[1]);
  assert_ptr_equal(wr.ios[0], wio);
  assert_ptr_equal(wr.self, &wr);
  assert_int_equal(rr.calls, 0);
  rill_io_stop(wio);

  tu_write_byte(p[1]);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(rr.calls, 1);
  assert_int_equal(rr.events[0], RILL_READ);
  assert_int_equal(rr.fds[0], p[0]);
  assert_ptr_equal(rr.ios[0], rio);
  assert_int_equal(wr.calls, 1);

  rill_io_free(rio);
  rill_io_free(wio);
  closepair(p);
  tu_base_free(base);
}

static void test_socketpair_readiness(void **state) {
  rill_base *base = tu_base_new();
  struct rec r = {0};
  rill_io *io;
  int sv[2];
  (void)state;
  tu_socketpair(sv);

  assert_int_equal(rill_io_new(base, sv[0], rec_cb, &r, &io), 0);

  /* Read interest, nothing to read. */
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, LIMIT), 1);
  assert_int_equal(r.calls, 0);

  /* Both: only the writable side is ready, and reported. */
  assert_int_equal(rill_io_start(io, RILL_READ | RILL_WRITE), 0);
  assert_int_equal(rill_io_events(io), RILL_READ | RILL_WRITE);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.events[0], RILL_WRITE);

  /* Data in: both ready in one callback. */
  tu_write_byte(sv[1]);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(r.calls, 2);
  assert_int_equal(r.events[1], RILL_READ | RILL_WRITE);

  /* Read interest only: WRITE is never reported outside the interest. */
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(r.calls, 3);
  assert_int_equal(r.events[2], RILL_READ);

  rill_io_free(io);
  closepair(sv);
  tu_base_free(base);
}

static void test_level_triggered(void **state) {
  rill_base *base = tu_base_new();
  struct rec r = {0};
  rill_io *io;
  int sv[2];
  (void)state;
  tu_socketpair(sv);
  assert_int_equal(rill_io_new(base, sv[0], rec_cb, &r, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  tu_write_byte(sv[1]);

  /* Unread data fires on every iteration. */
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, LIMIT), 1);
  assert_int_equal(r.calls, 3);

  /* Drained: quiet. */
  assert_int_equal(tu_drain(sv[0]), 1);
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, LIMIT), 1);
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, LIMIT), 1);
  assert_int_equal(r.calls, 3);

  /* And ready again with new data. */
  tu_write_byte(sv[1]);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(r.calls, 4);

  rill_io_free(io);
  closepair(sv);
  tu_base_free(base);
}

static void test_interest_change(void **state) {
  rill_base *base = tu_base_new();
  struct rec r = {0};
  rill_io *io;
  int sv[2];
  (void)state;
  tu_socketpair(sv);
  assert_int_equal(rill_io_new(base, sv[0], rec_cb, &r, &io), 0);

  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, LIMIT), 1);
  assert_int_equal(r.calls, 0);

  assert_int_equal(rill_io_start(io, RILL_WRITE), 0);
  assert_int_equal(rill_io_events(io), RILL_WRITE);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.events[0], RILL_WRITE);

  /* Back to READ with data: only READ. */
  tu_write_byte(sv[1]);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(rill_io_events(io), RILL_READ);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(r.calls, 2);
  assert_int_equal(r.events[1], RILL_READ);

  /* Several changes in one iteration: only the last one counts. */
  tu_drain(sv[0]);
  assert_int_equal(rill_io_start(io, RILL_WRITE), 0);
  assert_int_equal(rill_io_stop(io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ | RILL_WRITE), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, LIMIT), 1);
  assert_int_equal(r.calls, 2);

  rill_io_free(io);
  closepair(sv);
  tu_base_free(base);
}

/* ---- stop / free from callbacks -------------------------------------------- */

static void test_stop_in_callback(void **state) {
  rill_base *base = tu_base_new();
  struct rec r = {0};
  rill_io *io;
  int sv[2];
  (void)state;
  tu_socketpair(sv);
  tu_write_byte(sv[1]);
  assert_int_equal(rill_io_new(base, sv[0], rec_cb, &r, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  r.stop_in_cb = 1;
  /* Still readable, but stopped: the loop ends with nothing active. */
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT), 0);
  assert_int_equal(r.calls, 1);
  assert_int_equal(rill_io_events(io), 0);
  assert_int_equal(rill_io_stop(io), 0); /* stopping a stopped watcher */

  /* It can be started again. */
  r.stop_in_cb = 1;
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT), 0);
  assert_int_equal(r.calls, 2);

  rill_io_free(io);
  closepair(sv);
  tu_base_free(base);
}

static void test_free_in_own_callback(void **state) {
  rill_base *base = tu_base_new();
  struct rec r = {0};
  rill_io *io;
  int sv[2];
  (void)state;
  tu_socketpair(sv);
  tu_write_byte(sv[1]);
  tu_write_byte(sv[0]);
  assert_int_equal(rill_io_new(base, sv[0], rec_cb, &r, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ | RILL_WRITE), 0);
  r.free_in_cb = 1;
  assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT), 0);
  assert_int_equal(r.calls, 1);

  /* The descriptor is free for a new watcher. */
  {
    struct rec r2 = {0};
    r2.free_in_cb = 1;
    assert_int_equal(rill_io_new(base, sv[0], rec_cb, &r2, &io), 0);
    assert_int_equal(rill_io_start(io, RILL_READ), 0);
    assert_int_equal(TU_RUN(base, RILL_RUN_DEFAULT, LIMIT), 0);
    assert_int_equal(r2.calls, 1);
  }
  closepair(sv);
  tu_base_free(base);
}

/* Two watchers whose events are collected in the same wait: whichever runs
 * first frees the other, whose event must be dropped. */
struct pair {
  rill_io *io[2];
  int calls[2];
  int fd[2];
  int close_and_reuse; /* also close the other's fd and put a new file there */
  int newfd_peer;      /* the peer of the file now at the other's number */
  rill_io *newio;
  int newio_rc;
  rill_base *base;
};

static void pair_new_cb(rill_io *io, int fd, unsigned events, void *arg);

struct newrec {
  int calls;
};

static void pair_cb(rill_io *io, int fd, unsigned events, void *arg) {
  struct pair *p = (struct pair *)arg;
  int me = (io == p->io[0]) ? 0 : 1;
  int other = 1 - me;
  (void)fd;
  (void)events;
  p->calls[me]++;
  if (p->io[other]) {
    rill_io_free(p->io[other]);
    p->io[other] = NULL;
    if (p->close_and_reuse) {
      /* A different file at the same number, watched again, not ready. */
      int sv[2];
      if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0) {
        int target = p->fd[other];
        dup2(sv[0], target);
        close(sv[0]);
        fcntl(target, F_SETFL, O_NONBLOCK);
        p->newfd_peer = sv[1];
        p->newio_rc = rill_io_new(p->base, target, pair_new_cb, p, &p->newio);
        if (p->newio_rc == 0) rill_io_start(p->newio, RILL_READ);
      } else {
        p->newio_rc = -999;
      }
    }
  }
}

static int g_new_calls;
static void pair_new_cb(rill_io *io, int fd, unsigned events, void *arg) {
  (void)io;
  (void)fd;
  (void)events;
  (void)arg;
  g_new_calls++;
}

static void test_free_other_collected(void **state) {
  rill_base *base = tu_base_new();
  struct pair p;
  int a[2], b[2];
  (void)state;
  memset(&p, 0, sizeof p);
  tu_socketpair(a);
  tu_socketpair(b);
  tu_write_byte(a[1]);
  tu_write_byte(b[1]);
  p.fd[0] = a[0];
  p.fd[1] = b[0];
  assert_int_equal(rill_io_new(base, a[0], pair_cb, &p, &p.io[0]), 0);
  assert_int_equal(rill_io_new(base, b[0], pair_cb, &p, &p.io[1]), 0);
  assert_int_equal(rill_io_start(p.io[0], RILL_READ), 0);
  assert_int_equal(rill_io_start(p.io[1], RILL_READ), 0);

  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(p.calls[0] + p.calls[1], 1);
  /* The survivor keeps firing (level-triggered), the freed one never. */
  {
    int survivor = p.calls[0] ? 0 : 1;
    assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
    assert_int_equal(p.calls[survivor], 2);
    assert_int_equal(p.calls[1 - survivor], 0);
    rill_io_free(p.io[survivor]);
  }
  closepair(a);
  closepair(b);
  tu_base_free(base);
}

static void test_free_other_and_reuse_fd(void **state) {
  rill_base *base = tu_base_new();
  struct pair p;
  int a[2], b[2], loser, winner, i;
  (void)state;
  memset(&p, 0, sizeof p);
  g_new_calls = 0;
  tu_socketpair(a);
  tu_socketpair(b);
  tu_write_byte(a[1]);
  tu_write_byte(b[1]);
  p.fd[0] = a[0];
  p.fd[1] = b[0];
  p.close_and_reuse = 1;
  p.base = base;
  p.newfd_peer = -1;
  assert_int_equal(rill_io_new(base, a[0], pair_cb, &p, &p.io[0]), 0);
  assert_int_equal(rill_io_new(base, b[0], pair_cb, &p, &p.io[1]), 0);
  assert_int_equal(rill_io_start(p.io[0], RILL_READ), 0);
  assert_int_equal(rill_io_start(p.io[1], RILL_READ), 0);

  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(p.calls[0] + p.calls[1], 1);
  assert_int_equal(p.newio_rc, 0);
  /* The stale readiness of the old file must not reach the new watcher,
   * neither in that iteration nor later: the new file is not readable. */
  assert_int_equal(g_new_calls, 0);
  winner = p.calls[0] ? 0 : 1;
  loser = 1 - winner;
  for (i = 0; i < 3; i++) assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, LIMIT), 1);
  assert_int_equal(g_new_calls, 0);
  assert_int_equal(p.calls[loser], 0);

  /* The new file works through the new watcher. */
  tu_write_byte(p.newfd_peer);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(g_new_calls, 1);

  rill_io_free(p.newio);
  rill_io_free(p.io[winner]);
  closepair(a);
  closepair(b); /* b[0] or a[0] is now the new socket */
  close(p.newfd_peer);
  tu_base_free(base);
}

static void test_new_watcher_same_fd_other_file(void **state) {
  rill_base *base = tu_base_new();
  struct rec r1 = {0}, r2 = {0};
  rill_io *io;
  int a[2], b[2], fdnum;
  (void)state;
  tu_socketpair(a);
  fdnum = a[0];
  tu_write_byte(a[1]);
  assert_int_equal(rill_io_new(base, fdnum, rec_cb, &r1, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(r1.calls, 1);

  /* Free the watcher, close the file, put another file at the number. */
  tu_socketpair(b); /* while fdnum is still taken: other numbers */
  rill_io_free(io);
  close(a[0]);
  close(a[1]);
  assert_true(dup2(b[0], fdnum) == fdnum);
  close(b[0]);
  tu_nonblock(fdnum);

  assert_int_equal(rill_io_new(base, fdnum, rec_cb, &r2, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, LIMIT), 1);
  assert_int_equal(r2.calls, 0);
  tu_write_byte(b[1]);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(r2.calls, 1);
  assert_int_equal(r2.fds[0], fdnum);
  assert_int_equal(r1.calls, 1);

  /* And the same when dup2() replaces the file in place, with no run
   * between the free and the new watcher (changes are batched). */
  tu_socketpair(a);
  rill_io_free(io);
  assert_true(dup2(a[0], fdnum) == fdnum);
  close(a[0]);
  close(b[1]);
  tu_nonblock(fdnum);
  memset(&r2, 0, sizeof r2);
  assert_int_equal(rill_io_new(base, fdnum, rec_cb, &r2, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, LIMIT), 1);
  assert_int_equal(r2.calls, 0);
  tu_write_byte(a[1]);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(r2.calls, 1);
  rill_io_free(io);
  close(fdnum);
  close(a[1]);
  tu_base_free(base);
}

static void test_free_and_close_without_run(void **state) {
  rill_base *base = tu_base_new();
  struct rec r = {0}, r2 = {0};
  rill_io *io, *io2;
  int sv[2], p[2];
  (void)state;
  /* Registered with the kernel, then freed and closed before the next
   * wait: the backend must cope with a descriptor that is already gone. */
  tu_socketpair(sv);
  tu_pipe(p);
  tu_write_byte(p[1]);
  assert_int_equal(rill_io_new(base, sv[0], rec_cb, &r, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ | RILL_WRITE), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(r.calls, 1);
  rill_io_free(io);
  closepair(sv);

  assert_int_equal(rill_io_new(base, p[0], rec_cb, &r2, &io2), 0);
  assert_int_equal(rill_io_start(io2, RILL_READ), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(r2.calls, 1);
  assert_int_equal(r.calls, 1);
  rill_io_free(io2);
  closepair(p);
  tu_base_free(base);
}

static void test_stop_start_same_iteration(void **state) {
  rill_base *base = tu_base_new();
  struct rec r = {0};
  rill_io *io;
  int sv[2];
  (void)state;
  tu_socketpair(sv);
  tu_write_byte(sv[1]);
  assert_int_equal(rill_io_new(base, sv[0], rec_cb, &r, &io), 0);

  /* Outside callbacks. */
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(rill_io_stop(io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(r.calls, 1);

  /* Inside the callback, after it was registered with the kernel. */
  r.restart_in_cb = 1;
  r.restart_mask = RILL_READ;
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(r.calls, 4);
  assert_int_equal(rill_io_events(io), RILL_READ);

  /* Stop + start with another mask in the callback. */
  r.restart_mask = RILL_WRITE;
  tu_drain(sv[0]);
  tu_write_byte(sv[1]);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(r.calls, 5);
  assert_int_equal(r.events[4], RILL_READ);
  r.restart_in_cb = 0;
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(r.calls, 6);
  assert_int_equal(r.events[5], RILL_WRITE);

  rill_io_free(io);
  closepair(sv);
  tu_base_free(base);
}

/* ---- hang-up -------------------------------------------------------------- */

static void test_hangup_socketpair(void **state) {
  rill_base *base = tu_base_new();
  struct rec r = {0};
  rill_io *io;
  int sv[2];
  char c;
  (void)state;
  tu_socketpair(sv);
  assert_int_equal(rill_io_new(base, sv[0], rec_cb, &r, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, LIMIT), 1);
  assert_int_equal(r.calls, 0);

  close(sv[1]);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(r.calls, 1);
  assert_true(r.events[0] & RILL_READ);
  assert_int_equal(read(sv[0], &c, 1), 0); /* EOF */

  /* With both directions in the interest, both are reported. */
  assert_int_equal(rill_io_start(io, RILL_READ | RILL_WRITE), 0);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(r.calls, 2);
  assert_int_equal(r.events[1], RILL_READ | RILL_WRITE);

  rill_io_free(io);
  close(sv[0]);
  tu_base_free(base);
}

static void test_hangup_pipe(void **state) {
  rill_base *base = tu_base_new();
  struct rec r = {0}, w = {0};
  rill_io *io;
  int p[2], q[2];
  (void)state;

  /* Writer gone, nothing to read: a bare hang-up is still READ. */
  tu_pipe(p);
  assert_int_equal(rill_io_new(base, p[0], rec_cb, &r, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  close(p[1]);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.events[0], RILL_READ);
  rill_io_free(io);
  close(p[0]);

  /* Reader gone: the write end reports WRITE (the write will see EPIPE). */
  tu_pipe(q);
  assert_int_equal(rill_io_new(base, q[1], rec_cb, &w, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_WRITE), 0);
  close(q[0]);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(w.calls, 1);
  assert_int_equal(w.events[0], RILL_WRITE);
  rill_io_free(io);
  close(q[1]);
  tu_base_free(base);
}

/* A watcher for READ on a hung-up pipe: the hang-up is reported in both
 * directions, but the watcher's interest never changes, so the loop makes
 * no interest change (no epoll_ctl) per iteration. It used to make one
 * EPOLL_CTL_MOD every iteration, dropping a WRITE interest it never had. */
static void test_hangup_costs_no_interest_changes(void **state) {
  rill_base *base = tu_base_new();
  struct rec r = {0};
  rill_base_stats before, after;
  rill_io *io;
  int p[2], i;
  (void)state;

  tu_pipe(p);
  assert_int_equal(rill_io_new(base, p[0], rec_cb, &r, &io), 0);
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  close(p[1]);
  assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1); /* registers */
  assert_int_equal(rill_base_stats_get(base, &before), 0);
  for (i = 0; i < 50; i++)
    assert_int_equal(TU_RUN(base, RILL_RUN_ONCE, LIMIT), 1);
  assert_int_equal(rill_base_stats_get(base, &after), 0);
  assert_int_equal(r.calls, 51); /* level-triggered: every iteration */
  assert_int_equal(after.interest_changes - before.interest_changes, 0);

  /* A stopped watcher's interest is dropped at its next unwanted event:
   * one change, then none. */
  assert_int_equal(rill_io_stop(io), 0);
  for (i = 0; i < 10; i++)
    TU_RUN(base, RILL_RUN_NOWAIT, LIMIT);
  assert_int_equal(rill_base_stats_get(base, &after), 0);
  assert_int_equal(after.interest_changes - before.interest_changes, 1);
  assert_int_equal(r.calls, 51);
  rill_io_free(io);
  close(p[0]);
  tu_base_free(base);
}

/* ---- errors ---------------------------------------------------------------- */

static void test_register_twice(void **state) {
  rill_base *base = tu_base_new();
  rill_base *other = tu_base_new();
  rill_io *io, *io2 = NULL;
  int sv[2];
  (void)state;
  tu_socketpair(sv);
  assert_int_equal(rill_io_new(base, sv[0], rec_cb, NULL, &io), 0);
  assert_int_equal(rill_io_new(base, sv[0], rec_cb, NULL, &io2), RILL_EEXIST);
  /* Also while started. */
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(rill_io_new(base, sv[0], rec_cb, NULL, &io2), RILL_EEXIST);
  /* The limit is per base. */
  assert_int_equal(rill_io_new(other, sv[0], rec_cb, NULL, &io2), 0);
  rill_io_free(io2);
  /* After a free the descriptor may be watched again. */
  rill_io_free(io);
  assert_int_equal(rill_io_new(base, sv[0], rec_cb, NULL, &io), 0);
  rill_io_free(io);
  closepair(sv);
  tu_base_free(other);
  tu_base_free(base);
}

static void test_bad_fds(void **state) {
  rill_base *base = tu_base_new();
  rill_io *io = NULL;
  int p[2], closed;
  (void)state;
  tu_pipe(p);
  closed = p[0];
  close(p[0]);
  assert_int_equal(rill_io_new(base, closed, rec_cb, NULL, &io), RILL_EBADF);
  assert_int_equal(rill_io_new(base, -1, rec_cb, NULL, &io), RILL_EBADF);
  assert_int_equal(rill_io_new(base, -42, rec_cb, NULL, &io), RILL_EBADF);
  assert_int_equal(rill_io_new(base, 1 << 24, rec_cb, NULL, &io), RILL_EBADF);
  close(p[1]);
  /* Nothing was left behind. */
  assert_int_equal(TU_RUN(base, RILL_RUN_NOWAIT, LIMIT), 0);
  tu_base_free(base);
}

static void test_bad_args(void **state) {
  rill_base *base = tu_base_new();
  rill_io *io = NULL;
  int sv[2];
  (void)state;
  tu_socketpair(sv);
  assert_int_equal(rill_io_new(NULL, sv[0], rec_cb, NULL, &io), RILL_EINVAL);
  assert_int_equal(rill_io_new(base, sv[0], NULL, NULL, &io), RILL_EINVAL);
  assert_int_equal(rill_io_new(base, sv[0], rec_cb, NULL, NULL), RILL_EINVAL);

  assert_int_equal(rill_io_new(base, sv[0], rec_cb, NULL, &io), 0);
  assert_int_equal(rill_io_start(io, 0), RILL_EINVAL);
  assert_int_equal(rill_io_events(io), 0);
  assert_int_equal(rill_io_start(io, 4), RILL_EINVAL);
  assert_int_equal(rill_io_start(io, RILL_READ | 8), RILL_EINVAL);
  assert_int_equal(rill_io_events(io), 0);
  /* A failed start leaves a started watcher as it was. */
  assert_int_equal(rill_io_start(io, RILL_READ), 0);
  assert_int_equal(rill_io_start(io, 0), RILL_EINVAL);
  assert_int_equal(rill_io_events(io), RILL_READ);

  assert_int_equal(rill_io_start(NULL, RILL_READ), RILL_EINVAL);
  assert_int_equal(rill_io_stop(NULL), RILL_EINVAL);
  rill_io_free(NULL);
  rill_io_free(io);
  closepair(sv);
  tu_base_free(base);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup_fds, tu_teardown_fds)
  const struct CMUnitTest tests[] = {
      T(test_pipe_readiness),
      T(test_socketpair_readiness),
      T(test_level_triggered),
      T(test_interest_change),
      T(test_stop_in_callback),
      T(test_free_in_own_callback),
      T(test_free_other_collected),
      T(test_free_other_and_reuse_fd),
      T(test_new_watcher_same_fd_other_file),
      T(test_free_and_close_without_run),
      T(test_stop_start_same_iteration),
      T(test_hangup_socketpair),
      T(test_hangup_pipe),
      T(test_hangup_costs_no_interest_changes),
      T(test_register_twice),
      T(test_bad_fds),
      T(test_bad_args),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
