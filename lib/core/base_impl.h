// The base's internal state, shared by the core's files. Nothing here is
// visible outside lib/.
#ifndef RILL_CORE_BASE_IMPL_H
#define RILL_CORE_BASE_IMPL_H

#include <atomic>
#include <csignal>
#include <cstdint>
#include <type_traits>

#include "core/backend/backend.h"
#include "core/clock.h"
#include "core/handle.h"
#include "core/mutex.h"
#include "core/pending.h"
#include "core/pool.h"
#include "core/stall.h"
#include "core/timer_wheel.h"
#include "core/vec.h"
#include "rill/io.h"
#include "rill/signal.h"
#include "rill/timer.h"

struct rill_io : rill::detail::handle {
  int fd;
  unsigned events = 0;  // interest while active
  rill_io_cb cb;
  void *arg;
  rill_io(int fd_, rill_io_cb cb_, void *arg_)
      : handle(rill::detail::handle_kind::io), fd(fd_), cb(cb_), arg(arg_) {}
};

// Where it waits is the handle's timer_place (core/timer_wheel.h).
struct rill_timer : rill::detail::handle {
  rill::detail::list_node link;  // in a wheel slot, near or expiring
  uint64_t due_ns = 0;
  uint64_t repeat_ns = 0;
  rill_timer_cb cb;
  void *arg;
  rill_timer(rill_timer_cb cb_, void *arg_)
      : handle(rill::detail::handle_kind::timer), cb(cb_), arg(arg_) {}
};

struct rill_signal : rill::detail::handle {
  int signum = 0;
  rill_signal_cb cb;
  void *arg;
  rill_signal(rill_signal_cb cb_, void *arg_)
      : handle(rill::detail::handle_kind::signal), cb(cb_), arg(arg_) {}
};

namespace rill::detail {

// The base's states (lifetime.h, 4). rill_base_run() and rill_base_free()
// are refused (RILL_EBUSY) unless the base is idle, so neither can run from
// a callback that the other, or itself, is running.
enum class base_state : uint8_t {
  idle,     // between calls
  running,  // inside rill_base_run()
  freeing,  // inside rill_base_free(), which runs posts and cancellations
};

// A descriptor watcher embedded in the object that owns the descriptor,
// instead of a rill_io from the handle pool: a connection (issue 12, idle
// memory) carries nothing for it, where a pooled watcher cost a 48-byte
// slot and a pointer to it. Its interest lives in the descriptor's fd_slot,
// and its events go to the base's one function for embedded watchers
// (rill_base::watch_ready), not to a function pointer of its own: one kind
// of object, a connection, has them (a second kind would make
// fd_slot::embedded an index into a table of such functions). It is no
// handle of its own: the owner is, and follows core/lifetime.h itself. The
// loop holds nothing across the call, so the function must hold the owner
// before anything it calls may close it; the loop touches the owner no
// more once it returns. It counts as one live user handle, and as active
// while it has interest, as the pooled watcher did.
using io_watch_fn = void (*)(void *owner, unsigned events);

// Per-descriptor state, indexed by fd. The watcher is a pooled rill_io or,
// with `embedded`, the owner of an embedded watcher; both fit the 16 bytes
// a slot always had.
struct fd_slot {
  void *watcher;              // rill_io, an embedded watcher's owner or nullptr
  uint32_t generation;        // bumped whenever the slot's watcher goes away
  uint8_t kernel_events;      // the interest the backend currently has
  bool queued : 1;            // on the change list
  bool embedded : 1;          // `watcher` is an embedded watcher's owner
  bool refused_unlisted : 1;  // refused, and no memory to list it in base->failed
  uint8_t watch_want;         // an embedded watcher's interest; 0 while stopped
  rill_io *io() const { return embedded ? nullptr : static_cast<rill_io *>(watcher); }
  void *owner() const { return embedded ? watcher : nullptr; }
};
static_assert(sizeof(fd_slot) == 16, "a slot per descriptor: 16 bytes of every connection");

// What the watcher of `slot` wants from the kernel: 0 while it is stopped.
inline unsigned slot_wanted_events(const fd_slot &slot) {
  if (slot.embedded)
    return slot.watch_want;
  const rill_io *io = slot.io();
  return io && io->active ? io->events : 0;
}

struct post_item {
  rill_post_cb fn;
  void *arg;
};

struct signal_state;  // lib/core/signal.cpp

// Timers, the largest handles (their wheel links), have a pool of their
// own, so that io watchers, one per connection, keep their own size.
constexpr size_t handle_slot_size = sizeof(rill_io) > sizeof(rill_signal) ? sizeof(rill_io) : sizeof(rill_signal);

}  // namespace rill::detail

struct rill_base {
  const rill::detail::backend_ops *backend = nullptr;
  void *backend_state = nullptr;

  uint64_t now_ns = 0;
  rill::detail::start_clock start_clock;  // rill_timer_start()'s reading of the time
  rill::detail::base_state state = rill::detail::base_state::idle;
  std::atomic<bool> stop_requested{false};
  // The base's thread (rill_base_in_loop_thread): a this_thread_id() value,
  // written by that thread, read by any.
  std::atomic<uint64_t> loop_thread{0};
  int refs = 0;              // rill_base_ref()
  uint64_t active_count = 0; // active user handles
  uint64_t handle_count = 0; // live user handles

  rill::detail::handle_pool pool{rill::detail::handle_slot_size};  // io watchers, signals
  rill::detail::handle_pool timer_pool{sizeof(rill_timer)};

  // io
  rill::detail::vec<rill::detail::fd_slot> fds;
  rill::detail::vec<int> changes;  // fds whose interest may differ from the kernel's
  size_t io_count = 0;              // io watchers, internal ones included
  rill::detail::vec<int> failed;    // fds whose registration the kernel refused
  bool refused_unlisted = false;    // and some not listed (fd_slot::refused_unlisted)
  rill::detail::vec<rill::detail::backend_event> events;
  // Where embedded watchers' events go (io_watch_fn; set by io_watch_add).
  rill::detail::io_watch_fn watch_ready = nullptr;

  // timers: a hierarchical wheel in front of an exactly ordered list
  rill::detail::timer_wheel timers;

  // cross-thread posts
  rill::detail::mutex post_mutex;
  rill::detail::vec<rill::detail::post_item> posts_incoming;  // guarded
  rill::detail::vec<rill::detail::post_item> posts_running;   // base thread
  size_t posts_next = 0;  // the next of posts_running to run
  int wake_read_fd = -1;
  int wake_write_fd = -1;  // same as wake_read_fd for an eventfd
  rill_io *wake_io = nullptr;

  rill::detail::signal_state *signals = nullptr;

  rill::detail::list pending;  // of pending_node::link

  // Per-base scratch owned by lib/net (one read buffer for every
  // connection, pools for write requests), created on first use.
  void *net = nullptr;
  void (*net_destroy)(rill_base *base) = nullptr;

  // lib/fiber's scheduler (core/fiber_slot.h). Live fibers keep a timer
  // alive, so the base is never freed under it.
  void *fibers = nullptr;

  // lib/dns: the c-ares channel, created on first use. dns_shutdown ends
  // every query in flight (their callbacks report RILL_ECANCELED).
  void *dns = nullptr;
  void (*dns_shutdown)(rill_base *base) = nullptr;
  rill_dns_config dns_config{};  // strings copied into dns_strings
  char *dns_strings = nullptr;

  rill_base_stats stats{};
  rill::detail::stall_detector stall;  // off unless asked for
};

namespace rill::detail {

// Nothing that calls a user callback is noexcept: a C++ exception thrown by
// the callback must unwind through it (lifetime.h, 6).

// io.cpp
void io_flush_changes(rill_base *base);
void io_dispatch(rill_base *base, int count);
// Reports the refused registrations still listed (base->failed and the
// marks): what a callback that threw left for the next run.
void io_report_refused(rill_base *base);
// Internal watchers belong to the base itself: they are not listed, not
// counted and do not keep the loop alive.
int io_create(rill_base *base, int fd, rill_io_cb cb, void *arg, bool internal,
              rill_io **out) noexcept;
// An embedded watcher (io_watch_fn above) for `fd`, a connection's socket,
// stopped; errors as rill_io_new's. Its events go to `ready(owner, ...)`:
// every embedded watcher of a base passes the same function.
int io_watch_add(rill_base *base, int fd, void *owner, io_watch_fn ready) noexcept;
// Its interest: RILL_READ and/or RILL_WRITE, 0 stops it. Never fails:
// io_watch_add made room for the change.
void io_watch_set(rill_base *base, int fd, unsigned want) noexcept;
// Its interest as io_watch_set left it (or the loop stopped it: a
// registration the kernel refused).
inline unsigned io_watch_want(const rill_base *base, int fd) noexcept {
  return base->fds[static_cast<size_t>(fd)].watch_want;
}
// Unregisters it at once, as rill_io_free does; `fd` is about to close.
void io_watch_remove(rill_base *base, int fd) noexcept;

// timer.cpp
void timers_run(rill_base *base);
int timer_create(rill_base *base, rill_timer_cb cb, void *arg, bool internal, rill_timer **out) noexcept;
// Nanoseconds from now_ns (the clock, read just before the wait) until the
// loop must look at the timers, or -1 when none is armed; notes the time to
// look in timers.check_ns, which arming lowers.
int64_t timers_next_timeout(rill_base *base, uint64_t now_ns) noexcept;

// base.cpp: a number for the calling thread, unique in the process and
// never reused (a pthread_t may be, once its thread has ended).
uint64_t this_thread_id() noexcept;

// post.cpp
int posts_init(rill_base *base) noexcept;
void posts_destroy(rill_base *base) noexcept;
// Runs every queued post, including those the posts make (rill_base_free).
void posts_drain(rill_base *base);
// After fork, in the child: a wake-up descriptor of the base's own.
int posts_reinit(rill_base *base) noexcept;
void base_wake(rill_base *base) noexcept;

// wakeup.cpp: a descriptor pair that makes the base's wait return.
int wakeup_open(int *read_fd, int *write_fd) noexcept;
void wakeup_signal(int write_fd) noexcept;
void wakeup_consume(int read_fd) noexcept;
void wakeup_close(int read_fd, int write_fd) noexcept;

// signal.cpp
void signals_destroy(rill_base *base) noexcept;
// After fork, in the child: a signal wake-up descriptor of the base's own.
int signals_reinit(rill_base *base) noexcept;

// The pool a handle of `kind` comes from.
inline handle_pool &pool_of(rill_base *base, handle_kind kind) noexcept {
  return kind == handle_kind::timer ? base->timer_pool : base->pool;
}

// Takes a slot from the base's pool and constructs a T (a handle type) in it;
// nullptr when out of memory.
template <typename T, typename... Args>
T *handle_new(rill_base *base, bool internal, Args &&...args) noexcept {
  void *slot = (std::is_same_v<T, rill_timer> ? base->timer_pool : base->pool).take();
  if (!slot)
    return nullptr;
  T *h = new (slot) T(std::forward<Args>(args)...);
  h->base = base;
  h->internal = internal;
  if (!internal)
    base->handle_count++;
  return h;
}

}  // namespace rill::detail

#endif
