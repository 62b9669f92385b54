// The epoll backend (Linux).
//
// Quirks it works around:
//  - epoll registers the open file, not the descriptor number: a descriptor
//    closed while registered disappears from the set on its own, and a new
//    descriptor with the same number is unknown to it. EPOLL_CTL_MOD then
//    fails with ENOENT and ADD with EEXIST; each falls back to the other.
//  - epoll_wait takes milliseconds, which either wakes early (and spins) or
//    late for a timer due in a fraction of a millisecond. epoll_pwait2 takes
//    a timespec, and is used when the timeout is not whole milliseconds;
//    kernels older than 5.11 say ENOSYS and we round up instead. Whole
//    milliseconds, 0 and "forever" (the common cases: a busy server waits
//    forever) go to epoll_wait, measurably cheaper per call in the echo
//    benchmark here.
//  - EPOLLERR and EPOLLHUP come whatever the interest; they are reported as
//    readiness in both directions and the base keeps what was asked for.
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cerrno>
#include <ctime>

#include "core/alloc.h"
#include "core/backend/backend.h"
#include "rill/io.h"

namespace rill::detail {
namespace {

constexpr int max_events = 1024;

struct epoll_state {
  int fd = -1;
  bool have_pwait2 = true;
  epoll_event events[max_events];
};

uint32_t to_epoll(unsigned events) {
  return (events & RILL_READ ? EPOLLIN : 0u) | (events & RILL_WRITE ? EPOLLOUT : 0u);
}

int init(void **out) {
  auto *st = make<epoll_state>();
  if (!st)
    return -ENOMEM;
  st->fd = epoll_create1(EPOLL_CLOEXEC);
  if (st->fd < 0) {
    int err = -errno;
    destroy(st);
    return err;
  }
  *out = st;
  return 0;
}

void destroy_state(void *state) {
  auto *st = static_cast<epoll_state *>(state);
  close(st->fd);
  destroy(st);
}

int change(void *state, int fd, unsigned old_events, unsigned new_events, uint64_t tag) {
  auto *st = static_cast<epoll_state *>(state);
  epoll_event ev{};
  ev.events = to_epoll(new_events);
  ev.data.u64 = tag;
  if (new_events == 0) {
    if (epoll_ctl(st->fd, EPOLL_CTL_DEL, fd, &ev) < 0 && errno != ENOENT && errno != EBADF)
      return -errno;
    return 0;
  }
  int op = old_events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (epoll_ctl(st->fd, op, fd, &ev) == 0)
    return 0;
  if (op == EPOLL_CTL_MOD && errno == ENOENT)
    op = EPOLL_CTL_ADD;
  else if (op == EPOLL_CTL_ADD && errno == EEXIST)
    op = EPOLL_CTL_MOD;
  else
    return -errno;
  return epoll_ctl(st->fd, op, fd, &ev) == 0 ? 0 : -errno;
}

int wait_events(epoll_state *st, int64_t timeout_ns, int capacity) {
  if (capacity > max_events)
    capacity = max_events;
#ifdef SYS_epoll_pwait2
  if (st->have_pwait2 && timeout_ns > 0 && timeout_ns % 1000000 != 0) {
    timespec ts{static_cast<time_t>(timeout_ns / 1000000000), static_cast<long>(timeout_ns % 1000000000)};
    long n = syscall(SYS_epoll_pwait2, st->fd, st->events, capacity, timeout_ns < 0 ? nullptr : &ts,
                     nullptr, 0);
    if (n >= 0 || errno != ENOSYS)
      return static_cast<int>(n);
    st->have_pwait2 = false;
  }
#endif
  int ms = -1;
  if (timeout_ns >= 0) {
    int64_t rounded = (timeout_ns + 999999) / 1000000;
    ms = rounded > 0x7fffffff ? 0x7fffffff : static_cast<int>(rounded);
  }
  return epoll_wait(st->fd, st->events, capacity, ms);
}

int wait(void *state, int64_t timeout_ns, backend_event *out, int capacity) {
  auto *st = static_cast<epoll_state *>(state);
  int n = wait_events(st, timeout_ns, capacity);
  if (n < 0)
    return errno == EINTR ? 0 : -errno;
  for (int i = 0; i < n; i++) {
    uint32_t e = st->events[i].events;
    unsigned ready = 0;
    if (e & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))
      ready |= RILL_READ;
    if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
      ready |= RILL_WRITE;
    out[i] = backend_event{st->events[i].data.u64, ready};
  }
  return n;
}

// After fork: a set of our own. The inherited set stays the parent's; its
// registrations are never touched (see backend.h), only our descriptor for
// it is closed. Even on failure: a state with no set refuses every change
// (EBADF) rather than reaching the parent's set.
int reinit(void *state) {
  auto *st = static_cast<epoll_state *>(state);
  int fd = epoll_create1(EPOLL_CLOEXEC);
  int err = fd < 0 ? -errno : 0;
  close(st->fd);
  st->fd = fd;
  return err;
}

}  // namespace

const backend_ops epoll_backend = {"epoll", false, init, destroy_state, change, wait, reinit};

}  // namespace rill::detail
