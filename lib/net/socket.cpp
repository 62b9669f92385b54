// Creating sockets and setting their options, the way Go's net package does.
//
// G1: sockets and accepted connections are non-blocking and close-on-exec
// from birth (SOCK_NONBLOCK|SOCK_CLOEXEC, accept4). Kernels that reject those
// flags (EINVAL, EPROTONOSUPPORT; ENOSYS for accept4) get the two-step
// fallback, which leaves a window where a fork+exec elsewhere could inherit
// the descriptor, as Go accepts too.
// G2: TCP_NODELAY on, keep-alive on with a 15 s idle time and interval.
// G3: the listen backlog is the kernel's somaxconn.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <atomic>
#include <cerrno>
#include <cstdio>

#include "net/net_impl.h"

namespace rill::detail {
namespace {

int set_flags_fallback(int fd) {
  int fl = fcntl(fd, F_GETFD);
  if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
    return -errno;
  fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return -errno;
  return 0;
}

// The fallback's second step, for the result of a plain socket()/accept().
int with_flags_set(int plain) {
  if (plain < 0)
    return -errno;
  int err = set_flags_fallback(plain);
  if (err) {
    socket_close(plain);
    return err;
  }
  return plain;
}

int set_int(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value) < 0 ? -errno : 0;
}

}  // namespace

bool ipv6_available() {
  // Threads may ask at once (each base on its own thread): an atomic, so
  // the answer is published safely. Two threads may both probe the first
  // time; they find the same thing, and either store is right.
  static std::atomic<int> cached{-1};
  int known = cached.load(std::memory_order_acquire);
  if (known < 0) {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM))
      return false;  // says nothing about IPv6: ask again next time
    known = fd >= 0;
    if (fd >= 0)
      close(fd);
    cached.store(known, std::memory_order_release);
  }
  return known == 1;
}

int socket_open(int family, int type) {
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
  int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd >= 0)
    return fd;
  if (errno != EINVAL && errno != EPROTONOSUPPORT)
    return -errno;
#endif
  return with_flags_set(socket(family, type, 0));
}

int socket_accept(int listen_fd, sockaddr_storage *peer, socklen_t *peer_len) {
  auto *sa = reinterpret_cast<sockaddr *>(peer);
  *peer_len = sizeof *peer;
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__)
  int fd = accept4(listen_fd, sa, peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd >= 0)
    return fd;
  if (errno != ENOSYS && errno != EINVAL)
    return -errno;
  *peer_len = sizeof *peer;
#endif
  return with_flags_set(accept(listen_fd, sa, peer_len));
}

int socket_set_no_delay(int fd, bool on) { return set_int(fd, IPPROTO_TCP, TCP_NODELAY, on); }

int socket_set_keep_alive(int fd, bool on, uint64_t period) {
  int err = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, on);
  if (err || !on)
    return err;
  // The kernel counts in whole seconds (at most 32767); round up like Go.
  uint64_t rounded = period / RILL_SEC + (period % RILL_SEC != 0);
  int secs = rounded < 1 ? 1 : rounded > 32767 ? 32767 : static_cast<int>(rounded);
#if defined(TCP_KEEPIDLE)
  err = set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, secs);
#elif defined(TCP_KEEPALIVE)
  err = set_int(fd, IPPROTO_TCP, TCP_KEEPALIVE, secs);
#endif
#if defined(TCP_KEEPINTVL)
  if (!err)
    err = set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, secs);
#endif
  return err;
}

int socket_set_tcp_defaults(int fd, const rill_socket_config *opts) {
  int no_delay = opts ? opts->no_delay : 0;
  int keep_alive = opts ? opts->keep_alive : 0;
  uint64_t period = opts && opts->keep_alive_period ? opts->keep_alive_period : default_keep_alive_period;
  int err = socket_set_no_delay(fd, no_delay >= 0);
  int keep_err = socket_set_keep_alive(fd, keep_alive >= 0, period);
  return err ? err : keep_err;
}

int socket_apply_tcp_defaults(int fd, const rill_socket_config *opts) {
  // Like Go, a connection is not refused because an option did not take.
  socket_set_tcp_defaults(fd, opts);
  return 0;
}

int socket_listen_backlog() {
  // Read at every listen() (Go caches it): not a hot path, and an
  // administrator may raise somaxconn while the process runs.
  int backlog = SOMAXCONN > 128 ? SOMAXCONN : 128;
  if (FILE *f = std::fopen("/proc/sys/net/core/somaxconn", "re")) {
    int value;
    if (std::fscanf(f, "%d", &value) == 1 && value > 0)
      backlog = value;
    std::fclose(f);
  }
  return backlog > 65535 ? 65535 : backlog;
}

void socket_close(int fd) {
  if (fd >= 0)
    close(fd);
}

}  // namespace rill::detail
