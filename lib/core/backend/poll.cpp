// The poll(2) backend: portable and simple, O(n) per wait in the number of
// watched descriptors. The pollfd array is kept dense (removal moves the last
// entry into the hole) and an fd -> index table makes changes O(1).
//
// ppoll() takes a timespec, so timers are not rounded to milliseconds where
// it exists. A closed descriptor left in the set shows up as POLLNVAL; it is
// reported as ready both ways so its owner finds out on the next call.
#include <poll.h>
#include <cerrno>
#include <ctime>

#include "core/alloc.h"
#include "core/backend/backend.h"
#include "core/vec.h"
#include "rill/io.h"

namespace rill::detail {
namespace {

struct poll_state {
  size_t scan_start = 0;  // rotates, so ready descriptors past the capacity get their turn
  vec<pollfd> fds;
  vec<uint64_t> tags;   // parallel to fds
  vec<int> index_of;    // fd -> position in fds, -1 if absent
};

short to_poll(unsigned events) {
  return static_cast<short>((events & RILL_READ ? POLLIN : 0) | (events & RILL_WRITE ? POLLOUT : 0));
}

int init(void **out) {
  auto *st = make<poll_state>();
  if (!st)
    return -ENOMEM;
  *out = st;
  return 0;
}

void destroy_state(void *state) { destroy(static_cast<poll_state *>(state)); }

void remove(poll_state *st, int fd) {
  int i = st->index_of[fd];
  size_t last = st->fds.size() - 1;
  if (static_cast<size_t>(i) != last) {
    st->fds[i] = st->fds[last];
    st->tags[i] = st->tags[last];
    st->index_of[st->fds[i].fd] = i;
  }
  st->fds.pop_back();
  st->tags.pop_back();
  st->index_of[fd] = -1;
}

int change(void *state, int fd, unsigned, unsigned new_events, uint64_t tag) {
  auto *st = static_cast<poll_state *>(state);
  size_t old_size = st->index_of.size();
  if (static_cast<size_t>(fd) >= old_size) {
    if (!st->index_of.resize_zeroed(static_cast<size_t>(fd) + 1))
      return -ENOMEM;
    for (size_t i = old_size; i < st->index_of.size(); i++)
      st->index_of[i] = -1;
  }
  int i = st->index_of[fd];
  if (new_events == 0) {
    if (i >= 0)
      remove(st, fd);
    return 0;
  }
  if (i < 0) {
    if (!st->fds.reserve(st->fds.size() + 1) || !st->tags.reserve(st->tags.size() + 1))
      return -ENOMEM;
    st->fds.push(pollfd{fd, 0, 0});
    st->tags.push(0);
    i = static_cast<int>(st->fds.size() - 1);
    st->index_of[fd] = i;
  }
  st->fds[i].events = to_poll(new_events);
  st->tags[i] = tag;
  return 0;
}

int wait(void *state, int64_t timeout_ns, backend_event *out, int capacity) {
  auto *st = static_cast<poll_state *>(state);
#ifdef __APPLE__
  // No ppoll(): round up to whole milliseconds so a timer never fires early.
  int64_t ms = timeout_ns < 0 ? -1 : (timeout_ns + 999999) / 1000000;
  int n = poll(st->fds.data(), st->fds.size(), ms > 0x7fffffff ? 0x7fffffff : static_cast<int>(ms));
#else
  timespec ts{static_cast<time_t>(timeout_ns / 1000000000), static_cast<long>(timeout_ns % 1000000000)};
  int n = ppoll(st->fds.data(), st->fds.size(), timeout_ns < 0 ? nullptr : &ts, nullptr);
#endif
  if (n < 0)
    return errno == EINTR ? 0 : -errno;
  int count = 0;
  size_t total = st->fds.size();
  size_t start = total ? st->scan_start % total : 0;
  st->scan_start = start + 1;
  for (size_t k = 0; k < total && count < n && count < capacity; k++) {
    size_t i = (start + k) % total;
    short r = st->fds[i].revents;
    if (!r)
      continue;
    unsigned ready = 0;
    if (r & (POLLIN | POLLERR | POLLHUP | POLLNVAL))
      ready |= RILL_READ;
    if (r & (POLLOUT | POLLERR | POLLHUP | POLLNVAL))
      ready |= RILL_WRITE;
    out[count++] = backend_event{st->tags[i], ready};
  }
  return count;
}

// After fork: poll keeps no kernel state, so forgetting the interest set
// is all there is to do; the base registers its watchers again.
int reinit(void *state) {
  auto *st = static_cast<poll_state *>(state);
  st->fds.clear();
  st->tags.clear();
  for (size_t i = 0; i < st->index_of.size(); i++)
    st->index_of[i] = -1;
  return 0;
}

}  // namespace

const backend_ops poll_backend = {"poll", true, init, destroy_state, change, wait, reinit};

}  // namespace rill::detail
