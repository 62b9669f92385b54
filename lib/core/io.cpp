// Descriptor watchers: the per-fd table, batched interest changes and
// dispatch of what the backend reports.
//
// Interest changes only mark the descriptor; io_flush_changes() hands the
// backend the difference just before the loop waits, so a watcher stopped
// and started again within one iteration costs no system call. A stopped
// watcher stays registered with the kernel until an event shows up that
// nobody wants (libev's trick): the common stop-now, start-soon pattern then
// never touches the kernel. Freeing a watcher unregisters at once, because
// its descriptor is about to be closed and its number reused.
//
// An error or hang-up is reported ready in every direction (backend.h), so
// an event may carry a direction the watcher never asked for. That alone is
// no reason to touch the kernel: only interest the kernel has and nobody
// wants any more is dropped, so a watcher for READ on a hung-up descriptor
// costs no system call per iteration.
//
// A descriptor's watcher is a pooled rill_io or one embedded in its owner
// (a connection: base_impl.h, io_watch_fn, says why). Both go through the same
// change list and dispatch; an embedded one keeps its interest in the
// descriptor's slot and is not held by the loop (its owner holds itself).
#include <sys/stat.h>
#include <cassert>

#include "core/alloc.h"
#include "core/base_impl.h"

using namespace rill::detail;

namespace {

constexpr unsigned all_events = RILL_READ | RILL_WRITE;

uint64_t make_tag(int fd, uint32_t generation) {
  return (static_cast<uint64_t>(generation) << 32) | static_cast<uint32_t>(fd);
}

// Every interest change goes through here, counted in the stats.
int backend_change(rill_base *base, int fd, fd_slot &slot, unsigned want) {
  base->stats.interest_changes++;
  return base->backend->change(base->backend_state, fd, slot.kernel_events, want,
                               make_tag(fd, slot.generation));
}

void queue_change(rill_base *base, int fd) {
  fd_slot &slot = base->fds[fd];
  if (slot.queued)
    return;
  // rill_io_start() made room first; a stop that finds none is still safe,
  // because a stopped watcher's interest is dropped when its next unwanted
  // event arrives.
  slot.queued = base->changes.push(fd);
}

// An embedded watcher's interest on or off: counted as a handle's activity is.
void watch_set_active(rill_base *base, fd_slot &slot, unsigned want) {
  if ((slot.watch_want != 0) != (want != 0)) {
    if (want)
      base->active_count++;
    else
      base->active_count--;
  }
  slot.watch_want = static_cast<uint8_t>(want);
}

int check_fd(const backend_ops *backend, int fd) {
  if (fd < 0)
    return RILL_EBADF;
  struct stat st;
  if (fstat(fd, &st) < 0)
    return -errno;
  // epoll refuses regular files and directories (they are always ready);
  // say so now rather than at the batched registration.
  if (!backend->watches_files && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
    return -EPERM;
  return 0;
}

}  // namespace

namespace rill::detail {

void flush_once(rill_base *base);

// Checks `fd` and makes room for its slot and for one more change (each
// watcher's descriptor is on the change list at most once, so starting or
// stopping a watcher never needs memory). A socket rill made, accepted or
// checked skips the fstat that tells files from what can be polled.
static int io_prepare(rill_base *base, int fd, bool known_socket) noexcept {
  int err = known_socket ? (fd < 0 ? RILL_EBADF : 0) : check_fd(base->backend, fd);
  if (err)
    return err;
  if (static_cast<size_t>(fd) < base->fds.size() && base->fds[fd].watcher)
    return RILL_EEXIST;
  if (!base->fds.resize_zeroed(static_cast<size_t>(fd) + 1) ||
      !base->changes.reserve(base->io_count + 1))
    return RILL_ENOMEM;
  return 0;
}

static void io_attach(rill_base *base, int fd, void *watcher, bool embedded) noexcept {
  fd_slot &slot = base->fds[fd];
  slot.watcher = watcher;
  slot.embedded = embedded;
  slot.watch_want = 0;
  slot.refused_unlisted = false;
  slot.generation++;
  base->io_count++;
}

// The slot loses its watcher: unregistered now, since the descriptor is
// about to be closed and its number reused.
static void io_detach(rill_base *base, int fd) noexcept {
  fd_slot &slot = base->fds[fd];
  if (slot.kernel_events)
    backend_change(base, fd, slot, 0);
  slot.kernel_events = 0;
  slot.watcher = nullptr;
  slot.embedded = false;
  slot.watch_want = 0;
  slot.refused_unlisted = false;
  slot.generation++;  // events already collected for this watcher are stale now
  base->io_count--;
}

int io_create(rill_base *base, int fd, rill_io_cb cb, void *arg, bool internal,
              rill_io **out) noexcept {
  if (int err = io_prepare(base, fd, false))
    return err;
  rill_io *io = handle_new<rill_io>(base, internal, fd, cb, arg);
  if (!io)
    return RILL_ENOMEM;
  io_attach(base, fd, io, false);
  *out = io;
  return 0;
}

int io_watch_add(rill_base *base, int fd, void *owner, io_watch_fn ready) noexcept {
  if (int err = io_prepare(base, fd, true))
    return err;
  assert(!base->watch_ready || base->watch_ready == ready);  // one kind embeds watchers
  base->watch_ready = ready;
  io_attach(base, fd, owner, true);
  base->handle_count++;
  return 0;
}

void io_watch_set(rill_base *base, int fd, unsigned want) noexcept {
  fd_slot &slot = base->fds[fd];
  if (!slot.embedded || slot.watch_want == want)
    return;  // removed already (a close in progress), or no change
  watch_set_active(base, slot, want);
  queue_change(base, fd);
}

void io_watch_remove(rill_base *base, int fd) noexcept {
  watch_set_active(base, base->fds[fd], 0);
  io_detach(base, fd);
  base->handle_count--;
}

void io_flush_changes(rill_base *base) {
  // A refused registration's callback may queue changes of its own; flush
  // those too, a few rounds at most, before the loop waits.
  for (int round = 0; round < 4 && !base->changes.empty(); round++)
    flush_once(base);
}

namespace {

// A registration the kernel refused (the descriptor was closed under its
// watcher, say): stop the watcher and report it ready, so the callback's
// own read or write meets the error, as libev reports EV_ERROR.
void report_refused(rill_base *base, int fd) {
  fd_slot &slot = base->fds[fd];
  if (void *owner = slot.owner()) {
    unsigned want = slot.watch_want;
    if (!want)
      return;
    watch_set_active(base, slot, 0);
    auto ready = base->watch_ready;
    RILL_STALL_BEGIN(base);
    ready(owner, want);  // holds the owner, which is not touched after
    RILL_STALL_END(base, RILL_STALL_IO, stall_fn(ready), owner, 0);
    return;
  }
  rill_io *io = slot.io();
  if (!io || !io->active)
    return;
  handle_set_active(io, false);
  held_handle hold(io);
  RILL_STALL_BEGIN(base);
  io->cb(io, io->fd, io->events, io->arg);
  RILL_STALL_END(base, RILL_STALL_IO, stall_fn(io->cb), io->arg, 0);
}

}  // namespace

void flush_once(rill_base *base) {
  for (size_t i = 0; i < base->changes.size(); i++) {
    int fd = base->changes[i];
    fd_slot &slot = base->fds[fd];
    slot.queued = false;
    unsigned want = slot_wanted_events(slot);
    if (want == 0 && slot.watcher)
      continue;  // stopped: unregistered lazily, when an unwanted event comes
    if (want == slot.kernel_events)
      continue;
    int err = backend_change(base, fd, slot, want);
    if (err == 0) {
      slot.kernel_events = static_cast<uint8_t>(want);
    } else if (slot.watcher && !base->failed.push(fd)) {
      // No memory to list it: marked in its slot, and found by a scan
      // below. Listing is the rule, so a refusal costs no scan of every
      // descriptor, and nothing is reserved per watcher (4 bytes of an
      // idle connection) for the rare refusal out of memory.
      slot.refused_unlisted = true;
      base->refused_unlisted = true;
    }
  }
  base->changes.clear();
  io_report_refused(base);
}

// Each entry leaves the list (or loses its mark) before its callback runs,
// so one that throws leaves the others to the next flush, or to the next
// rill_base_run(), which reports them first.
void io_report_refused(rill_base *base) {
  while (!base->failed.empty()) {
    int fd = base->failed.back();
    base->failed.pop_back();
    report_refused(base, fd);
  }
  if (base->refused_unlisted) {
    // By index: a callback may grow the table.
    for (size_t fd = 0; fd < base->fds.size(); fd++) {
      if (!base->fds[fd].refused_unlisted)
        continue;
      base->fds[fd].refused_unlisted = false;
      report_refused(base, static_cast<int>(fd));
    }
    base->refused_unlisted = false;
  }
}

namespace {

// Readiness dispatched in runs of this many events (io_dispatch says why).
constexpr int dispatch_run = 16;

// Refusals a backend learned of after change() had said 0 (kqueue,
// backend.h): the kernel does not hold them, so a later start registers
// them again. Every one in the batch is listed before any callback runs,
// as flush_once lists its own, so neither a callback that throws nor a
// report run between two runs of events loses the rest.
void take_refusals(rill_base *base, int first, int count) {
  for (int i = first; i < count; i++) {
    backend_event &ev = base->events[i];
    if (!(ev.events & backend_refused))
      continue;
    ev.events = 0;  // taken here: dispatch passes over it
    int fd = static_cast<int>(static_cast<uint32_t>(ev.tag));
    if (static_cast<size_t>(fd) >= base->fds.size())
      continue;
    fd_slot &slot = base->fds[fd];
    if (static_cast<uint32_t>(ev.tag >> 32) != slot.generation || !slot.watcher)
      continue;
    slot.kernel_events = static_cast<uint8_t>(slot.kernel_events & ~ev.refused);
    if (!base->failed.push(fd)) {
      slot.refused_unlisted = true;
      base->refused_unlisted = true;
    }
  }
  io_report_refused(base);
}

void dispatch_event(rill_base *base, int index, int count) {
  backend_event ev = base->events[index];
  int fd = static_cast<int>(static_cast<uint32_t>(ev.tag));
  if (static_cast<size_t>(fd) >= base->fds.size())
    return;
  fd_slot &slot = base->fds[fd];
  if (static_cast<uint32_t>(ev.tag >> 32) != slot.generation || !slot.watcher)
    return;  // the watcher this was collected for is gone
  unsigned want = slot_wanted_events(slot);
  unsigned ready = ev.events & want;
  if (ev.events & ~want) {  // rare: unwanted directions, or a refusal
    if (ev.events & backend_refused) {
      take_refusals(base, index, count);
      return;
    }
    if (slot.kernel_events & ~want) {
      // The kernel still has interest nobody wants any more: drop it now.
      if (backend_change(base, fd, slot, want) == 0)
        slot.kernel_events = static_cast<uint8_t>(want);
    }
  }
  if (ready && slot.embedded) {
    base->stats.events++;
    void *owner = slot.watcher;
    auto on_ready = base->watch_ready;
    RILL_STALL_BEGIN(base);
    on_ready(owner, ready);  // holds the owner, which is not touched after
    RILL_STALL_END(base, RILL_STALL_IO, stall_fn(on_ready), owner, 0);
  } else if (ready) {
    rill_io *io = slot.io();
    if (!io->internal)
      base->stats.events++;
    held_handle hold(io);
    RILL_STALL_BEGIN(base);
    io->cb(io, fd, ready, io->arg);
    RILL_STALL_END(base, RILL_STALL_IO, stall_fn(io->cb), io->arg, 0);
  }
}

}  // namespace

// Readiness goes out in runs of dispatch_run events, and what the runs queue
// (a woken fiber's scheduler above all) runs between them. A wait that
// returns a thousand events would otherwise read all thousand sockets before
// the first woken fiber writes its reply: the 64-byte echo's sockets and
// buffers would be cold again by then, and the kernel, whose frees of the
// received packets pile up for the sending CPU meanwhile, would interrupt
// that CPU to take them (one inter-processor interrupt per 32). Sixteen
// keeps both small; the queue's own fairness (pending.h) is unchanged.
void io_dispatch(rill_base *base, int count) {
  int run_end = dispatch_run;
  for (int i = 0; i < count; i++) {
    if (__builtin_expect(i == run_end, 0)) {
      run_end += dispatch_run;
      if (!base->pending.empty())
        pending_run(base);
    }
    dispatch_event(base, i, count);
  }
}

}  // namespace rill::detail

extern "C" {

int rill_io_new(rill_base *base, int fd, rill_io_cb cb, void *arg, rill_io **out) {
  if (!base || !cb || !out)
    return RILL_EINVAL;
  return io_create(base, fd, cb, arg, false, out);
}

int rill_io_start(rill_io *io, unsigned events) {
  if (events == 0 || (events & ~all_events))
    return RILL_EINVAL;
  if (int err = handle_check(io, handle_kind::io))
    return err;
  if (io->active && io->events == events)
    return 0;
  if (!io->base->changes.reserve(io->base->changes.size() + 1))
    return RILL_ENOMEM;
  io->events = events;
  handle_set_active(io, true);
  queue_change(io->base, io->fd);
  return 0;
}

int rill_io_stop(rill_io *io) {
  if (int err = handle_check(io, handle_kind::io))
    return err;
  if (io->active) {
    handle_set_active(io, false);
    queue_change(io->base, io->fd);
  }
  return 0;
}

unsigned rill_io_events(const rill_io *io) {
  return handle_check(io, handle_kind::io) == 0 && io->active ? io->events : 0;
}

int rill_io_fd(const rill_io *io) {
  int err = handle_check(io, handle_kind::io);
  return err ? err : io->fd;
}

void rill_io_free(rill_io *io) {
  if (handle_check(io, handle_kind::io) != 0)
    return;
  handle_set_active(io, false);
  io_detach(io->base, io->fd);
  handle_close(io);
}

}  // extern "C"
