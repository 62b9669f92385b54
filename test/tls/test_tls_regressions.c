/* Regressions found in review of the TLS record pump (lib/tls/conn.cpp),
 * each against a rill TLS listener and a blocking OpenSSL client on a
 * thread of its own, which can do what a stock peer cannot: corrupt a
 * record, split one across segments, stop reading, send data and
 * close_notify in one segment and keep TCP open (Go's CloseWrite).
 *   - a stale OpenSSL error on the thread (another connection's, the
 *     application's) must not break a healthy connection;
 *   - rill_conn_try_write reports exactly what it took, and drain and
 *     close_write wait for the ciphertext the kernel has not taken yet;
 *   - an EOF or error met in the same read as data is delivered without
 *     more input from the peer.
 * The loop runs on this thread; the peer waits for flags the loop sets
 * (and the other way round, through a polling timer), so every step is
 * bounded by an event, with generous wall-clock guards. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "test_util.h"
#include "tls_peer.h"

#ifdef RILL_TEST_HAVE_TLS

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ssl_thread_peer.h"

#define GUARD_MS SP_GUARD_MS

/* ---- the rill side ------------------------------------------------------ */

typedef struct srv {
  rill_base *base;
  rill_tls_listener *listener;
  int port;
  rill_conn *conn[2];
  int fd[2];         /* the conns' sockets, for the peer's FIONREAD */
  int accepted;      /* conns accepted so far */
  char in[2][256];   /* plaintext each conn read */
  size_t in_len[2];
  int status[2];     /* the terminal status on_read reported, 0 before */
  int ended[2];      /* 1 once on_read reported it */
  unsigned long err_after_close[2];  /* the thread's OpenSSL error queue then */
  int closed[2];
  int drained;       /* on_drain calls on conn 0 */
  int watch_queue;   /* the polling timer watches conn 0's write queue */
  int queue_empty;   /* ... and saw it empty (or on_drain came) */
  int stop_when;     /* the polling timer stops the loop once *stop_on >= this */
  int *stop_on;
  rill_timer *poll;
  /* What each test does with a conn; set before the peer connects. */
  void (*accepted_cb)(struct srv *s, int i);
  void (*data_cb)(struct srv *s, int i);
  void *user;
} srv;

static int index_of(srv *s, rill_conn *c) { return c == s->conn[0] ? 0 : 1; }

static size_t srv_read(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  srv *s = arg;
  int i = index_of(s, c);
  if (status) {
    sp_put(&s->status[i], status);
    sp_put(&s->ended[i], 1);
    rill_conn_close(c);
    s->err_after_close[i] = ERR_peek_error();
    return 0;
  }
  size_t room = sizeof s->in[i] - 1 - s->in_len[i];
  size_t n = len < room ? len : room;
  memcpy(s->in[i] + s->in_len[i], data, n);
  s->in_len[i] += n;
  if (s->data_cb)
    s->data_cb(s, i);
  return len;
}

static void srv_drain(rill_conn *c, void *arg) {
  srv *s = arg;
  if (c == s->conn[0]) {
    sp_put(&s->drained, s->drained + 1);
    sp_put(&s->queue_empty, 1);
  }
}

static void srv_close(rill_conn *c, void *arg) {
  srv *s = arg;
  sp_put(&s->closed[index_of(s, c)], 1);
}

static const rill_conn_events srv_events = {
    .on_read = srv_read, .on_drain = srv_drain, .on_close = srv_close};

static void srv_accept(rill_tls_listener *l, rill_conn *c, int status, void *arg) {
  (void)l;
  srv *s = arg;
  if (status || s->accepted >= 2)
    return;
  int i = s->accepted;
  s->conn[i] = c;
  s->fd[i] = rill_conn_fd(c);
  assert_int_equal(rill_conn_start(c, &srv_events, s), 0);
  if (s->accepted_cb)
    s->accepted_cb(s, i);
  sp_put(&s->accepted, i + 1);
}

static void srv_poll(rill_timer *t, void *arg) {
  (void)t;
  srv *s = arg;
  if (s->watch_queue && !sp_get(&s->closed[0]) && rill_conn_write_queued(s->conn[0]) == 0)
    sp_put(&s->queue_empty, 1);
  if (s->stop_on && sp_get(s->stop_on) >= s->stop_when)
    rill_base_stop(s->base);
}

static void srv_setup(srv *s) {
  memset(s, 0, sizeof *s);
  s->base = tu_base_new();
  rill_tls_config *cfg = NULL;
  assert_int_equal(rill_tls_config_new(RILL_TLS_SERVER, &cfg), 0);
  assert_int_equal(
      rill_tls_config_set_cert_key_files(cfg, tp_cert("server.crt"), tp_cert("server.key")), 0);
  assert_int_equal(rill_tls_listen(s->base, "tcp", "127.0.0.1:0", NULL, cfg, srv_accept, s,
                                   &s->listener),
                   0);
  rill_tls_config_unref(cfg);
  s->port = rill_listener_port(rill_tls_listener_listener(s->listener));
  assert_int_equal(rill_timer_new(s->base, srv_poll, s, &s->poll), 0);
  rill_timer_start(s->poll, RILL_MSEC, RILL_MSEC);
}

/* Runs the loop until *flag >= want (the peer's progress, or the loop's). */
static void srv_run_until(srv *s, int *flag, int want) {
  s->stop_on = flag;
  s->stop_when = want;
  if (sp_get(flag) < want)
    tu_run(s->base, RILL_RUN_DEFAULT, GUARD_MS);
  s->stop_on = NULL;
}

static void srv_teardown(srv *s) {
  for (int i = 0; i < 2; i++)
    if (s->conn[i] && !sp_get(&s->closed[i]))
      rill_conn_close_now(s->conn[i]);
  rill_timer_free(s->poll);
  rill_tls_listener_free(s->listener);
  for (int i = 0; i < 10; i++)
    rill_base_run(s->base, RILL_RUN_NOWAIT);
  tu_base_free(s->base);
}

/* ---- the OpenSSL peer ---------------------------------------------------- */

typedef struct peer {
  srv *s;
  int rcvbuf;      /* SO_RCVBUF before connecting, 0: the default */
  SSL_CTX *ctx;
  SSL *ssl[2];
  int fd[2];
  int go;          /* the loop tells the peer to go on (per test) */
  int done;        /* the peer finished (the loop may stop) */
  int result;      /* per test: what the peer saw */
  int stop;        /* the test is over: close and return */
} peer;

static int peer_connect(peer *p, int i) {
  SSL *ssl = SSL_new(p->ctx);
  p->ssl[i] = ssl;
  p->fd[i] = sp_connect(p->s->port, NULL, p->rcvbuf);
  if (!ssl || p->fd[i] < 0)
    return -1;
  SSL_set_fd(ssl, p->fd[i]);
  if (SSL_connect(ssl) != 1)
    return -1;
  return sp_wait_for(&p->s->accepted, i + 1);
}

static void peer_init(peer *p, srv *s) {
  memset(p, 0, sizeof *p);
  p->s = s;
  p->fd[0] = p->fd[1] = -1;
  p->ctx = sp_client_ctx();
  assert_non_null(p->ctx);
}

static void peer_free(peer *p) {
  for (int i = 0; i < 2; i++) {
    SSL_free(p->ssl[i]);
    if (p->fd[i] >= 0)
      close(p->fd[i]);
  }
  SSL_CTX_free(p->ctx);
}

/* One application-data record carrying `text`, as bytes (not yet sent). */
static int seal_record(SSL *ssl, const char *text, char *out, int size) {
  BIO *mem = BIO_new(BIO_s_mem());
  BIO *wire = SSL_get_wbio(ssl);
  BIO_up_ref(wire);
  SSL_set0_wbio(ssl, mem);  /* frees nothing: `wire` was referenced above */
  int ok = SSL_write(ssl, text, (int)strlen(text)) > 0;
  int n = ok ? BIO_read(mem, out, size) : -1;
  SSL_set0_wbio(ssl, wire);  /* frees `mem` */
  return n;
}

/* Sends a record in two segments, the second only once the rill side has
 * read the first out of its socket (and so met a record cut short). */
static int send_split(peer *p, int i, const char *text) {
  char rec[512];
  int n = seal_record(p->ssl[i], text, rec, sizeof rec);
  if (n <= 3 || write(p->fd[i], rec, 3) != 3)
    return -1;
  /* Acknowledged (in the rill socket's queue), then read from there. */
  uint64_t end = tu_now_ms() + GUARD_MS;
  int queued = 1;
  while (ioctl(p->fd[i], TIOCOUTQ, &queued) == 0 && queued > 0) {
    if (tu_now_ms() > end)
      return -1;
    tu_sleep_ms(1);
  }
  queued = 1;
  while (ioctl(p->s->fd[i], FIONREAD, &queued) == 0 && queued > 0) {
    if (tu_now_ms() > end)
      return -1;
    tu_sleep_ms(1);
  }
  return write(p->fd[i], rec + 3, (size_t)n - 3) == n - 3 ? 0 : -1;
}

/* A record that fails its integrity check (an application-data header and
 * 32 bytes of junk). */
static const char corrupt_record[] = "\x17\x03\x03\x00\x20 this record fails its MAC check";

/* ---- 1. a stale error on the thread's OpenSSL error queue --------------- */

static void errq_data(srv *s, int i) {
  if (i != 1 || s->in_len[1] != 5)
    return;
  /* The healthy conn read "hello"; now the application itself leaves an
   * error on the queue (a PEM load that fails), as programs do, and lets
   * the peer send its close_notify. */
  BIO *junk = BIO_new_mem_buf("not a certificate", -1);
  X509 *x = PEM_read_bio_X509(junk, NULL, NULL, NULL);
  assert_null(x);
  BIO_free(junk);
  assert_int_not_equal(ERR_peek_error(), 0);
  sp_put(&((peer *)s->user)->go, 1);
}

static void *errq_peer(void *arg) {
  peer *p = arg;
  srv *s = p->s;
  /* 0: the bad connection, 1: the healthy one. */
  if (peer_connect(p, 0) < 0 || peer_connect(p, 1) < 0)
    goto out;
  if (write(p->fd[0], corrupt_record, sizeof corrupt_record - 1) < 0)
    goto out;
  if (sp_wait_for(&s->closed[0], 1) < 0)
    goto out;
  /* The healthy conn's next read meets a record cut short (WANT_READ),
   * which a stale error turns into a failure. */
  if (send_split(p, 1, "hello") < 0)
    goto out;
  if (sp_wait_for(&p->go, 1) < 0)  /* the loop read "hello" and pushed an error */
    goto out;
  SSL_shutdown(p->ssl[1]);  /* close_notify alone: its read returns nothing */
  sp_wait_for(&p->stop, 1);
out:
  sp_put(&p->done, 1);
  return NULL;
}

static void test_stale_error_queue(void **state) {
  (void)state;
  srv s;
  peer p;
  srv_setup(&s);
  peer_init(&p, &s);
  s.data_cb = errq_data;
  s.user = &p;
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, errq_peer, &p), 0);
  /* The bad connection fails first and is closed from on_read (graceful:
   * that used to run SSL_shutdown on an SSL in OpenSSL's fatal state). */
  srv_run_until(&s, &s.closed[0], 1);
  srv_run_until(&s, &s.ended[1], 1);
  sp_put(&p.stop, 1);
  pthread_join(th, NULL);
  int status0 = sp_get(&s.status[0]), status1 = sp_get(&s.status[1]);
  unsigned long err_after_close = s.err_after_close[0];
  char got[sizeof s.in[1]];
  memcpy(got, s.in[1], sizeof got);
  got[s.in_len[1]] = '\0';
  srv_teardown(&s);
  peer_free(&p);
  ERR_clear_error();
  assert_true(status0 < 0 && status0 != RILL_EOF);  /* the corrupt record */
  assert_int_equal(err_after_close, 0);  /* closing it left nothing behind */
  assert_string_equal(got, "hello");     /* the split record, despite that */
  assert_int_equal(status1, RILL_EOF);   /* close_notify, despite the PEM error */
}

/* ---- 2. try_write's count, drain and close_write under a full socket ----- */

#define PATTERN_SIZE (8u << 20)
static unsigned char *pattern;

static void make_pattern(void) {
  if (pattern)
    return;
  pattern = malloc(PATTERN_SIZE);
  assert_non_null(pattern);
  for (size_t i = 0; i < PATTERN_SIZE; i++)
    pattern[i] = (unsigned char)(i * 131u + (i >> 11) * 7u + 1u);
}

static size_t reported;   /* bytes the rill side was told were written */
static int expected;      /* reported, published for the peer */
static int close_write_after;
static int filled;        /* try_write took less than it was offered */

/* Fills the socket with try_write (16 KiB at a time, as the blocking
 * facade does) until it takes less than it was offered. */
static void fill(srv *s, int i) {
  rill_conn *c = s->conn[i];
  assert_int_equal(rill_conn_set_write_buffer(c, 4096), 0);
  reported = 0;
  for (int k = 0; k < 4096; k++) {
    assert_true(reported + 16384 <= PATTERN_SIZE);
    ssize_t n = rill_conn_try_write(c, pattern + reported, 16384);
    assert_true(n >= 0);
    reported += (size_t)n;
    if (n < 16384) {
      filled = 1;
      break;
    }
  }
  if (close_write_after) {
    assert_int_equal(rill_conn_close_write(c), 0);
  } else {
    /* The rest of the message, queued behind whatever the kernel refused,
     * in records of 16 KiB: more than the socket holds (see the peer). */
    assert_int_equal(rill_conn_write(c, pattern + reported, 16 * 16384), 0);
    reported += 16 * 16384;
    s->watch_queue = 1;
  }
  sp_put(&expected, (int)reported);
}

/* Reads `want` bytes, or to the end when want < 0; returns the count, and
 * *clean tells whether the end was a close_notify. */
static size_t read_all(SSL *ssl, unsigned char *buf, size_t size, long want, int *clean) {
  size_t got = 0;
  *clean = 0;
  while (want < 0 || got < (size_t)want) {
    size_t room = want < 0 ? size - got : (size_t)want - got;
    if (room > 65536)
      room = 65536;
    size_t n = 0;
    if (!room || SSL_read_ex(ssl, buf + got, room, &n) != 1) {
      *clean = room && SSL_get_error(ssl, 0) == SSL_ERROR_ZERO_RETURN;
      break;
    }
    got += n;
  }
  return got;
}

static unsigned char peer_buf[PATTERN_SIZE];
static size_t peer_got;
static int peer_clean;

static void *trywrite_peer(void *arg) {
  peer *p = arg;
  if (peer_connect(p, 0) < 0)
    goto out;
  if (sp_wait_for(&expected, 1) < 0)  /* the socket is full: read now */
    goto out;
  if (close_write_after) {
    peer_got = read_all(p->ssl[0], peer_buf, sizeof peer_buf, -1, &peer_clean);
  } else {
    /* All but the last record; then, with the queue empty, that record
     * cannot be wholly in the kernel: drain must wait for its tail. */
    long all = sp_get(&expected);
    peer_got = read_all(p->ssl[0], peer_buf, sizeof peer_buf, all - 16384, &peer_clean);
    if (sp_wait_for(&p->s->queue_empty, 1) < 0)
      goto out;
    peer_got += read_all(p->ssl[0], peer_buf + peer_got, sizeof peer_buf - peer_got,
                         all - (long)peer_got, &peer_clean);
  }
  sp_put(&p->result, 1);
  if (!close_write_after) {
    /* Then the rill side closes: a clean close_notify after the data. */
    unsigned char extra[16];
    size_t more = read_all(p->ssl[0], extra, sizeof extra, -1, &peer_clean);
    peer_got += more;
  }
out:
  sp_put(&p->done, 1);
  return NULL;
}

static void run_trywrite(int with_close_write) {
  make_pattern();
  srv s;
  peer p;
  srv_setup(&s);
  peer_init(&p, &s);
  p.rcvbuf = 4096;
  reported = 0;
  filled = 0;
  sp_put(&expected, 0);
  close_write_after = with_close_write;
  peer_got = 0;
  peer_clean = 0;
  s.accepted_cb = fill;
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, trywrite_peer, &p), 0);
  int drained_before_all = 0;
  if (!with_close_write) {
    /* on_drain must mean every byte reached the kernel: the loop stops
     * then, and the peer still gets all of them. */
    srv_run_until(&s, &s.drained, 1);
    drained_before_all = sp_get(&s.drained) ? 0 : -1;
    /* The peer gives up a read after GUARD_MS (SO_RCVTIMEO): wait longer,
     * so that the loop cannot flush what drain should have waited for. */
    uint64_t end = tu_now_ms() + 3 * GUARD_MS;
    while (!sp_get(&p.result) && tu_now_ms() < end)
      tu_sleep_ms(1);
    if (s.conn[0] && !sp_get(&s.closed[0]))
      rill_conn_close(s.conn[0]);
  }
  srv_run_until(&s, &p.done, 1);
  sp_put(&p.stop, 1);
  pthread_join(th, NULL);
  srv_teardown(&s);
  peer_free(&p);
  assert_int_equal(drained_before_all, 0);
  assert_true(filled);  /* the socket did fill */
  assert_int_equal(peer_got, reported);
  assert_memory_equal(peer_buf, pattern, reported);
  assert_true(peer_clean);
}

static void test_try_write_partial_record(void **state) {
  (void)state;
  run_trywrite(0);
}

static void test_close_write_full_socket(void **state) {
  (void)state;
  run_trywrite(1);
}

/* ---- 3. EOF or error in the same read as data ------------------------- */

static int eof_corrupt;
static rill_timer *restart;

static void on_restart(rill_timer *t, void *arg) {
  (void)t;
  rill_conn_read_start(arg);
}

static void eof_data(srv *s, int i) {
  /* A pause in reading must not lose the end kept for the next read. */
  if (s->in_len[i] == 5) {
    rill_conn_read_stop(s->conn[i]);
    rill_timer_start(restart, RILL_MSEC, 0);
  }
}

static void eof_accepted(srv *s, int i) {
  assert_int_equal(rill_timer_new(s->base, on_restart, s->conn[i], &restart), 0);
}

static void *eof_peer(void *arg) {
  peer *p = arg;
  if (peer_connect(p, 0) < 0)
    goto out;
  int on = 1, off = 0;
  setsockopt(p->fd[0], IPPROTO_TCP, TCP_CORK, &on, sizeof on);  /* one segment */
  SSL_write(p->ssl[0], "hello", 5);
  if (eof_corrupt) {
    if (write(p->fd[0], corrupt_record, sizeof corrupt_record - 1) < 0)
      goto out;
  } else {
    SSL_shutdown(p->ssl[0]);  /* our write side ends; TCP stays open */
  }
  setsockopt(p->fd[0], IPPROTO_TCP, TCP_CORK, &off, sizeof off);
  sp_put(&p->done, 1);
  sp_wait_for(&p->stop, 1);  /* keeps the socket open until the test is over */
  return NULL;
out:
  sp_put(&p->done, 1);
  return NULL;
}

static void run_eof(int corrupt) {
  srv s;
  peer p;
  srv_setup(&s);
  peer_init(&p, &s);
  eof_corrupt = corrupt;
  restart = NULL;
  s.accepted_cb = eof_accepted;
  s.data_cb = eof_data;
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, eof_peer, &p), 0);
  srv_run_until(&s, &s.ended[0], 1);
  int status = sp_get(&s.status[0]);
  char got[sizeof s.in[0]];
  memcpy(got, s.in[0], sizeof got);
  got[s.in_len[0]] = '\0';
  sp_put(&p.stop, 1);
  pthread_join(th, NULL);
  rill_timer_free(restart);
  srv_teardown(&s);
  peer_free(&p);
  assert_string_equal(got, "hello");
  if (corrupt)
    assert_true(status < 0 && status != RILL_EOF && status != RILL_ETLS_TRUNCATED);
  else
    assert_int_equal(status, RILL_EOF);
}

static void test_eof_with_data(void **state) {
  (void)state;
  run_eof(0);
}

static void test_error_with_data(void **state) {
  (void)state;
  run_eof(1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stale_error_queue),
      cmocka_unit_test(test_try_write_partial_record),
      cmocka_unit_test(test_close_write_full_socket),
      cmocka_unit_test(test_eof_with_data),
      cmocka_unit_test(test_error_with_data),
  };
  int r = cmocka_run_group_tests(tests, tp_certs_setup, tp_certs_teardown);
  free(pattern);
  return r;
}

#else /* built without TLS */

static void test_not_supported(void **state) {
  (void)state;
  rill_tls_config *cfg = NULL;
  assert_int_equal(rill_tls_config_new(RILL_TLS_SERVER, &cfg), RILL_ENOTSUP);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_not_supported)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
