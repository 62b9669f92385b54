// A listener's accepts on an io_uring base: a multishot accept runs while
// the listener is started, and the descriptors it takes wait in the
// backend's queue until on_readable (listener.cpp) hands them out, in
// order, at most a batch per wake-up as before. Where the accept cannot
// run (EMFILE: the kernel ends it), the backend goes back to readiness and
// the listener's own accept4() meets the error and backs off as on epoll;
// its next start arms the accept again.
#include <cerrno>

#include "net/net_impl.h"

namespace rill::detail {

bool listener_uring_attach(rill_base *base, int fd) {
  const backend_stream_ops *ops = backend_streams(base->backend);
  return ops && ops->set_mode(base->backend_state, fd, stream_mode::accept);
}

void listener_uring_detach(rill_base *base, int fd) {
  backend_streams(base->backend)->set_mode(base->backend_state, fd, stream_mode::none);
}

void listener_uring_want(rill_base *base, int fd, bool on) {
  backend_streams(base->backend)->want_read(base->backend_state, fd, on);
}

int listener_uring_accept(rill_base *base, int fd, sockaddr_storage *peer, socklen_t *peer_len) {
  const backend_stream_ops *ops = backend_streams(base->backend);
  const char *unused;
  int res = ops->peek(base->backend_state, fd, &unused);
  if (res == stream_readiness)
    return socket_accept(fd, peer, peer_len);
  *peer_len = 0;  // a multishot accept's completion does not carry it
  if (res == stream_empty)
    return -EAGAIN;
  ops->consume(base->backend_state, fd, 0);  // the descriptor is the caller's now
  return res;
}

}  // namespace rill::detail
