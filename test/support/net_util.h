/* Socket helpers for the network conformance tests: raw loopback peers,
 * connected pairs with a rill connection on one side and a plain socket on
 * the other, a byte pattern that detects lost, duplicated or reordered
 * bytes, and peers driven by the base (a sink that reads, a source that
 * writes).
 *
 * Include <stdarg.h>, <stddef.h>, <setjmp.h>, <cmocka.h> and test_util.h
 * before this file. */
#ifndef RILL_NET_UTIL_H
#define RILL_NET_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rill.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 if an IPv6 socket can be bound to ::1. */
int nu_ipv6_ok(void);

/* A TCP port on `ip` ("127.0.0.1" or "::1") that nothing listens on: bound
 * to port 0, read back, closed. */
int nu_free_port(const char *ip);

/* Fills a sockaddr for ip:port; returns its length. */
socklen_t nu_sockaddr(const char *ip, int port, struct sockaddr_storage *ss);

/* A raw blocking listening socket on ip:0 with `backlog`; *port gets the
 * kernel's port. Fails the test on error. */
int nu_raw_listen(const char *ip, int backlog, int *port);

/* A raw blocking connect to ip:port. Returns the descriptor, or -errno. */
int nu_raw_connect(const char *ip, int port);

/* A non-blocking connect; returns the descriptor (connecting or connected)
 * or -errno. */
int nu_raw_connect_nb(const char *ip, int port);

/* Waits up to `ms` for a non-blocking connect to finish: 1 connected, 0 not
 * yet, -errno failed. */
int nu_wait_connected(int fd, int ms);

/* getsockopt(fd, level, name) as an int; fails the test on error. */
int nu_getint(int fd, int level, int name);

/* The port of a socket's local address. */
int nu_local_port(int fd);

/* Writes all of `len` bytes to a (possibly non-blocking) socket, polling
 * when it is full, for at most `ms`. Returns the bytes written. */
size_t nu_send_all(int fd, const void *data, size_t len, int ms);

/* Reads exactly `len` bytes (polling, at most `ms`). Returns bytes read
 * (short on EOF, error or time-out). */
size_t nu_recv_all(int fd, void *buf, size_t len, int ms);

/* Waits up to `ms` for EOF on `fd`, discarding data. Returns 1 on EOF, 0 on
 * time-out, -errno on error; *discarded (may be NULL) counts bytes. */
int nu_wait_eof(int fd, int ms, size_t *discarded);

/* The test pattern: byte `off` of an endless stream that has no short
 * period, so a lost, repeated or reordered block shows. */
unsigned char nu_pat(uint64_t off);
void nu_pat_fill(void *buf, uint64_t off, size_t len);
/* Index of the first byte of `buf` that differs from the pattern at `off`,
 * or -1. */
long nu_pat_check(const void *buf, uint64_t off, size_t len);

/* A connected pair: `conn` is a rill connection (started with no events),
 * `peer` a plain non-blocking socket on the other end. */
typedef struct nu_pair {
  rill_conn *conn;
  int peer;
} nu_pair;

/* `conn` accepted by rill_listen("tcp", ip:0, opts) from a raw connect. */
void nu_pair_accepted(rill_base *base, const char *ip, const rill_socket_config *opts, nu_pair *out);
/* `conn` made by rill_dial(opts) to a raw listener. */
void nu_pair_dialed(rill_base *base, const char *ip, const rill_socket_config *opts, nu_pair *out);

/* Closes what is left of a pair: aborts `conn` (if not NULL) and runs the
 * loop until its close callback ran; closes `peer` (if >= 0). Only use it
 * when no other handle is active on the base. */
void nu_pair_cleanup(rill_base *base, nu_pair *p);

/* A peer that reads everything from `fd` from the base's loop, checking
 * the pattern (when `check`) and counting bytes, until EOF or an error. */
typedef struct nu_sink {
  rill_io *io;
  int fd;
  uint64_t got;
  long bad_at;     /* first stream offset that broke the pattern, or -1 */
  int eof;
  int err;         /* -errno of a failed read */
  int check;       /* compare against nu_pat */
  size_t per_call; /* bytes read per callback at most (0: no limit) */
  unsigned char *copy; /* if not NULL, bytes are also stored here ... */
  size_t copy_cap;     /* ... up to this many */
  rill_base *stop_base; /* if set, rill_base_stop() at EOF/error */
} nu_sink;

void nu_sink_start(rill_base *base, nu_sink *s, int fd, int check);
void nu_sink_stop(nu_sink *s);

/* A peer that writes `total` bytes of the pattern to `fd` from the loop and
 * then, if `shut`, shuts its write side down. */
typedef struct nu_source {
  rill_io *io;
  int fd;
  uint64_t sent;
  uint64_t total;
  int shut;
  int err;
  int hit_again; /* a send met EAGAIN at least once */
} nu_source;

void nu_source_start(rill_base *base, nu_source *s, int fd, uint64_t total, int shut);
void nu_source_stop(nu_source *s);

/* A listener that records what it accepts. */
#define NU_MAX_CONNS 64
typedef struct nu_server {
  rill_base *base;
  rill_listener *l;
  rill_conn *conns[NU_MAX_CONNS]; /* accepted and kept (not closed at once) */
  int n;
  int accepted;       /* connections accepted */
  int errors;         /* accept callbacks with status < 0 */
  int last_error;
  int close_accepted; /* close each connection at once */
  int stop_at;        /* rill_base_stop() when `accepted` reaches it (0: never) */
} nu_server;

/* rill_listen(base, network, address, opts) into `srv` (zeroed first
 * except close_accepted and stop_at). Returns rill_listen's result. */
int nu_server_listen(rill_base *base, nu_server *srv, const char *network, const char *address,
                     const rill_socket_config *opts);
/* Closes the listener and aborts the kept connections; the loop must run
 * afterwards to finish them (nu_settle()). */
void nu_server_close(nu_server *srv);

/* The result of one rill_dial(). */
typedef struct nu_dial {
  rill_conn *conn;
  int status;
  int calls;
  uint64_t done_ms; /* tu_now_ms() in the callback */
  char err[256];    /* rill_dialer_format_error() of a failure */
  rill_base *stop_base; /* if set, rill_base_stop() in the callback */
  int close_conn;   /* close a connection at once */
} nu_dial;

void nu_dial_cb(rill_dialer *d, rill_conn *c, int status, void *arg);

/* Runs single iterations until cond(arg) holds; fails the test after
 * `limit_ms`. */
typedef int (*nu_cond)(void *arg);
void nu_run_until(rill_base *base, nu_cond cond, void *arg, unsigned limit_ms);
/* Until *counter >= value. */
void nu_run_until_count(rill_base *base, const int *counter, int value, unsigned limit_ms);

/* Runs the loop until nothing is active (closes finishing, ...). */
void nu_settle(rill_base *base);

/* Records what on_read reports. The stream is checked against nu_pat
 * (when `check`): every call must start at the first byte not yet
 * consumed, so lost, repeated or reordered bytes show. */
typedef struct nu_reader {
  int calls;
  int data_calls;
  int eofs;
  int errors;       /* other negative statuses */
  int timeouts;     /* RILL_ETIMEOUT */
  int last_status;
  int after_final;  /* calls after EOF or an error (must stay 0) */
  int zero_len;     /* status 0 with len 0 (must stay 0, G17) */
  size_t first_len;
  size_t max_len;
  size_t eof_len;   /* bytes left unused that the EOF call showed */
  uint64_t consumed;
  long bad_at;      /* first stream offset that broke the pattern, or -1 */
  int check;
  /* How much to consume: all (default), `consume_max` at most, half
   * (rounded up) with `consume_half`, nothing with `consume_none`. */
  size_t consume_max;
  int consume_half;
  int consume_none;
  uint64_t timeout_at_ms; /* tu_now_ms() of the last RILL_ETIMEOUT */
  uint64_t eof_at_ms;
  unsigned char *copy;    /* consumed bytes are stored here ... */
  size_t copy_cap;        /* ... up to this many */
  rill_base *stop_base;   /* rill_base_stop() on EOF, errors and time-outs */
  uint64_t stop_at_bytes; /* ... and once `consumed` reaches this (0: never) */
  int close_on_final;     /* rill_conn_close() on EOF or an error */
  int closes;             /* on_close calls */
  rill_conn **conn_slot;  /* set to NULL by on_close */
} nu_reader;

void nu_reader_init(nu_reader *r);
size_t nu_on_read(rill_conn *conn, const char *data, size_t len, int status, void *arg);
void nu_on_close(rill_conn *conn, void *arg);
/* rill_conn_start(conn, {nu_on_read, nu_on_close}, r). */
void nu_reader_start(rill_conn *conn, nu_reader *r);

/* A one-shot timer that calls fn(arg) after `ms` and frees itself. */
typedef void (*nu_fn)(void *arg);
void nu_after(rill_base *base, uint64_t ms, nu_fn fn, void *arg);

/* Calls rill_base_stop(base) after `ms` (a one-shot, self-freeing timer). */
void nu_stop_after(rill_base *base, uint64_t ms);

/* Frees every nu_after()/nu_stop_after() timer that has not fired yet. */
void nu_after_cancel_all(void);

#ifdef __cplusplus
}
#endif

#endif /* RILL_NET_UTIL_H */
