// The kqueue backend (BSD, macOS; on Linux through libkqueue for testing).
//
// kqueue keeps a filter per direction, so an interest change is up to two
// kevent changes. They are queued and handed to the kernel together, in one
// call just before the next wait, or at once when a descriptor is
// unregistered (see change()). Each carries EV_RECEIPT and the call gets a
// result slot per change, so that every change gets its own answer: without
// room for the answers the first failing change stops kevent(), and the
// changes after it are silently dropped (a deletion lost that way left a
// filter behind, which libkqueue then kept answering with a freed watcher's
// tag). Not in the wait's own call: a change's answer takes a slot there
// and BSD kernels then return at once without waiting, and libkqueue waits
// anyway and drops the answers if the wait times out. So an iteration that
// changes interest costs one system call more than one that does not; a
// steady connection changes none.
//
// An addition the kernel refuses is no longer held: the base hears of it
// through backend_event::refused with the next wait, which returns such
// refusals before anything else, without waiting. The base then stops the
// watcher and reports it as it does a refusal from epoll, and corrects its
// record of what the kernel holds, so that a later start adds the filter
// again (it used to count as held, and a restart changed nothing). A
// deletion that fails because the descriptor was closed already (ENOENT,
// EBADF) needs nothing: the kernel holds nothing for it.
//
// Readiness in both directions arrives as two events, one per filter; they
// are merged so the watcher gets one callback, as with epoll and poll.
//
// The tag travels in udata, a pointer-sized field: fine on 64-bit systems,
// where both halves of the tag fit.
//
// An event with EV_EOF carries the socket's error in fflags. libkqueue (this
// backend on Linux) fills it by reading SO_ERROR, which clears the error on
// the socket, so whoever asks the socket next finds none: a refused connect
// then looks like one still in progress, forever. The error is kept per
// descriptor for backend_taken_socket_error() (backend.h).
#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#include <unistd.h>
#include <cerrno>
#include <cstdint>
#include <ctime>

#include "core/alloc.h"
#include "core/backend/backend.h"
#include "core/vec.h"
#include "rill/io.h"

static_assert(sizeof(void *) >= sizeof(uint64_t), "the tag must fit in udata");

namespace rill::detail {
namespace {

constexpr int max_events = 1024;

struct kqueue_state {
  int fd = -1;
  vec<struct kevent> changes;
  // Room for an answer per queued change (capacity only, never size).
  vec<struct kevent> answers;
  // Additions refused since the last wait, reported by the next one; room
  // for one per queued change is made with the change.
  vec<backend_event> refusals;
  // fd -> position in this wait's output, valid where seen_in == waits.
  vec<uint32_t> seen_in;
  vec<int> seen_at;
  // fd -> the error the last EV_EOF event carried, 0 for none; cleared
  // whenever the descriptor's registration starts or ends, so a new
  // socket on the same number never inherits it.
  vec<int> socket_error;
  uint32_t waits = 0;
  struct kevent events[max_events];
};

int init(void **out) {
  auto *st = make<kqueue_state>();
  if (!st)
    return -ENOMEM;
  st->fd = kqueue();
  if (st->fd < 0) {
    int err = -errno;
    destroy(st);
    return err;
  }
  *out = st;
  return 0;
}

void destroy_state(void *state) {
  auto *st = static_cast<kqueue_state *>(state);
  close(st->fd);
  destroy(st);
}

bool queue(kqueue_state *st, int fd, short filter, unsigned short flags, uint64_t tag) {
  struct kevent ev;
  EV_SET(&ev, fd, filter, flags | EV_RECEIPT, 0, 0, reinterpret_cast<void *>(static_cast<uintptr_t>(tag)));
  return st->changes.push(ev);
}

void note_refused(kqueue_state *st, const struct kevent &change) {
  uint64_t tag = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(change.udata));
  unsigned direction = change.filter == EVFILT_READ ? RILL_READ : RILL_WRITE;
  // A descriptor's two filters are queued together: one report for both.
  if (!st->refusals.empty() && st->refusals.back().tag == tag) {
    st->refusals.back().refused |= direction;
    return;
  }
  st->refusals.push(backend_event{tag, backend_refused, direction});  // room made in change()
}

// Hands the queued changes to the kernel, each with its own answer, in
// order. Refused additions are kept for the next wait. Returns the first
// failure, other than "already gone", of a deletion on `fd`: the base then
// keeps counting that filter as held, and tries again later.
int submit(kqueue_state *st, int fd) {
  int n = static_cast<int>(st->changes.size());
  if (n == 0)
    return 0;
  timespec zero{0, 0};
  int answered = kevent(st->fd, st->changes.data(), n, st->answers.data(), n, &zero);
  int call_error = answered < 0 ? errno : 0;
  int err = 0;
  for (int i = 0; i < n; i++) {
    const struct kevent &change = st->changes[i];
    // Every change has its answer, in order, with EV_ERROR set and the
    // errno in data (0 for success). A call that failed as a whole (no
    // queue after a failed reinit) answered none: each change failed.
    int result = call_error;
    if (answered >= 0)
      result = i < answered && (st->answers[i].flags & EV_ERROR) ? static_cast<int>(st->answers[i].data) : 0;
    if (result == 0)
      continue;
    if (change.flags & EV_ADD)
      note_refused(st, change);
    else if (static_cast<int>(change.ident) == fd && result != ENOENT && result != EBADF && err == 0)
      err = -result;
  }
  st->changes.clear();
  return err;
}

int change(void *state, int fd, unsigned old_events, unsigned new_events, uint64_t tag) {
  auto *st = static_cast<kqueue_state *>(state);
  size_t queued = st->changes.size() + 2;
  if (!st->changes.reserve(queued) || !st->answers.reserve(queued) ||
      !st->refusals.reserve(st->refusals.size() + queued))
    return -ENOMEM;
  // The merge table grows here, where a failure is the one watcher's, and
  // never in wait(), where it would fail the whole loop (an allocation
  // failing as a new descriptor's first event arrived stopped
  // rill_base_run with ENOMEM). seen_in is grown last: its size is the
  // bound wait() checks.
  size_t need = static_cast<size_t>(fd) + 1;
  if (new_events && need > st->seen_in.size() &&
      (!st->seen_at.resize_zeroed(need) || !st->socket_error.resize_zeroed(need) ||
       !st->seen_in.resize_zeroed(need)))
    return -ENOMEM;
  if ((old_events == 0 || new_events == 0) && static_cast<size_t>(fd) < st->socket_error.size())
    st->socket_error[fd] = 0;
  // Only the filters that change: one already added stays as it is. The
  // tag of a registration never changes (the base gives a descriptor a new
  // generation only while nothing is registered), and libkqueue refuses an
  // EV_ADD on a socket's existing read filter (an EV_ERROR, with whatever
  // errno held) where a BSD kernel updates it.
  unsigned added = new_events & ~old_events, dropped = old_events & ~new_events;
  if (added & RILL_READ)
    queue(st, fd, EVFILT_READ, EV_ADD, tag);
  else if (dropped & RILL_READ)
    queue(st, fd, EVFILT_READ, EV_DELETE, tag);
  if (added & RILL_WRITE)
    queue(st, fd, EVFILT_WRITE, EV_ADD, tag);
  else if (dropped & RILL_WRITE)
    queue(st, fd, EVFILT_WRITE, EV_DELETE, tag);
  // A descriptor being unregistered is usually closed right after, and a
  // queued delete would then fail or, worse, hit a new file with the same
  // number: submit deletions now.
  if (new_events == 0)
    return submit(st, fd);
  return 0;
}

int take_refusals(kqueue_state *st, backend_event *out, int capacity) {
  size_t count = st->refusals.size() < static_cast<size_t>(capacity) ? st->refusals.size()
                                                                      : static_cast<size_t>(capacity);
  for (size_t i = 0; i < count; i++)
    out[i] = st->refusals[i];
  size_t left = st->refusals.size() - count;
  for (size_t i = 0; i < left; i++)
    st->refusals[i] = st->refusals[i + count];
  while (st->refusals.size() > left)
    st->refusals.pop_back();
  return static_cast<int>(count);
}

int wait(void *state, int64_t timeout_ns, backend_event *out, int capacity) {
  auto *st = static_cast<kqueue_state *>(state);
  if (capacity > max_events)
    capacity = max_events;
  submit(st, -1);
  // Refusals go out now, without waiting: their watchers must hear of them
  // whatever else happens.
  if (!st->refusals.empty())
    return take_refusals(st, out, capacity);
  timespec ts{static_cast<time_t>(timeout_ns / 1000000000), static_cast<long>(timeout_ns % 1000000000)};
  int n = kevent(st->fd, nullptr, 0, st->events, capacity, timeout_ns < 0 ? nullptr : &ts);
  if (n < 0)
    return errno == EINTR ? 0 : -errno;
  st->waits++;
  int count = 0;
  for (int i = 0; i < n; i++) {
    const struct kevent &ev = st->events[i];
    unsigned ready = ev.filter == EVFILT_READ ? RILL_READ : RILL_WRITE;
    if (ev.flags & EV_EOF)
      ready = RILL_READ | RILL_WRITE;
    size_t fd = ev.ident;
    if ((ev.flags & EV_EOF) && ev.fflags != 0 && fd < st->socket_error.size())
      st->socket_error[fd] = static_cast<int>(ev.fflags);
    if (fd >= st->seen_in.size()) {
      // Never registered through change(): nothing to merge with.
      out[count++] = backend_event{static_cast<uint64_t>(reinterpret_cast<uintptr_t>(ev.udata)), ready};
      continue;
    }
    if (st->seen_in[fd] == st->waits) {
      out[st->seen_at[fd]].events |= ready;
      continue;
    }
    st->seen_in[fd] = st->waits;
    st->seen_at[fd] = count;
    out[count++] = backend_event{static_cast<uint64_t>(reinterpret_cast<uintptr_t>(ev.udata)), ready};
  }
  return count;
}

// After fork: a queue of our own. A kqueue is not inherited by fork() on
// the BSDs and macOS, so the old number names nothing in the child and may
// already name a file the child opened since: it is left alone, never
// closed. (Under libkqueue on Linux it is a real inherited descriptor, which
// the child then keeps open, unused.) Changes queued for the old queue are
// dropped: the base registers every watcher again.
int reinit(void *state) {
  auto *st = static_cast<kqueue_state *>(state);
  int fd = kqueue();
  int err = fd < 0 ? -errno : 0;
  st->fd = fd;  // -1 on failure: nothing reaches the old queue
  st->changes.clear();
  st->refusals.clear();  // the old queue's: the base registers afresh
  return err;
}

}  // namespace

int kqueue_taken_socket_error(void *state, int fd) {
  auto *st = static_cast<kqueue_state *>(state);
  if (fd < 0 || static_cast<size_t>(fd) >= st->socket_error.size())
    return 0;
  int err = st->socket_error[fd];
  st->socket_error[fd] = 0;
  return err;
}

const backend_ops kqueue_backend = {"kqueue", true, init, destroy_state, change, wait, reinit};

}  // namespace rill::detail
