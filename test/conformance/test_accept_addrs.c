/* An accepted connection's addresses (rill_conn_local_addr, _remote_addr).
 * Accepting asks the kernel as little as it can: the peer's address comes
 * with accept4, and a listener bound to one address lends it as every
 * connection's own. The kernel's answer for the same socket is the oracle:
 * rill_conn_from_fd on a duplicate of the accepted descriptor asks it both
 * (getsockname, getpeername), and both connections must say the same.
 *
 * Every listener shape: one IPv4 or IPv6 address, the IPv4 and the
 * dual-stack wildcards (where a connection's own address is the one its
 * client dialed, not the listener's), a Unix path and Linux's abstract
 * namespace. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "rill.h"
#include "test_util.h"
#include "net_util.h"

#define LIMIT 5000

/* A blocking Unix stream client of `path` ('@' for the abstract namespace). */
static int unix_connect(const char *path) {
  struct sockaddr_un un;
  socklen_t len;
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  memset(&un, 0, sizeof un);
  un.sun_family = AF_UNIX;
  strncpy(un.sun_path, path, sizeof un.sun_path - 1);
  len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
  if (path[0] == '@')
    un.sun_path[0] = '\0';
  else
    len++;
  assert_int_equal(connect(fd, (struct sockaddr *)&un, len), 0);
  return fd;
}

/* Accepts the connection `client` made to `srv` and checks its addresses
 * against the kernel's; `want_local` and `want_remote`, when given, are
 * the texts they must be. */
static void check_accepted(rill_base *base, nu_server *srv, int client, const char *want_local,
                           const char *want_remote) {
  char local[RILL_ADDRSTRLEN], remote[RILL_ADDRSTRLEN];
  char kernel_local[RILL_ADDRSTRLEN], kernel_remote[RILL_ADDRSTRLEN];
  rill_conn *asked;
  int before = srv->accepted;
  assert_true(client >= 0);
  nu_run_until_count(base, &srv->accepted, before + 1, LIMIT);
  assert_true(srv->n > 0);
  rill_conn *accepted = srv->conns[srv->n - 1];
  assert_true(rill_conn_local_addr(accepted, local, sizeof local) >= 0);
  assert_true(rill_conn_remote_addr(accepted, remote, sizeof remote) >= 0);

  int dup_fd = dup(rill_conn_fd(accepted));
  assert_true(dup_fd >= 0);
  /* A second watcher on the same open file is another descriptor number,
   * which every backend takes. */
  assert_int_equal(rill_conn_from_fd(base, dup_fd, &asked), 0);
  assert_true(rill_conn_local_addr(asked, kernel_local, sizeof kernel_local) >= 0);
  assert_true(rill_conn_remote_addr(asked, kernel_remote, sizeof kernel_remote) >= 0);
  assert_string_equal(local, kernel_local);
  assert_string_equal(remote, kernel_remote);
  if (want_local)
    assert_string_equal(local, want_local);
  if (want_remote)
    assert_string_equal(remote, want_remote);
  rill_conn_abort(asked);
  close(client);
}

/* The text of a TCP client's own address, as Go writes it. */
static void client_addr(int fd, char *buf, size_t size) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  char ip[64];
  int port;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
    port = ntohs(in->sin_port);
    snprintf(buf, size, "%s:%d", ip, port);
  } else {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
    port = ntohs(in6->sin6_port);
    snprintf(buf, size, "[%s]:%d", ip, port);
  }
}

static void tcp_case(const char *network, const char *listen_addr, const char *dial_ip,
                     const char *want_local_ip) {
  rill_base *base = tu_base_new();
  nu_server srv;
  char want_local[RILL_ADDRSTRLEN], want_remote[RILL_ADDRSTRLEN];
  memset(&srv, 0, sizeof srv);
  assert_int_equal(nu_server_listen(base, &srv, network, listen_addr, NULL), 0);
  int port = rill_listener_port(srv.l);
  int client = nu_raw_connect(dial_ip, port);
  assert_true(client >= 0);
  snprintf(want_local, sizeof want_local, strchr(want_local_ip, ':') ? "[%s]:%d" : "%s:%d",
           want_local_ip, port);
  client_addr(client, want_remote, sizeof want_remote);
  check_accepted(base, &srv, client, want_local, want_remote);
  nu_server_close(&srv);
  nu_settle(base);
  tu_base_free(base);
}

static void test_one_ipv4_address(void **state) {
  (void)state;
  tcp_case("tcp", "127.0.0.1:0", "127.0.0.1", "127.0.0.1");
}

static void test_ipv4_wildcard(void **state) {
  (void)state;
  tcp_case("tcp4", "0.0.0.0:0", "127.0.0.1", "127.0.0.1");
}

static void test_one_ipv6_address(void **state) {
  (void)state;
  if (!nu_ipv6_ok())
    skip();
  tcp_case("tcp", "[::1]:0", "::1", "::1");
}

/* The dual-stack wildcard: an IPv4 client's connection is an IPv4 one
 * (Go unmaps ::ffff:127.0.0.1), an IPv6 client's an IPv6 one. */
static void test_dual_stack_wildcard(void **state) {
  (void)state;
  if (!nu_ipv6_ok())
    skip();
  tcp_case("tcp", ":0", "127.0.0.1", "127.0.0.1");
  tcp_case("tcp", ":0", "::1", "::1");
}

static void unix_case(const char *path) {
  rill_base *base = tu_base_new();
  nu_server srv;
  memset(&srv, 0, sizeof srv);
  assert_int_equal(nu_server_listen(base, &srv, "unix", path, NULL), 0);
  check_accepted(base, &srv, unix_connect(path), path, NULL);
  nu_server_close(&srv);
  nu_settle(base);
  tu_base_free(base);
}

static void test_unix_path(void **state) {
  char path[64];
  (void)state;
  snprintf(path, sizeof path, "/tmp/rill-accept-addrs-%d.sock", (int)getpid());
  unlink(path);
  unix_case(path);
}

static void test_unix_abstract(void **state) {
  char name[64];
  (void)state;
#ifndef __linux__
  skip();
#endif
  snprintf(name, sizeof name, "@rill-accept-addrs-%d", (int)getpid());
  unix_case(name);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_one_ipv4_address), cmocka_unit_test(test_ipv4_wildcard),
      cmocka_unit_test(test_one_ipv6_address), cmocka_unit_test(test_dual_stack_wildcard),
      cmocka_unit_test(test_unix_path),        cmocka_unit_test(test_unix_abstract),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
