// The descriptor that makes a waiting base return when another thread posts
// or stops it: an eventfd on Linux (one descriptor, a counter that never
// fills), a non-blocking pipe elsewhere.
#include <unistd.h>
#include <cerrno>
#include <cstdint>
#include <fcntl.h>

#include "core/base_impl.h"

#ifdef __linux__
#include <sys/eventfd.h>
#endif

namespace rill::detail {

int wakeup_open(int *read_fd, int *write_fd) noexcept {
#ifdef __linux__
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0)
    return -errno;
  *read_fd = *write_fd = fd;
  return 0;
#else
  int fds[2];
  if (pipe(fds) < 0)
    return -errno;
  for (int fd : fds) {
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  *read_fd = fds[0];
  *write_fd = fds[1];
  return 0;
#endif
}

void wakeup_signal(int write_fd) noexcept {
  // A full pipe or a saturated counter already means "wake up": EAGAIN is fine.
#ifdef __linux__
  uint64_t one = 1;
  while (write(write_fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
#else
  char byte = 1;
  while (write(write_fd, &byte, 1) < 0 && errno == EINTR) {
  }
#endif
}

void wakeup_consume(int read_fd) noexcept {
  char buf[64];
  for (;;) {
    ssize_t n = read(read_fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
#ifdef __linux__
    return;  // one read resets an eventfd
#else
    if (n < static_cast<ssize_t>(sizeof buf))
      return;
#endif
  }
}

void wakeup_close(int read_fd, int write_fd) noexcept {
  if (read_fd >= 0)
    close(read_fd);
  if (write_fd >= 0 && write_fd != read_fd)
    close(write_fd);
}

}  // namespace rill::detail
