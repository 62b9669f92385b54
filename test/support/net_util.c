#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_util.h"
#include "net_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- raw sockets ---------------------------------------------------- */

socklen_t nu_sockaddr(const char *ip, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (strchr(ip, ':')) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
    return sizeof *in6;
  } else {
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)port);
    assert_int_equal(inet_pton(AF_INET, ip, &in4->sin_addr), 1);
    return sizeof *in4;
  }
}

int nu_ipv6_ok(void) {
  static int cached = -1;
  if (cached < 0) {
    struct sockaddr_storage ss;
    socklen_t len = nu_sockaddr("::1", 0, &ss);
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cached = fd >= 0 && bind(fd, (struct sockaddr *)&ss, len) == 0;
    if (fd >= 0) close(fd);
  }
  return cached;
}

int nu_local_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
  if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int nu_free_port(const char *ip) {
  struct sockaddr_storage ss;
  socklen_t len = nu_sockaddr(ip, 0, &ss);
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int port;
  assert_true(fd >= 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&ss, len), 0);
  port = nu_local_port(fd);
  close(fd);
  return port;
}

int nu_raw_listen(const char *ip, int backlog, int *port) {
  struct sockaddr_storage ss;
  socklen_t len = nu_sockaddr(ip, 0, &ss);
  int one = 1;
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  assert_int_equal(bind(fd, (struct sockaddr *)&ss, len), 0);
  assert_int_equal(listen(fd, backlog), 0);
  *port = nu_local_port(fd);
  return fd;
}

int nu_raw_connect(const char *ip, int port) {
  struct sockaddr_storage ss;
  socklen_t len = nu_sockaddr(ip, port, &ss);
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int rc;
  if (fd < 0) return -errno;
  do {
    rc = connect(fd, (struct sockaddr *)&ss, len);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  return fd;
}

int nu_raw_connect_nb(const char *ip, int port) {
  struct sockaddr_storage ss;
  socklen_t len = nu_sockaddr(ip, port, &ss);
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
  if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
    int err = -errno;
    close(fd);
    return err;
  }
  return fd;
}

int nu_wait_connected(int fd, int ms) {
  struct pollfd p;
  int soerr = 0;
  socklen_t len = sizeof soerr;
  p.fd = fd;
  p.events = POLLOUT;
  p.revents = 0;
  if (poll(&p, 1, ms) <= 0) return 0;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) return -errno;
  if (soerr) return -soerr;
  return 1;
}

int nu_getint(int fd, int level, int name) {
  int v = -12345;
  socklen_t len = sizeof v;
  int rc = getsockopt(fd, level, name, &v, &len);
  if (rc != 0) fprintf(stderr, "getsockopt(%d, %d, %d): %s\n", fd, level, name, strerror(errno));
  assert_int_equal(rc, 0);
  return v;
}

static int poll_for(int fd, short events, int ms) {
  struct pollfd p;
  p.fd = fd;
  p.events = events;
  p.revents = 0;
  return poll(&p, 1, ms);
}

size_t nu_send_all(int fd, const void *data, size_t len, int ms) {
  const char *p = (const char *)data;
  size_t done = 0;
  uint64_t until = tu_now_ms() + (uint64_t)ms;
  while (done < len) {
    ssize_t n = send(fd, p + done, len - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      uint64_t now = tu_now_ms();
      if (now >= until) break;
      poll_for(fd, POLLOUT, (int)(until - now));
      continue;
    }
    break;
  }
  return done;
}

size_t nu_recv_all(int fd, void *buf, size_t len, int ms) {
  char *p = (char *)buf;
  size_t done = 0;
  uint64_t until = tu_now_ms() + (uint64_t)ms;
  while (done < len) {
    ssize_t n = recv(fd, p + done, len - done, 0);
    if (n > 0) {
      done += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      uint64_t now = tu_now_ms();
      if (now >= until) break;
      poll_for(fd, POLLIN, (int)(until - now));
      continue;
    }
    break;
  }
  return done;
}

int nu_wait_eof(int fd, int ms, size_t *discarded) {
  char buf[65536];
  uint64_t until = tu_now_ms() + (uint64_t)ms;
  if (discarded) *discarded = 0;
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      if (discarded) *discarded += (size_t)n;
      continue;
    }
    if (n == 0) return 1;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
    {
      uint64_t now = tu_now_ms();
      if (now >= until) return 0;
      poll_for(fd, POLLIN, (int)(until - now));
    }
  }
}

/* ---- the pattern ------------------------------------------------------ */

unsigned char nu_pat(uint64_t off) {
  uint64_t x = off + 0x9E3779B97F4A7C15ull * (off >> 12);
  x ^= x >> 7;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return (unsigned char)(x >> 24);
}

void nu_pat_fill(void *buf, uint64_t off, size_t len) {
  unsigned char *p = (unsigned char *)buf;
  size_t i;
  for (i = 0; i < len; i++) p[i] = nu_pat(off + i);
}

long nu_pat_check(const void *buf, uint64_t off, size_t len) {
  const unsigned char *p = (const unsigned char *)buf;
  size_t i;
  for (i = 0; i < len; i++)
    if (p[i] != nu_pat(off + i)) return (long)i;
  return -1;
}

/* ---- pairs -------------------------------------------------------------- */

struct accept_one {
  rill_conn *conn;
  int status;
  int calls;
};

static void accept_one_cb(rill_listener *l, rill_conn *c, int status, void *arg) {
  struct accept_one *a = (struct accept_one *)arg;
  a->calls++;
  a->status = status;
  if (status == 0 && !a->conn) {
    a->conn = c;
    rill_listener_free(l);
  } else if (c) {
    rill_conn_close(c);
  }
}

void nu_pair_accepted(rill_base *base, const char *ip, const rill_socket_config *opts, nu_pair *out) {
  struct accept_one a;
  rill_listener *l = NULL;
  char addr[64];
  int fd;
  memset(&a, 0, sizeof a);
  snprintf(addr, sizeof addr, strchr(ip, ':') ? "[%s]:0" : "%s:0", ip);
  assert_int_equal(rill_listen(base, "tcp", addr, opts, accept_one_cb, &a, &l), 0);
  fd = nu_raw_connect(ip, rill_listener_port(l));
  assert_true(fd >= 0);
  TU_RUN(base, RILL_RUN_DEFAULT, 5000);
  assert_int_equal(a.status, 0);
  assert_non_null(a.conn);
  tu_nonblock(fd);
  out->conn = a.conn;
  out->peer = fd;
}

struct dial_one {
  rill_conn *conn;
  int status;
  int calls;
};

static void dial_one_cb(rill_dialer *d, rill_conn *c, int status, void *arg) {
  struct dial_one *r = (struct dial_one *)arg;
  (void)d;
  r->calls++;
  r->status = status;
  r->conn = c;
}

void nu_pair_dialed(rill_base *base, const char *ip, const rill_socket_config *opts, nu_pair *out) {
  struct dial_one r;
  int port, lfd, fd;
  char addr[64];
  memset(&r, 0, sizeof r);
  lfd = nu_raw_listen(ip, 16, &port);
  snprintf(addr, sizeof addr, strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip, port);
  assert_int_equal(rill_dial(base, "tcp", addr, opts, dial_one_cb, &r, NULL), 0);
  TU_RUN(base, RILL_RUN_DEFAULT, 5000);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.status, 0);
  assert_non_null(r.conn);
  fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  assert_true(fd >= 0);
  close(lfd);
  out->conn = r.conn;
  out->peer = fd;
}

static void cleanup_on_close(rill_conn *c, void *arg) {
  (void)c;
  *(int *)arg = 1;
}

void nu_pair_cleanup(rill_base *base, nu_pair *p) {
  nu_after_cancel_all();
  if (p->conn) {
    int closed = 0;
    rill_conn_events ev;
    memset(&ev, 0, sizeof ev);
    ev.on_close = cleanup_on_close;
    /* A connection already closing keeps its own callbacks: just abort. */
    if (rill_conn_start(p->conn, &ev, &closed) == 0) {
      assert_int_equal(rill_conn_abort(p->conn), 0);
      TU_RUN(base, RILL_RUN_DEFAULT, 5000);
      assert_int_equal(closed, 1);
    } else {
      rill_conn_abort(p->conn);
      TU_RUN(base, RILL_RUN_DEFAULT, 5000);
    }
    p->conn = NULL;
  }
  if (p->peer >= 0) {
    close(p->peer);
    p->peer = -1;
  }
}

/* ---- server and dial records --------------------------------------------- */

static void server_cb(rill_listener *l, rill_conn *c, int status, void *arg) {
  nu_server *s = (nu_server *)arg;
  (void)l;
  if (status < 0) {
    s->errors++;
    s->last_error = status;
    assert_null(c);
    return;
  }
  assert_non_null(c);
  s->accepted++;
  if (s->close_accepted || s->n == NU_MAX_CONNS)
    assert_int_equal(rill_conn_close(c), 0);
  else
    s->conns[s->n++] = c;
  if (s->stop_at && s->accepted == s->stop_at) rill_base_stop(s->base);
}

int nu_server_listen(rill_base *base, nu_server *srv, const char *network, const char *address,
                     const rill_socket_config *opts) {
  int close_accepted = srv->close_accepted, stop_at = srv->stop_at;
  memset(srv, 0, sizeof *srv);
  srv->close_accepted = close_accepted;
  srv->stop_at = stop_at;
  srv->base = base;
  return rill_listen(base, network, address, opts, server_cb, srv, &srv->l);
}

void nu_server_close(nu_server *srv) {
  int i;
  if (srv->l) rill_listener_free(srv->l);
  srv->l = NULL;
  for (i = 0; i < srv->n; i++) rill_conn_abort(srv->conns[i]);
  srv->n = 0;
}

void nu_dial_cb(rill_dialer *d, rill_conn *c, int status, void *arg) {
  nu_dial *r = (nu_dial *)arg;
  r->calls++;
  r->status = status;
  r->conn = c;
  r->done_ms = tu_now_ms();
  if (status != 0) {
    assert_null(c);
    assert_true(rill_dialer_format_error(d, status, r->err, sizeof r->err) > 0);
  } else {
    assert_non_null(c);
    if (r->close_conn) {
      assert_int_equal(rill_conn_close(c), 0);
      r->conn = NULL;
    }
  }
  if (r->stop_base) rill_base_stop(r->stop_base);
}

void nu_run_until(rill_base *base, nu_cond cond, void *arg, unsigned limit_ms) {
  uint64_t until = tu_now_ms() + limit_ms;
  while (!cond(arg)) {
    uint64_t now = tu_now_ms();
    if (now >= until) fail_msg("condition not met within %u ms", limit_ms);
    tu_run(base, RILL_RUN_ONCE, (unsigned)(until - now) + 100);
  }
}

struct count_cond {
  const int *counter;
  int value;
};

static int count_reached(void *arg) {
  struct count_cond *c = (struct count_cond *)arg;
  return *c->counter >= c->value;
}

void nu_run_until_count(rill_base *base, const int *counter, int value, unsigned limit_ms) {
  struct count_cond c;
  c.counter = counter;
  c.value = value;
  nu_run_until(base, count_reached, &c, limit_ms);
}

void nu_settle(rill_base *base) { TU_RUN(base, RILL_RUN_DEFAULT, 5000); }

/* ---- reader ---------------------------------------------------------------- */

void nu_reader_init(nu_reader *r) {
  memset(r, 0, sizeof *r);
  r->bad_at = -1;
  r->check = 1;
}

size_t nu_on_read(rill_conn *conn, const char *data, size_t len, int status, void *arg) {
  nu_reader *r = (nu_reader *)arg;
  size_t used = len;
  if (r->eofs || r->errors) r->after_final++;
  r->calls++;
  r->last_status = status;
  if (len > r->max_len) r->max_len = len;
  if (len > 0 && r->check && r->bad_at < 0) {
    long bad = nu_pat_check(data, r->consumed, len);
    if (bad >= 0) r->bad_at = (long)r->consumed + bad;
  }
  if (status == 0) {
    if (len == 0) r->zero_len++;
    if (r->data_calls++ == 0) r->first_len = len;
    if (r->consume_none)
      used = 0;
    else if (r->consume_half)
      used = (len + 1) / 2;
    else if (r->consume_max && r->consume_max < len)
      used = r->consume_max;
    if (r->copy && r->consumed < r->copy_cap) {
      size_t room = r->copy_cap - (size_t)r->consumed;
      memcpy(r->copy + r->consumed, data, used < room ? used : room);
    }
    r->consumed += used;
    if (r->stop_base && r->stop_at_bytes && r->consumed >= r->stop_at_bytes)
      rill_base_stop(r->stop_base);
    return used;
  }
  if (status == RILL_ETIMEOUT) {
    r->timeouts++;
    r->timeout_at_ms = tu_now_ms();
    if (r->stop_base) rill_base_stop(r->stop_base);
    return 0;
  }
  if (status == RILL_EOF) {
    r->eofs++;
    r->eof_len = len;
    r->eof_at_ms = tu_now_ms();
  } else {
    r->errors++;
  }
  if (r->stop_base) rill_base_stop(r->stop_base);
  if (r->close_on_final) rill_conn_close(conn);
  return 0;
}

void nu_on_close(rill_conn *conn, void *arg) {
  nu_reader *r = (nu_reader *)arg;
  (void)conn;
  r->closes++;
  if (r->conn_slot) *r->conn_slot = NULL;
}

void nu_reader_start(rill_conn *conn, nu_reader *r) {
  rill_conn_events ev;
  memset(&ev, 0, sizeof ev);
  ev.on_read = nu_on_read;
  ev.on_close = nu_on_close;
  assert_int_equal(rill_conn_start(conn, &ev, r), 0);
}

/* ---- sink and source ---------------------------------------------------- */

static void sink_cb(rill_io *io, int fd, unsigned events, void *arg) {
  nu_sink *s = (nu_sink *)arg;
  static unsigned char buf[256 * 1024];
  size_t want = sizeof buf;
  int rounds = 0;
  (void)events;
  (void)io;
  if (s->per_call && s->per_call < want) want = s->per_call;
  while (rounds++ < 16) {
    ssize_t n = recv(fd, buf, want, 0);
    if (n > 0) {
      if (s->check && s->bad_at < 0) {
        long bad = nu_pat_check(buf, s->got, (size_t)n);
        if (bad >= 0) s->bad_at = (long)s->got + bad;
      }
      if (s->copy && s->got < s->copy_cap) {
        size_t room = s->copy_cap - (size_t)s->got;
        memcpy(s->copy + s->got, buf, (size_t)n < room ? (size_t)n : room);
      }
      s->got += (uint64_t)n;
      if (s->per_call) return;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n == 0)
      s->eof = 1;
    else
      s->err = -errno;
    rill_io_stop(s->io);
    if (s->stop_base) rill_base_stop(s->stop_base);
    return;
  }
}

void nu_sink_start(rill_base *base, nu_sink *s, int fd, int check) {
  rill_base *stop = s->stop_base;
  size_t per_call = s->per_call;
  unsigned char *copy = s->copy;
  size_t copy_cap = s->copy_cap;
  memset(s, 0, sizeof *s);
  s->stop_base = stop;
  s->per_call = per_call;
  s->copy = copy;
  s->copy_cap = copy_cap;
  s->fd = fd;
  s->check = check;
  s->bad_at = -1;
  assert_int_equal(rill_io_new(base, fd, sink_cb, s, &s->io), 0);
  assert_int_equal(rill_io_start(s->io, RILL_READ), 0);
}

void nu_sink_stop(nu_sink *s) {
  rill_io_free(s->io);
  s->io = NULL;
}

static void source_cb(rill_io *io, int fd, unsigned events, void *arg) {
  nu_source *s = (nu_source *)arg;
  static unsigned char buf[64 * 1024];
  (void)events;
  while (s->sent < s->total) {
    size_t n = s->total - s->sent < sizeof buf ? (size_t)(s->total - s->sent) : sizeof buf;
    ssize_t w;
    nu_pat_fill(buf, s->sent, n);
    w = send(fd, buf, n, MSG_NOSIGNAL);
    if (w > 0) {
      s->sent += (uint64_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      s->hit_again = 1;
      return;
    }
    s->err = -errno;
    rill_io_stop(io);
    return;
  }
  if (s->shut) shutdown(fd, SHUT_WR);
  rill_io_stop(io);
}

void nu_source_start(rill_base *base, nu_source *s, int fd, uint64_t total, int shut) {
  memset(s, 0, sizeof *s);
  s->fd = fd;
  s->total = total;
  s->shut = shut;
  assert_int_equal(rill_io_new(base, fd, source_cb, s, &s->io), 0);
  assert_int_equal(rill_io_start(s->io, RILL_WRITE), 0);
}

void nu_source_stop(nu_source *s) {
  rill_io_free(s->io);
  s->io = NULL;
}

/* ---- one-shot timers ------------------------------------------------------ */

struct after {
  struct after *next, *prev;
  rill_timer *timer;
  nu_fn fn;
  void *arg;
};

static struct after *g_afters;

static void after_unlink(struct after *a) {
  if (a->prev)
    a->prev->next = a->next;
  else
    g_afters = a->next;
  if (a->next) a->next->prev = a->prev;
}

static void after_cb(rill_timer *t, void *arg) {
  struct after *a = (struct after *)arg;
  nu_fn fn = a->fn;
  void *fn_arg = a->arg;
  after_unlink(a);
  rill_timer_free(t);
  free(a);
  fn(fn_arg);
}

void nu_after(rill_base *base, uint64_t ms, nu_fn fn, void *arg) {
  struct after *a = (struct after *)calloc(1, sizeof *a);
  assert_non_null(a);
  a->fn = fn;
  a->arg = arg;
  assert_int_equal(rill_timer_new(base, after_cb, a, &a->timer), 0);
  assert_int_equal(rill_timer_start(a->timer, ms * RILL_MSEC, 0), 0);
  a->next = g_afters;
  if (g_afters) g_afters->prev = a;
  g_afters = a;
}

static void stop_fn(void *arg) { rill_base_stop((rill_base *)arg); }

void nu_stop_after(rill_base *base, uint64_t ms) { nu_after(base, ms, stop_fn, base); }

void nu_after_cancel_all(void) {
  while (g_afters) {
    struct after *a = g_afters;
    after_unlink(a);
    rill_timer_free(a->timer);
    free(a);
  }
}
