/* rill_net_read() reads into the caller's buffer (lib/net/read_target.h):
 * while a fiber waits in it, the connection reads (read(2), or SSL_read for
 * TLS) straight into that buffer, and the facade copies nothing. Checked
 * over TCP and TLS, on every backend: every byte arrives once and in order
 * for messages smaller than, equal to and larger than the reader's buffer
 * (64 KiB messages read 16 KiB at a time), across a read deadline that
 * expires mid-message and a close while the reader waits; and where the
 * connection reads itself (TLS everywhere, TCP on every backend but
 * io_uring, whose receives land in the base's buffer ring), the facade's
 * own count of the bytes it copied (rill_internal_net_read_copied, an
 * internal for tests) stays 0 for messages that come to a waiting reader;
 * on io_uring the count covers every byte. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "rill.h"
#include "test_util.h"
#include "fiber_check.h"
#include "tls_peer.h"

#define LIMIT 60000 /* a hang guard only */
#define BUF 16384   /* the reader's buffer */
#define WAIT_MS 20000

/* lib/fiber/net_conn.cpp: the bytes the facade's read path copied on the
 * calling fiber's base (not in the public header). */
uint64_t rill_internal_net_read_copied(void);

static unsigned char pattern(uint64_t i) { return (unsigned char)((i * 7u + (i >> 11)) % 251u); }

static void fill(unsigned char *p, size_t len, uint64_t offset) {
  for (size_t i = 0; i < len; i++)
    p[i] = pattern(offset + i);
}

/* The first byte that breaks the pattern, or `len`. */
static size_t first_bad(const unsigned char *p, size_t len, uint64_t offset) {
  for (size_t i = 0; i < len; i++)
    if (p[i] != pattern(offset + i))
      return i;
  return len;
}

static int all_bytes(const unsigned char *p, size_t len, unsigned char b) {
  for (size_t i = 0; i < len; i++)
    if (p[i] != b)
      return 0;
  return 1;
}

struct run {
  int tls;
  rill_tls_config *scfg, *ccfg;
  rill_net_listener *l;
  char addr[RILL_ADDRSTRLEN];
  rill_net_conn *reader_conn, *writer_conn;
  int lends; /* the backend reads into the reader's buffer (not io_uring) */
  /* The reader's progress, which the writer waits for. */
  uint64_t received;
  int phase_done;
  int accepted;
  ssize_t last;
  rill_waitgroup *wg;
};

static const size_t paced_sizes[] = {1, 100, BUF - 1, BUF, BUF + 1, 4 * BUF, 100000, 3};

/* Waits (in a fiber) until the reader got `total` bytes in all. */
static void wait_received(struct run *r, uint64_t total) {
  uint64_t end = tu_now_ms() + WAIT_MS;
  while (r->received < total && tu_now_ms() < end)
    rill_sleep(RILL_MSEC);
  FCHECK(r->received >= total);
}

/* Reads until `total` bytes came, checking each read against the pattern. */
static void read_checked(struct run *r, unsigned char *buf, uint64_t total) {
  while (r->received < total) {
    memset(buf, 0xEE, BUF);
    ssize_t n = rill_net_read(r->reader_conn, buf, BUF);
    FCHECK(n > 0);
    if (n <= 0) {
      r->last = n;
      return;
    }
    FCHECK(n <= BUF);
    size_t bad = first_bad(buf, (size_t)n, r->received);
    FCHECK_EQ(bad, (size_t)n);
    if (bad != (size_t)n) {
      fprintf(stderr, "byte %llu of the stream is wrong (a read of %zd)\n",
              (unsigned long long)(r->received + bad), n);
      r->last = -1;
      return;
    }
    /* Nothing written past what the read returned. */
    FCHECK(all_bytes(buf + n, BUF - (size_t)n, 0xEE));
    r->received += (uint64_t)n;
  }
}

static void reader(void *arg) {
  struct run *r = arg;
  static unsigned char buf[BUF];
  uint64_t total = 0;

  /* 1. Paced: each message comes to a reader that waits for it. */
  for (size_t i = 0; i < sizeof paced_sizes / sizeof paced_sizes[0]; i++)
    total += paced_sizes[i];
  uint64_t copied = rill_internal_net_read_copied();
  read_checked(r, buf, total);
  if (r->lends)
    FCHECK_EQ(rill_internal_net_read_copied() - copied, 0);
  else /* io_uring: every byte is copied out of the buffer ring, at least once */
    FCHECK(rill_internal_net_read_copied() - copied >= total);

  /* 2. A burst of messages written at once, read as they come (what
   * arrives between two reads may go through the spill buffer). */
  total += 7 * (uint64_t)BUF + 12345;
  read_checked(r, buf, total);

  /* 3. A deadline that expires in the middle of a 64 KiB message: the read
   * returns RILL_ETIMEOUT without touching the buffer, and the rest of the
   * message comes after, intact. */
  memset(buf, 0xEE, BUF);
  ssize_t n = rill_net_read(r->reader_conn, buf, BUF);
  FCHECK(n > 0);
  if (n > 0) {
    FCHECK_EQ(first_bad(buf, (size_t)n, r->received), (size_t)n);
    r->received += (uint64_t)n;
  }
  FCHECK_EQ(rill_net_set_deadline(r->reader_conn, RILL_DEADLINE_READ, rill_time_now()), 0);
  memset(buf, 0xEE, BUF);
  FCHECK_EQ(rill_net_read(r->reader_conn, buf, BUF), RILL_ETIMEOUT);
  FCHECK(all_bytes(buf, BUF, 0xEE));
  /* Waiting: the deadline ends the wait of a reader that lent its buffer. */
  FCHECK_EQ(rill_net_set_deadline(r->reader_conn, RILL_DEADLINE_READ, 0), 0);
  read_checked(r, buf, total + 4 * BUF);
  total += 4 * BUF;
  FCHECK_EQ(rill_net_set_deadline(r->reader_conn, RILL_DEADLINE_READ,
                                  rill_time_now() + 30 * RILL_MSEC), 0);
  memset(buf, 0xEE, BUF);
  FCHECK_EQ(rill_net_read(r->reader_conn, buf, BUF), RILL_ETIMEOUT);
  FCHECK(all_bytes(buf, BUF, 0xEE));
  /* A new deadline makes the connection read again although nobody waits:
   * what comes meanwhile must not land in the buffer the reader lent
   * before its deadline passed (it is the reader's again), and is read
   * next, intact. */
  FCHECK_EQ(rill_net_set_deadline(r->reader_conn, RILL_DEADLINE_READ, 0), 0);
  r->phase_done = 3;
  rill_sleep(100 * RILL_MSEC); /* the writer's message comes meanwhile */
  FCHECK(all_bytes(buf, BUF, 0xEE));
  read_checked(r, buf, total + BUF);
  total += BUF;

  /* 4. A close while the reader waits: it wakes with RILL_ECLOSED, and its
   * buffer is left alone, also when the peer writes afterwards. */
  r->phase_done = 4;
  memset(buf, 0xEE, BUF);
  FCHECK_EQ(rill_net_read(r->reader_conn, buf, BUF), RILL_ECLOSED);
  r->phase_done = 5;
  rill_sleep(50 * RILL_MSEC); /* the writer's last bytes come meanwhile */
  FCHECK(all_bytes(buf, BUF, 0xEE));
  rill_waitgroup_done(r->wg);
}

static void writer(void *arg) {
  struct run *r = arg;
  static unsigned char out[8 * BUF + 12345];
  uint64_t sent = 0;

  for (size_t i = 0; i < sizeof paced_sizes / sizeof paced_sizes[0]; i++) {
    fill(out, paced_sizes[i], sent);
    FCHECK_EQ(rill_net_write(r->writer_conn, out, paced_sizes[i], NULL), 0);
    sent += paced_sizes[i];
    wait_received(r, sent);
  }
  size_t burst[] = {5 * BUF, 1, BUF, BUF - 1, 12345};
  for (size_t i = 0; i < sizeof burst / sizeof burst[0]; i++) {
    fill(out, burst[i], sent);
    FCHECK_EQ(rill_net_write(r->writer_conn, out, burst[i], NULL), 0);
    sent += burst[i];
  }
  wait_received(r, sent);
  /* Phase 3: one 64 KiB message, then one more once the deadlines passed. */
  fill(out, 4 * BUF, sent);
  FCHECK_EQ(rill_net_write(r->writer_conn, out, 4 * BUF, NULL), 0);
  sent += 4 * BUF;
  uint64_t end = tu_now_ms() + WAIT_MS;
  while (r->phase_done < 3 && tu_now_ms() < end)
    rill_sleep(RILL_MSEC);
  rill_sleep(20 * RILL_MSEC); /* the reader waits for it */
  fill(out, BUF, sent);
  FCHECK_EQ(rill_net_write(r->writer_conn, out, BUF, NULL), 0);
  sent += BUF;
  wait_received(r, sent);
  /* Phase 4: the reader waits; its connection is closed; then bytes come. */
  while (r->phase_done < 4 && tu_now_ms() < end)
    rill_sleep(RILL_MSEC);
  rill_sleep(20 * RILL_MSEC);
  FCHECK_EQ(rill_net_close(r->reader_conn), 0);
  fill(out, BUF, sent);
  (void)rill_net_write(r->writer_conn, out, BUF, NULL); /* may meet the reset */
  while (r->phase_done < 5 && tu_now_ms() < end)
    rill_sleep(RILL_MSEC);
  FCHECK_EQ(r->phase_done, 5);
  rill_waitgroup_done(r->wg);
}

static void accept_one(void *arg) {
  struct run *r = arg;
  FCHECK_EQ(rill_net_accept(r->l, &r->reader_conn), 0);
  r->accepted = 1;
}

static void run_main(void *arg) {
  struct run *r = arg;
  rill_socket_config opts = {.timeout = 20 * RILL_SEC};
  char err[256];
  int rc = r->tls ? rill_net_tls_listen("tcp4", "127.0.0.1:0", NULL, r->scfg, &r->l)
                  : rill_net_listen("tcp4", "127.0.0.1:0", NULL, &r->l);
  FCHECK_EQ(rc, 0);
  if (rc)
    return;
  FCHECK(rill_net_listener_addr(r->l, r->addr, sizeof r->addr) > 0);
  /* The TLS handshake needs the accept waiting. */
  FCHECK_EQ(rill_go(rill_fiber_base(), accept_one, r), 0);
  const char *port = strrchr(r->addr, ':') + 1;
  char addr[64];
  snprintf(addr, sizeof addr, "%s:%s", r->tls ? "localhost" : "127.0.0.1", port);
  rc = r->tls ? rill_net_tls_dial("tcp4", addr, &opts, r->ccfg, &r->writer_conn, err, sizeof err)
              : rill_net_dial("tcp4", addr, &opts, &r->writer_conn, err, sizeof err);
  FCHECK_EQ(rc, 0);
  if (rc) {
    fprintf(stderr, "dial %s: %s\n", addr, err);
    rill_net_listener_free(r->l);
    return;
  }
  uint64_t end = tu_now_ms() + WAIT_MS;
  while (!r->accepted && tu_now_ms() < end)
    rill_sleep(RILL_MSEC);
  rill_net_listener_free(r->l);
  if (!r->reader_conn) {
    rill_net_conn_free(r->writer_conn);
    return;
  }
  /* TLS reads through OpenSSL's recv() on every backend. */
  r->lends = r->tls || strcmp(rill_base_backend(rill_fiber_base()), "io_uring") != 0;
  FCHECK_EQ(rill_waitgroup_new(&r->wg), 0);
  rill_waitgroup_add(r->wg, 2);
  FCHECK_EQ(rill_go(rill_fiber_base(), reader, r), 0);
  FCHECK_EQ(rill_go(rill_fiber_base(), writer, r), 0);
  FCHECK_EQ(rill_waitgroup_wait(r->wg), 0);
  rill_waitgroup_free(r->wg);
  rill_net_conn_free(r->reader_conn);
  rill_net_conn_free(r->writer_conn);
}

static void run(int tls) {
  struct run r;
  memset(&r, 0, sizeof r);
  r.tls = tls;
#ifdef RILL_TEST_HAVE_TLS
  if (tls) {
    assert_int_equal(rill_tls_config_new(RILL_TLS_SERVER, &r.scfg), 0);
    assert_int_equal(rill_tls_config_set_cert_key_files(r.scfg, tp_cert("server.crt"),
                                                        tp_cert("server.key")), 0);
    assert_int_equal(rill_tls_config_new(RILL_TLS_CLIENT, &r.ccfg), 0);
    assert_int_equal(rill_tls_config_set_ca_file(r.ccfg, tp_cert("ca.crt")), 0);
  }
#endif
  rill_base *base = tu_base_new();
  assert_int_equal(rill_go(base, run_main, &r), 0);
  fiber_check_run(base, LIMIT);
  if (r.scfg)
    rill_tls_config_unref(r.scfg);
  if (r.ccfg)
    rill_tls_config_unref(r.ccfg);
}

static void test_tcp_reads_into_callers_buffer(void **state) {
  (void)state;
  run(0);
}

#ifdef RILL_TEST_HAVE_TLS
static void test_tls_reads_into_callers_buffer(void **state) {
  (void)state;
  run(1);
}
#endif

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tcp_reads_into_callers_buffer),
#ifdef RILL_TEST_HAVE_TLS
      cmocka_unit_test(test_tls_reads_into_callers_buffer),
#endif
  };
#ifdef RILL_TEST_HAVE_TLS
  return cmocka_run_group_tests(tests, tp_certs_setup, tp_certs_teardown);
#else
  return cmocka_run_group_tests(tests, NULL, NULL);
#endif
}
