/* Fibers that promise a private stack (rill_fiber_private_stack) give their
 * stack pages back while they wait long in a read or a sleep, and find
 * their frames intact when they run again: locals around the reader's
 * buffer, the frames of the calls below, the data the read returns. A fiber
 * that made no promise keeps its pages, and a pointer from another fiber
 * into its stack works as before.
 *
 * Whether a page is given back is asked with mincore(), which does not
 * touch it; a released fiber is polled for, never waited for by the clock
 * (the sweep releases fibers idle for 0.5 to 1 s, later on a loaded
 * machine). */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"
#include "fiber_check.h"

#define LIMIT 120000     /* a hang guard only */
#define READERS 20
#define DEPTH 3
#define POLL_LIMIT 200   /* polls 50 ms apart: 10 s for a release */

static int resident(const void *addr) {
  long page = sysconf(_SC_PAGESIZE);
  unsigned char in_core = 0;
  void *at = (void *)((uintptr_t)addr & ~(uintptr_t)(page - 1));
  if (mincore(at, (size_t)page, &in_core) != 0)
    return -1;
  return in_core & 1;
}

/* What a parked fiber does at the bottom of its calls. */
typedef void (*bottom_fn)(int who);

/* Frames with known contents: each level fills its locals from `who` and
 * its depth, calls the next level, then checks them. */
static int nest(int who, int depth, bottom_fn bottom) {
  uint64_t mine[16];
  int i, ok = 1;
  for (i = 0; i < 16; i++)
    mine[i] = ((uint64_t)who << 32) ^ ((uint64_t)depth << 16) ^ (uint64_t)i ^ 0x5a5a5a5a00000000ull;
  if (depth == 0)
    bottom(who);
  else
    ok = nest(who, depth - 1, bottom);
  for (i = 0; i < 16; i++)
    if (mine[i] != (((uint64_t)who << 32) ^ ((uint64_t)depth << 16) ^ (uint64_t)i ^ 0x5a5a5a5a00000000ull))
      ok = 0;
  return ok;
}

/* ---- readers parked long, woken by data or by a close ---- */

static rill_net_listener *g_listener;
static rill_net_conn *g_server[READERS];
static const char *g_buf[READERS];     /* a reader's buffer, never dereferenced elsewhere */
static const void *g_frames[READERS];  /* a local of its deepest frame */
static int g_private = 1;               /* the readers promise a private stack */
static int g_close_instead;             /* wake them by rill_net_close, not data */
static int g_done;

static void read_bottom(int who) {
  uint64_t before[8];
  char buf[4096];
  uint64_t after[8];
  char want[32];
  ssize_t n;
  int i;
  for (i = 0; i < 8; i++)
    before[i] = after[i] = 0x1111111111111111ull * (uint64_t)(i + 1) + (uint64_t)who;
  memset(buf, 0xAA, sizeof buf);
  g_buf[who] = buf;
  g_frames[who] = before;
  n = rill_net_read(g_server[who], buf, sizeof buf);
  if (g_close_instead) {
    FCHECK(n == RILL_ECLOSED);
  } else {
    snprintf(want, sizeof want, "hello %d", who);
    FCHECK(n == (ssize_t)strlen(want));
    FCHECK(n > 0 && memcmp(buf, want, (size_t)n) == 0);
  }
  for (i = 0; i < 8; i++) {
    FCHECK(before[i] == 0x1111111111111111ull * (uint64_t)(i + 1) + (uint64_t)who);
    FCHECK(after[i] == 0x1111111111111111ull * (uint64_t)(i + 1) + (uint64_t)who);
  }
  g_buf[who] = NULL;
  g_frames[who] = NULL;
}

static void reader(void *arg) {
  int who = (int)(intptr_t)arg;
  if (g_private)
    FCHECK(rill_fiber_private_stack() == 0);
  FCHECK(nest(who, DEPTH, read_bottom));
  rill_net_conn_free(g_server[who]);
  g_done++;
}

static void acceptor(void *arg) {
  int i;
  (void)arg;
  for (i = 0; i < READERS; i++) {
    FCHECK(rill_net_accept(g_listener, &g_server[i]) == 0);
    FCHECK(rill_go(rill_fiber_base(), reader, (void *)(intptr_t)i) == 0);
  }
}

/* Polls until every reader's buffer and frames are given back (want 0) or
 * the limit; returns how many readers are not as wanted. */
static int wait_until_resident(int want) {
  int tries, i, off = READERS;
  for (tries = 0; tries < POLL_LIMIT && off; tries++) {
    rill_sleep(50 * RILL_MSEC);
    off = 0;
    for (i = 0; i < READERS; i++)
      if (!g_buf[i] || resident(g_buf[i] + 2048) != want || resident(g_frames[i]) != want)
        off++;
    if (want == 1 && tries >= 30)
      break; /* pages kept: 1.5 s past the release time is enough to tell */
  }
  return off;
}

static void clients(void *arg) {
  rill_net_conn *conn[READERS];
  char addr[RILL_ADDRSTRLEN], msg[32];
  int i;
  (void)arg;
  FCHECK(rill_net_listen("tcp", "127.0.0.1:0", NULL, &g_listener) == 0);
  rill_net_listener_addr(g_listener, addr, sizeof addr);
  FCHECK(rill_go(rill_fiber_base(), acceptor, NULL) == 0);
  for (i = 0; i < READERS; i++)
    FCHECK(rill_net_dial("tcp", addr, NULL, &conn[i], NULL, 0) == 0);
  if (g_private) {
    FCHECK(wait_until_resident(0) == 0);
  } else {
    /* Let a release that must not happen have its chance, then check. */
    rill_sleep(1500 * RILL_MSEC);
    FCHECK(wait_until_resident(1) == 0);
  }
  for (i = 0; i < READERS; i++) {
    if (g_close_instead) {
      FCHECK(rill_net_close(g_server[i]) == 0);
    } else {
      snprintf(msg, sizeof msg, "hello %d", i);
      FCHECK(rill_net_write(conn[i], msg, strlen(msg), NULL) == 0);
    }
  }
  while (g_done < READERS)
    rill_sleep(10 * RILL_MSEC);
  for (i = 0; i < READERS; i++)
    rill_net_conn_free(conn[i]);
  rill_net_listener_free(g_listener);
}

static void run_readers(int private_stack, int close_instead) {
  rill_base *base = tu_base_new();
  g_private = private_stack;
  g_close_instead = close_instead;
  g_done = 0;
  memset(g_buf, 0, sizeof g_buf);
  assert_int_equal(rill_go(base, clients, NULL), 0);
  fiber_check_run(base, LIMIT);
}

static void reader_released_gets_data_and_frames(void **state) {
  (void)state;
  run_readers(1, 0);
}

static void reader_released_woken_by_close(void **state) {
  (void)state;
  run_readers(1, 1);
}

/* Without the promise the pages stay, and so does what another fiber
 * reaches through a pointer into the stack. */
static int *g_shared;

static void sharer_bottom(int who) {
  int shared = 0;
  (void)who;
  g_shared = &shared;
  rill_sleep(3000 * RILL_MSEC);
  FCHECK(shared == 42);
  g_shared = NULL;
}

static void sharer(void *arg) {
  (void)arg;
  FCHECK(nest(7, DEPTH, sharer_bottom));
}

static void poker(void *arg) {
  (void)arg;
  rill_sleep(2000 * RILL_MSEC);
  FCHECK(resident(g_shared) == 1);
  *g_shared = 42;
}

static void shared_stack_keeps_pages(void **state) {
  rill_base *base = tu_base_new();
  (void)state;
  assert_int_equal(rill_go(base, sharer, NULL), 0);
  assert_int_equal(rill_go(base, poker, NULL), 0);
  fiber_check_run(base, LIMIT);
  run_readers(0, 0);
}

/* A sleeper's frames are released and come back; it sleeps again until the
 * watcher saw the release (a loaded machine may sweep late). */
static const void *g_sleeper_frame;
static int g_sleeper_asleep, g_release_seen;

static void sleep_bottom(int who) {
  uint64_t mine[8];
  int i, rounds;
  for (i = 0; i < 8; i++)
    mine[i] = 0x2222222222222222ull * (uint64_t)(i + 1) + (uint64_t)who;
  g_sleeper_frame = mine;
  for (rounds = 0; rounds < 10 && !g_release_seen; rounds++) {
    g_sleeper_asleep = 1;
    FCHECK(rill_sleep(2500 * RILL_MSEC) == 0);
    g_sleeper_asleep = 0;
    for (i = 0; i < 8; i++)
      FCHECK(mine[i] == 0x2222222222222222ull * (uint64_t)(i + 1) + (uint64_t)who);
  }
  FCHECK(g_release_seen);
  g_sleeper_frame = NULL;
}

static void sleeper(void *arg) {
  (void)arg;
  FCHECK(rill_fiber_private_stack() == 0);
  FCHECK(nest(3, DEPTH, sleep_bottom));
}

static void sleep_watcher(void *arg) {
  int tries;
  (void)arg;
  for (tries = 0; tries < 2 * POLL_LIMIT && !g_release_seen; tries++) {
    rill_sleep(50 * RILL_MSEC);
    if (g_sleeper_asleep && g_sleeper_frame && resident(g_sleeper_frame) == 0)
      g_release_seen = 1;
  }
}

static void sleeper_released_and_restored(void **state) {
  rill_base *base = tu_base_new();
  (void)state;
  g_release_seen = 0;
  assert_int_equal(rill_go(base, sleeper, NULL), 0);
  assert_int_equal(rill_go(base, sleep_watcher, NULL), 0);
  fiber_check_run(base, LIMIT);
}

/* Short waits are never released: a busy private-stack echo moves no frames
 * and loses no bytes. */
#define ROUNDS 2000

static void echo_peer(void *arg) {
  rill_net_conn *c;
  char buf[64];
  ssize_t n;
  FCHECK(rill_fiber_private_stack() == 0);
  FCHECK(rill_net_accept(arg, &c) == 0);
  while ((n = rill_net_read(c, buf, sizeof buf)) > 0)
    FCHECK(rill_net_write(c, buf, (size_t)n, NULL) == 0);
  FCHECK(n == RILL_EOF);
  rill_net_conn_free(c);
}

static void echo_client(void *arg) {
  rill_net_listener *l;
  rill_net_conn *c;
  char addr[RILL_ADDRSTRLEN];
  int i;
  (void)arg;
  FCHECK(rill_fiber_private_stack() == 0);
  FCHECK(rill_net_listen("tcp", "127.0.0.1:0", NULL, &l) == 0);
  rill_net_listener_addr(l, addr, sizeof addr);
  FCHECK(rill_go(rill_fiber_base(), echo_peer, l) == 0);
  FCHECK(rill_net_dial("tcp", addr, NULL, &c, NULL, 0) == 0);
  for (i = 0; i < ROUNDS; i++) {
    uint32_t out = (uint32_t)i * 2654435761u, in = 0;
    size_t got = 0;
    FCHECK(rill_net_write(c, &out, sizeof out, NULL) == 0);
    while (got < sizeof in) {
      ssize_t n = rill_net_read(c, (char *)&in + got, sizeof in - got);
      FCHECK(n > 0);
      if (n <= 0)
        break;
      got += (size_t)n;
    }
    FCHECK(in == out);
  }
  rill_net_conn_free(c);
  rill_net_listener_free(l);
}

static void busy_private_echo(void **state) {
  rill_base *base = tu_base_new();
  (void)state;
  assert_int_equal(rill_go(base, echo_client, NULL), 0);
  fiber_check_run(base, LIMIT);
}

/* A reader released, woken and idle again is released again, every time:
 * the sweep that released it found nobody left to watch and stopped, and
 * the next long wait must start it again. */
#define AGAIN_ROUNDS 3

static rill_net_conn *g_again_server;
static const char *g_again_buf;  /* the parked reader's buffer, or NULL */
static int g_again_reads;

static void again_reader(void *arg) {
  char buf[4096];
  char want[32];
  int round;
  (void)arg;
  FCHECK(rill_fiber_private_stack() == 0);
  for (round = 0; round < AGAIN_ROUNDS; round++) {
    ssize_t n;
    memset(buf, 0xAA, sizeof buf);
    g_again_buf = buf;
    n = rill_net_read(g_again_server, buf, sizeof buf);
    g_again_buf = NULL;
    snprintf(want, sizeof want, "round %d", round);
    FCHECK(n == (ssize_t)strlen(want));
    FCHECK(n > 0 && memcmp(buf, want, (size_t)n) == 0);
    g_again_reads++;
  }
  rill_net_conn_free(g_again_server);
}

static void again_driver(void *arg) {
  rill_net_listener *l;
  rill_net_conn *c;
  char addr[RILL_ADDRSTRLEN], msg[32];
  int round, tries;
  (void)arg;
  FCHECK(rill_net_listen("tcp", "127.0.0.1:0", NULL, &l) == 0);
  rill_net_listener_addr(l, addr, sizeof addr);
  FCHECK(rill_net_dial("tcp", addr, NULL, &c, NULL, 0) == 0);
  FCHECK(rill_net_accept(l, &g_again_server) == 0);
  FCHECK(rill_go(rill_fiber_base(), again_reader, NULL) == 0);
  for (round = 0; round < AGAIN_ROUNDS; round++) {
    int released = 0;
    for (tries = 0; tries < POLL_LIMIT && !released; tries++) {
      rill_sleep(50 * RILL_MSEC);
      released = g_again_buf && g_again_reads == round && resident(g_again_buf + 2048) == 0;
    }
    FCHECK(released);
    snprintf(msg, sizeof msg, "round %d", round);
    FCHECK(rill_net_write(c, msg, strlen(msg), NULL) == 0);
    for (tries = 0; tries < POLL_LIMIT && g_again_reads == round; tries++)
      rill_sleep(10 * RILL_MSEC);
    FCHECK(g_again_reads == round + 1);
  }
  rill_net_conn_free(c);
  rill_net_listener_free(l);
}

static void reader_released_again_after_waking(void **state) {
  rill_base *base = tu_base_new();
  (void)state;
  g_again_buf = NULL;
  g_again_reads = 0;
  assert_int_equal(rill_go(base, again_driver, NULL), 0);
  fiber_check_run(base, LIMIT);
}

static void outside_a_fiber(void **state) {
  (void)state;
  assert_int_equal(rill_fiber_private_stack(), RILL_ENOTFIBER);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(outside_a_fiber),
      cmocka_unit_test(reader_released_gets_data_and_frames),
      cmocka_unit_test(reader_released_woken_by_close),
      cmocka_unit_test(sleeper_released_and_restored),
      cmocka_unit_test(reader_released_again_after_waking),
      cmocka_unit_test(shared_stack_keeps_pages),
      cmocka_unit_test(busy_private_echo),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
