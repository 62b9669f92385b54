/* Every public function of rill/net.h, rill/dns.h and rill/error.h that
 * takes a pointer or a length, given NULLs and odd lengths (issue 8): a
 * documented error, never a crash. One table row per call; handles are real
 * (a connected pair, a listener) where the call needs one, so the row tests
 * the argument, not the missing handle. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "rill.h"
#include "test_util.h"
#include "net_util.h"

typedef struct fixture {
  rill_base *base;
  nu_pair pair;
  rill_listener *listener;
  char buf[RILL_ADDRSTRLEN];
  struct sockaddr_storage ss; /* 127.0.0.1:80, for the format rows */
  socklen_t len;
  struct sockaddr_storage scratch; /* what the parse rows write */
  socklen_t scratch_len;
} fixture;

typedef struct row {
  const char *what;
  int (*call)(fixture *f);
  int want;
} row;

static void on_accept_ignore(rill_listener *l, rill_conn *c, int status, void *arg) {
  (void)l;
  (void)status;
  (void)arg;
  if (c)
    rill_conn_abort(c);
}
static void on_dial_ignore(rill_dialer *d, rill_conn *c, int status, void *arg) {
  (void)d;
  (void)status;
  (void)arg;
  if (c)
    rill_conn_abort(c);
}
static void on_write_ignore(rill_conn *c, int status, size_t written, void *arg) {
  (void)c;
  (void)status;
  (void)written;
  (void)arg;
}
static void on_resolve_ignore(rill_dns_query *q, int status, const rill_dns_result *r, void *arg) {
  (void)q;
  (void)status;
  (void)r;
  (void)arg;
}

/* Rows are written as functions: C99 has no lambdas. */
#define F(name, expr)                \
  static int name(fixture *f) {      \
    (void)f;                         \
    return (expr);                   \
  }

/* ---- addresses ----------------------------------------------------------- */
F(parse_null_network, rill_addr_parse(NULL, "127.0.0.1:1", &f->scratch, &f->scratch_len))
F(parse_null_address, rill_addr_parse("tcp", NULL, &f->scratch, &f->scratch_len))
F(parse_null_out, rill_addr_parse("tcp", "127.0.0.1:1", NULL, &f->scratch_len))
F(parse_null_len, rill_addr_parse("tcp", "127.0.0.1:1", &f->scratch, NULL))
F(parse_unknown_network, rill_addr_parse("udp", "127.0.0.1:1", &f->scratch, &f->scratch_len))
F(parse_empty_address, rill_addr_parse("tcp", "", &f->scratch, &f->scratch_len))
F(parse_empty_unix, rill_addr_parse("unix", "", &f->scratch, &f->scratch_len))
F(parse_long_unix,
  rill_addr_parse("unix", "/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                  &f->scratch, &f->scratch_len))
F(parse_long_host,
  rill_addr_parse("tcp", "[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]:1",
                  &f->scratch, &f->scratch_len))
F(parse_long_zone, rill_addr_parse("tcp", "[fe80::1%aaaaaaaaaaaaaaaaaaaaaaaaa]:1", &f->scratch, &f->scratch_len))
F(parse_empty_brackets, rill_addr_parse("tcp", "[]:1", &f->scratch, &f->scratch_len))
F(parse_lone_bracket, rill_addr_parse("tcp", "[:1", &f->scratch, &f->scratch_len))
F(parse_port_sign, rill_addr_parse("tcp", "127.0.0.1:+1", &f->scratch, &f->scratch_len))
F(parse_port_huge, rill_addr_parse("tcp", "127.0.0.1:99999999999999999999", &f->scratch, &f->scratch_len))
F(format_null_sa, rill_addr_format(NULL, 16, f->buf, sizeof f->buf))
F(format_null_buf, rill_addr_format((struct sockaddr *)&f->ss, f->len, NULL, 16))
F(format_size_0, rill_addr_format((struct sockaddr *)&f->ss, f->len, f->buf, 0))
F(format_len_0, rill_addr_format((struct sockaddr *)&f->ss, 0, f->buf, sizeof f->buf))
F(format_len_1, rill_addr_format((struct sockaddr *)&f->ss, 1, f->buf, sizeof f->buf))
F(format_size_1, rill_addr_format((struct sockaddr *)&f->ss, f->len, f->buf, 1))

/* ---- connections --------------------------------------------------------- */
F(start_null, rill_conn_start(NULL, NULL, NULL))
F(from_fd_null_base, rill_conn_from_fd(NULL, 0, NULL))
F(from_fd_null_out, rill_conn_from_fd(f->base, 0, NULL))
F(from_fd_bad_fd, rill_conn_from_fd(f->base, -1, &f->pair.conn) == RILL_EBADF ? RILL_EBADF : -1)
F(read_stop_null, rill_conn_read_stop(NULL))
F(read_start_null, rill_conn_read_start(NULL))
F(write_null_conn, rill_conn_write(NULL, "x", 1))
F(write_null_data, rill_conn_write(f->pair.conn, NULL, 5))
F(write_zero_null, rill_conn_write(f->pair.conn, NULL, 0))
F(write_ref_null_conn, rill_conn_write_ref(NULL, "x", 1, on_write_ignore, NULL))
F(write_ref_null_done, rill_conn_write_ref(f->pair.conn, "x", 1, NULL, NULL))
F(write_ref_null_data, rill_conn_write_ref(f->pair.conn, NULL, 5, on_write_ignore, NULL))
F(queued_null, (int)rill_conn_write_queued(NULL))
F(written_null, (int)rill_conn_bytes_written(NULL))
F(deadline_null, rill_conn_set_deadline(NULL, RILL_DEADLINE_BOTH, 1))
F(deadline_which_0, rill_conn_set_deadline(f->pair.conn, 0, 1))
F(deadline_which_4, rill_conn_set_deadline(f->pair.conn, 4, 1))
F(deadline_which_neg, rill_conn_set_deadline(f->pair.conn, -1, 1))
F(close_write_null, rill_conn_close_write(NULL))
F(close_null, rill_conn_close(NULL))
F(close_now_null, rill_conn_close_now(NULL))
F(abort_null, rill_conn_abort(NULL))
F(no_delay_null, rill_conn_set_no_delay(NULL, 1))
F(keep_alive_null, rill_conn_set_keep_alive(NULL, 1, RILL_SEC))
F(linger_null, rill_conn_set_linger(NULL, 1))
F(read_buffer_null, rill_conn_set_read_buffer(NULL, 4096))
F(write_buffer_null, rill_conn_set_write_buffer(NULL, 4096))
F(conn_fd_null, rill_conn_fd(NULL))
F(conn_base_null, rill_conn_base(NULL) == NULL ? 0 : -1)
F(conn_network_null, rill_conn_network(NULL) == NULL ? 0 : -1)
F(local_addr_null_conn, rill_conn_local_addr(NULL, f->buf, sizeof f->buf))
F(local_addr_null_buf, rill_conn_local_addr(f->pair.conn, NULL, 16))
F(local_addr_size_0, rill_conn_local_addr(f->pair.conn, f->buf, 0))
F(local_addr_size_1, rill_conn_local_addr(f->pair.conn, f->buf, 1))
F(remote_addr_null_conn, rill_conn_remote_addr(NULL, f->buf, sizeof f->buf))
F(remote_addr_null_buf, rill_conn_remote_addr(f->pair.conn, NULL, 16))
F(remote_addr_size_0, rill_conn_remote_addr(f->pair.conn, f->buf, 0))
F(conn_format_null_conn, rill_conn_format_error(NULL, "read", RILL_EOF, f->buf, sizeof f->buf))
F(conn_format_null_op, rill_conn_format_error(f->pair.conn, NULL, RILL_EOF, f->buf, sizeof f->buf))
F(conn_format_null_buf, rill_conn_format_error(f->pair.conn, "read", RILL_EOF, NULL, 16))
F(conn_format_measure, rill_conn_format_error(f->pair.conn, "read", RILL_EOF, NULL, 0) > 0 ? 0 : -1)
F(conn_format_size_1,
  rill_conn_format_error(f->pair.conn, "read", RILL_EOF, f->buf, 1) > 0 && f->buf[0] == '\0' ? 0 : -1)

/* ---- listeners and dialers ----------------------------------------------- */
F(listen_null_base, rill_listen(NULL, "tcp", "127.0.0.1:0", NULL, on_accept_ignore, NULL, &f->listener))
F(listen_null_network, rill_listen(f->base, NULL, "127.0.0.1:0", NULL, on_accept_ignore, NULL, &f->listener))
F(listen_null_address, rill_listen(f->base, "tcp", NULL, NULL, on_accept_ignore, NULL, &f->listener))
F(listen_null_cb, rill_listen(f->base, "tcp", "127.0.0.1:0", NULL, NULL, NULL, &f->listener))
F(listen_null_out, rill_listen(f->base, "tcp", "127.0.0.1:0", NULL, on_accept_ignore, NULL, NULL))
F(listen_bad_zone, rill_listen(f->base, "tcp", "[::1%-1]:0", NULL, on_accept_ignore, NULL, &f->listener))
F(listener_addr_null, rill_listener_addr(NULL, f->buf, sizeof f->buf))
F(listener_addr_null_buf, rill_listener_addr(f->listener, NULL, 16))
F(listener_addr_size_0, rill_listener_addr(f->listener, f->buf, 0))
F(listener_addr_size_1, rill_listener_addr(f->listener, f->buf, 1))
F(listener_port_null, rill_listener_port(NULL))
F(listener_fd_null, rill_listener_fd(NULL))
F(listener_pause_null, rill_listener_stop(NULL))
F(listener_resume_null, rill_listener_start(NULL))
F(listener_close_null, (rill_listener_free(NULL), 0))
F(dial_null_base, rill_dial(NULL, "tcp", "127.0.0.1:1", NULL, on_dial_ignore, NULL, NULL))
F(dial_null_network, rill_dial(f->base, NULL, "127.0.0.1:1", NULL, on_dial_ignore, NULL, NULL))
F(dial_null_address, rill_dial(f->base, "tcp", NULL, NULL, on_dial_ignore, NULL, NULL))
F(dial_null_cb, rill_dial(f->base, "tcp", "127.0.0.1:1", NULL, NULL, NULL, NULL))
F(dial_bad_address, rill_dial(f->base, "tcp", "127.0.0.1", NULL, on_dial_ignore, NULL, NULL))
F(dialer_cancel_null, rill_dialer_cancel(NULL))
F(dialer_format_null, rill_dialer_format_error(NULL, RILL_EOF, f->buf, sizeof f->buf))
F(op_null_buf_sized, rill_format_op_error("dial", "tcp", NULL, NULL, NULL, RILL_EOF, NULL, 4))
F(op_null_op, rill_format_op_error(NULL, "tcp", NULL, NULL, NULL, RILL_EOF, f->buf, sizeof f->buf))
F(op_null_network, rill_format_op_error("dial", NULL, NULL, NULL, NULL, RILL_EOF, f->buf, sizeof f->buf))

/* ---- DNS and errors ------------------------------------------------------ */
F(resolve_null_base, rill_resolve(NULL, "localhost", AF_UNSPEC, NULL, on_resolve_ignore, NULL, NULL))
F(resolve_null_host, rill_resolve(f->base, NULL, AF_UNSPEC, NULL, on_resolve_ignore, NULL, NULL))
F(resolve_null_cb, rill_resolve(f->base, "localhost", AF_UNSPEC, NULL, NULL, NULL, NULL))
F(resolve_bad_family, rill_resolve(f->base, "localhost", AF_UNIX, NULL, on_resolve_ignore, NULL, NULL))
F(resolve_cancel_null, rill_dns_query_cancel(NULL))
F(check_name_null, rill_dns_check_name(NULL))
F(check_name_empty, rill_dns_check_name(""))
F(check_name_dots, rill_dns_check_name(".."))
F(strerror_never_null, rill_strerror(-123456789) != NULL && rill_strerror(123) != NULL ? 0 : -1)
F(err_name_never_null, rill_err_name(-123456789) != NULL && rill_err_name(-1) != NULL ? 0 : -1)

#define R(name, want) {#name, name, want}
static const row rows[] = {
    R(parse_null_network, RILL_EINVAL),
    R(parse_null_address, RILL_EINVAL),
    R(parse_null_out, RILL_EINVAL),
    R(parse_null_len, RILL_EINVAL),
    R(parse_unknown_network, RILL_EUNKNOWN_NETWORK),
    R(parse_empty_address, RILL_EADDR_MISSING),
    R(parse_empty_unix, RILL_EADDR_MISSING),
    R(parse_long_unix, RILL_EINVAL),
    R(parse_long_host, RILL_EINVAL),
    R(parse_long_zone, RILL_EINVAL),
    R(parse_empty_brackets, 0) /* Go: "[]:1" is the wildcard */,
    R(parse_lone_bracket, RILL_EADDR_NOBRACKET),
    R(parse_port_sign, 0) /* Go: "+1" is port 1 */,
    R(parse_port_huge, RILL_EADDR_PORT),
    R(format_null_sa, RILL_EINVAL),
    R(format_null_buf, RILL_EINVAL),
    R(format_size_0, RILL_EINVAL),
    R(format_len_0, RILL_EINVAL),
    R(format_len_1, RILL_EINVAL),
    R(format_size_1, RILL_EINVAL),
    R(start_null, RILL_EINVAL),
    R(from_fd_null_base, RILL_EINVAL),
    R(from_fd_null_out, RILL_EINVAL),
    R(from_fd_bad_fd, RILL_EBADF),
    R(read_stop_null, RILL_EINVAL),
    R(read_start_null, RILL_EINVAL),
    R(write_null_conn, RILL_EINVAL),
    R(write_null_data, RILL_EINVAL),
    R(write_zero_null, 0),
    R(write_ref_null_conn, RILL_EINVAL),
    R(write_ref_null_done, RILL_EINVAL),
    R(write_ref_null_data, RILL_EINVAL),
    R(queued_null, 0),
    R(written_null, 0),
    R(deadline_null, RILL_EINVAL),
    R(deadline_which_0, RILL_EINVAL),
    R(deadline_which_4, RILL_EINVAL),
    R(deadline_which_neg, RILL_EINVAL),
    R(close_write_null, RILL_EINVAL),
    R(close_null, RILL_EINVAL),
    R(close_now_null, RILL_EINVAL),
    R(abort_null, RILL_EINVAL),
    R(no_delay_null, RILL_EINVAL),
    R(keep_alive_null, RILL_EINVAL),
    R(linger_null, RILL_EINVAL),
    R(read_buffer_null, RILL_EINVAL),
    R(write_buffer_null, RILL_EINVAL),
    R(conn_fd_null, RILL_EINVAL),
    R(conn_base_null, 0),
    R(conn_network_null, 0),
    R(local_addr_null_conn, RILL_EINVAL),
    R(local_addr_null_buf, RILL_EINVAL),
    R(local_addr_size_0, RILL_EINVAL),
    R(local_addr_size_1, RILL_EINVAL),
    R(remote_addr_null_conn, RILL_EINVAL),
    R(remote_addr_null_buf, RILL_EINVAL),
    R(remote_addr_size_0, RILL_EINVAL),
    R(conn_format_null_conn, RILL_EINVAL),
    R(conn_format_null_op, RILL_EINVAL),
    R(conn_format_null_buf, RILL_EINVAL),
    R(conn_format_measure, 0),
    R(conn_format_size_1, 0),
    R(listen_null_base, RILL_EINVAL),
    R(listen_null_network, RILL_EINVAL),
    R(listen_null_address, RILL_EINVAL),
    R(listen_null_cb, RILL_EINVAL),
    R(listen_null_out, RILL_EINVAL),
    R(listen_bad_zone, RILL_EINVAL),
    R(listener_addr_null, RILL_EINVAL),
    R(listener_addr_null_buf, RILL_EINVAL),
    R(listener_addr_size_0, RILL_EINVAL),
    R(listener_addr_size_1, RILL_EINVAL),
    R(listener_port_null, RILL_EINVAL),
    R(listener_fd_null, RILL_EINVAL),
    R(listener_pause_null, RILL_EINVAL),
    R(listener_resume_null, RILL_EINVAL),
    R(listener_close_null, 0),
    R(dial_null_base, RILL_EINVAL),
    R(dial_null_network, RILL_EINVAL),
    R(dial_null_address, RILL_EINVAL),
    R(dial_null_cb, RILL_EINVAL),
    R(dial_bad_address, RILL_EADDR_NOPORT),
    R(dialer_cancel_null, RILL_EINVAL),
    R(dialer_format_null, RILL_EINVAL),
    R(op_null_buf_sized, RILL_EINVAL),
    R(op_null_op, RILL_EINVAL),
    R(op_null_network, RILL_EINVAL),
    R(resolve_null_base, RILL_EINVAL),
    R(resolve_null_host, RILL_EINVAL),
    R(resolve_null_cb, RILL_EINVAL),
    R(resolve_bad_family, RILL_EAFNOSUPPORT),
    R(resolve_cancel_null, RILL_EINVAL),
    R(check_name_null, RILL_EINVAL),
    R(check_name_empty, RILL_EDNS_BADNAME),
    R(check_name_dots, RILL_EDNS_BADNAME),
    R(strerror_never_null, 0),
    R(err_name_never_null, 0),
};

static void test_bad_inputs(void **state) {
  fixture f;
  rill_conn *real_conn;
  size_t i;
  int failures = 0;
  (void)state;
  memset(&f, 0, sizeof f);
  f.base = tu_base_new();
  nu_pair_accepted(f.base, "127.0.0.1", NULL, &f.pair);
  real_conn = f.pair.conn;
  assert_int_equal(rill_listen(f.base, "tcp", "127.0.0.1:0", NULL, on_accept_ignore, NULL, &f.listener), 0);
  assert_int_equal(rill_addr_parse("tcp", "127.0.0.1:80", &f.ss, &f.len), 0);
  for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    rill_listener *listener = f.listener;
    int got = rows[i].call(&f);
    /* A row must not replace the fixture's handles. */
    f.listener = listener;
    f.pair.conn = real_conn;
    if (got != rows[i].want) {
      print_error("%s: got %d (%s), want %d (%s)\n", rows[i].what, got, rill_err_name(got),
                  rows[i].want, rill_err_name(rows[i].want));
      failures++;
    }
  }
  rill_listener_free(f.listener);
  nu_pair_cleanup(f.base, &f.pair);
  nu_settle(f.base);
  tu_base_free(f.base);
  assert_int_equal(failures, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_bad_inputs, tu_setup_fds, tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
