// The base: creation, the run loop and its phases, stop, and introspection.
//
// One iteration:
//   1. hand batched interest changes to the backend;
//   2. wait for readiness, at most until the next timer is due (not at all
//      if a timer is already due, when stopping, or in RILL_RUN_NOWAIT);
//   3. read the clock; dispatch readiness (posted functions and signals
//      arrive this way too, through the base's own descriptors), then the
//      pending queue (reports that must not run inside the API call that
//      caused them);
//   4. run the timers that are due, each at most once, and again the
//      pending queue (each time in a bounded number of passes: pending.h).
//
// The base's state (idle, running, freeing: base_impl.h) is set by a guard
// object, so an exception thrown by a callback leaves the base idle and
// usable; the holds taken around each dispatch are guards too.
#include <cstdlib>
#include <cstring>

#include "core/alloc.h"
#include "core/base_impl.h"
#include "core/clock.h"
#include "core/fiber_slot.h"
#include "rill.h"

using namespace rill::detail;

namespace {

constexpr int event_capacity = 1024;

bool alive(const rill_base *base) {
  return base->active_count > 0 || base->refs > 0 || !base->pending.empty();
}

// Never behind a time a timer was started at (core/clock.h) while a timer
// may be due by then (check_ns: arming lowers it to the due time), so a
// timer started with 0 ns is due on the next iteration and none is early.
// Otherwise a plain reading: catching up spins for up to the start clock's
// lead (about 1 µs), which a loop restarting a 10 s timer per event would
// pay on every iteration.
void update_time(rill_base *base) {
  base->now_ns = base->timers.check_ns <= base->start_clock.last_ns ? start_clock_catch_up(base->start_clock)
                                                                     : monotonic_ns();
}

void claim_thread(rill_base *base) {
  base->loop_thread.store(this_thread_id(), std::memory_order_relaxed);
}

// now_ns: the clock, read just before.
int64_t wait_timeout(rill_base *base, rill_run_mode mode, uint64_t now_ns) {
  // Asked once per iteration, here: it also notes when to run the timers
  // after the wait (timers.check_ns, lowered by anything armed meanwhile).
  int64_t timers = wheel_empty(base->timers) ? -1 : timers_next_timeout(base, now_ns);
  if (mode == RILL_RUN_NOWAIT || base->stop_requested.load(std::memory_order_relaxed) ||
      !base->pending.empty())
    return 0;
  // Nothing can make a single iteration end: do not block forever.
  if (!alive(base))
    return 0;
  return timers;
}

int iterate(rill_base *base, rill_run_mode mode) {
  if (!base->changes.empty())
    io_flush_changes(base);
  // The loop's time is as old as the callbacks run since it woke: the
  // clock is read afresh, for the timers' wait (timer.cpp says why) and so
  // that wait_ns counts the wait alone (and the few ns of working out how
  // long).
  uint64_t before = monotonic_ns();
  int64_t timeout = wait_timeout(base, mode, before);
  int n = base->backend->wait(base->backend_state, timeout, base->events.data(), event_capacity);
  update_time(base);
  base->stats.wait_ns += base->now_ns - before;
  base->stats.iterations++;
  if (n < 0)
    return n;
  io_dispatch(base, n);
  // Most iterations have no report queued and no timer due: checked here,
  // they cost a test each instead of a call (the echo's profile).
  if (!base->pending.empty())
    pending_run(base);
  if (!wheel_empty(base->timers) && base->now_ns >= base->timers.check_ns)
    timers_run(base);
  if (!base->pending.empty())
    pending_run(base);
  return 0;
}

const char *kind_name(handle_kind kind) {
  switch (kind) {
    case handle_kind::io:
      return "io";
    case handle_kind::timer:
      return "timer";
    case handle_kind::signal:
      return "signal";
  }
  return "?";
}

void dump_handle(const void *slot, void *ctx) {
  auto *h = static_cast<const handle *>(slot);
  auto *out = static_cast<FILE *>(ctx);
  if (!h->lifetime.open() || h->internal)
    return;
  fprintf(out, "  %-6s %p %-8s", kind_name(h->kind), slot, h->active ? "active" : "inactive");
  switch (h->kind) {
    case handle_kind::io: {
      auto *io = static_cast<const rill_io *>(h);
      fprintf(out, " fd=%d events=%s%s", io->fd, io->events & RILL_READ ? "r" : "",
              io->events & RILL_WRITE ? "w" : "");
      break;
    }
    case handle_kind::timer: {
      auto *t = static_cast<const rill_timer *>(h);
      if (h->active)
        fprintf(out, " due_in_ms=%llu repeat_ms=%llu",
                static_cast<unsigned long long>(rill_timer_remaining(t)),
                static_cast<unsigned long long>(t->repeat_ns / ns_per_ms));
      break;
    }
    case handle_kind::signal:
      fprintf(out, " signum=%d", static_cast<const rill_signal *>(h)->signum);
      break;
  }
  fputc('\n', out);
}

// Keeps the resolver settings, with private copies of their strings.
int copy_dns_config(rill_base *base, const rill_dns_config &cfg) {
  size_t servers = cfg.servers ? std::strlen(cfg.servers) + 1 : 0;
  size_t hosts = cfg.hosts_file ? std::strlen(cfg.hosts_file) + 1 : 0;
  base->dns_config = cfg;
  if (!servers && !hosts)
    return 0;
  base->dns_strings = static_cast<char *>(mem_alloc(servers + hosts));
  if (!base->dns_strings)
    return RILL_ENOMEM;
  if (servers) {
    std::memcpy(base->dns_strings, cfg.servers, servers);
    base->dns_config.servers = base->dns_strings;
  }
  if (hosts) {
    std::memcpy(base->dns_strings + servers, cfg.hosts_file, hosts);
    base->dns_config.hosts_file = base->dns_strings + servers;
  }
  return 0;
}

void teardown(rill_base *base) {
  if (base->dns_shutdown)
    base->dns_shutdown(base);
  mem_free(base->dns_strings);
  if (base->net_destroy)
    base->net_destroy(base);
  signals_destroy(base);
  posts_destroy(base);
  if (base->backend_state)
    base->backend->destroy(base->backend_state);
  destroy(base);
  note_base_freed();
}

// Puts the base in `state` for a scope and back to idle when the scope ends,
// by return or by an exception, unless dismissed (the base is gone).
class state_scope {
 public:
  state_scope(rill_base *base, base_state state) noexcept : base_(base) { base->state = state; }
  state_scope(const state_scope &) = delete;
  state_scope &operator=(const state_scope &) = delete;
  ~state_scope() {
    if (!base_)
      return;
    if (base_->state == base_state::running)
      base_->stop_requested.store(false, std::memory_order_relaxed);
    base_->state = base_state::idle;
  }
  void dismiss() noexcept { base_ = nullptr; }

 private:
  rill_base *base_;
};

// What rill_base_free() runs before the teardown: the posts still queued,
// then the cancellation of lookups in flight. 0 when nothing is left that
// would keep the base busy.
int wind_down(rill_base *base) {
  posts_drain(base);
  if (base->handle_count || !pending_empty(base))
    return RILL_EBUSY;
  if (base->dns_shutdown) {
    // Lookups and dials in flight end now, their callbacks saying
    // RILL_ECANCELED; what those callbacks start may keep the base busy.
    base->dns_shutdown(base);
    pending_run(base);
    if (base->handle_count || !pending_empty(base))
      return RILL_EBUSY;
  }
  return 0;
}

}  // namespace

namespace rill::detail {

void *&base_fiber_slot(rill_base *base) noexcept { return base->fibers; }

uint64_t this_thread_id() noexcept {
  static std::atomic<uint64_t> next_id{1};
  thread_local uint64_t id = next_id.fetch_add(1, std::memory_order_relaxed);
  return id;
}

}  // namespace rill::detail

extern "C" {

int rill_base_new(const rill_base_config *config, rill_base **out) {
  if (!out)
    return RILL_EINVAL;
  const char *name = config ? config->backend : nullptr;
  if (!name)
    name = std::getenv("RILL_BACKEND");
  const backend_ops *ops = backend_find(name);
  if (!ops)
    return RILL_EBACKEND;
  rill_base *base = make<rill_base>();
  if (!base)
    return RILL_ENOMEM;
  note_base_created();
  base->backend = ops;
  int err = base->events.resize_zeroed(event_capacity) ? 0 : RILL_ENOMEM;
  if (!err && config)
    err = copy_dns_config(base, config->dns);
  if (!err)
    err = backend_init(&base->backend, &base->backend_state);
  if (!err)
    err = posts_init(base);
  if (err) {
    teardown(base);
    return err;
  }
  update_time(base);
  claim_thread(base);
  stall_init_from_env(base->stall);
  *out = base;
  return 0;
}

int rill_base_free(rill_base *base) {
  if (!base)
    return 0;
  // From a callback of rill_base_run() or of this very call: the caller's
  // frames still use the base.
  if (base->state != base_state::idle)
    return RILL_EBUSY;
  state_scope freeing(base, base_state::freeing);
  if (int err = wind_down(base))
    return err;
  // Still freeing through the teardown, which runs no user callback.
  freeing.dismiss();
  teardown(base);
  return 0;
}

int rill_base_run(rill_base *base, rill_run_mode mode) {
  if (!base || (mode != RILL_RUN_DEFAULT && mode != RILL_RUN_ONCE && mode != RILL_RUN_NOWAIT))
    return RILL_EINVAL;
  if (base->state != base_state::idle)
    return RILL_EBUSY;
  int err = 0;
  {
    state_scope running(base, base_state::running);
    claim_thread(base);
    update_time(base);
    // A callback that threw out of the last run may have left refusals
    // listed; they go first, whatever the next flush of interest would be.
    if (!base->failed.empty() || base->refused_unlisted)
      io_report_refused(base);
    for (;;) {
      if (base->stop_requested.load(std::memory_order_acquire))
        break;
      if (mode == RILL_RUN_DEFAULT && !alive(base))
        break;
      err = iterate(base, mode);
      if (err || mode != RILL_RUN_DEFAULT)
        break;
    }
    // Sends the last callbacks queued (io_uring) go now, not with the next run.
    if (const backend_stream_ops *streams = backend_streams(base->backend))
      streams->submit(base->backend_state);
  }
  if (err)
    return err;
  return alive(base) ? 1 : 0;
}

int rill_base_stop(rill_base *base) {
  if (!base)
    return RILL_EINVAL;
  base->stop_requested.store(true, std::memory_order_release);
  base_wake(base);
  return 0;
}

uint64_t rill_base_now(const rill_base *base) { return base ? base->now_ns : 0; }

uint64_t rill_time_now(void) { return monotonic_ns(); }

void rill_base_update_time(rill_base *base) {
  if (base)
    update_time(base);
}

void rill_base_ref(rill_base *base) {
  if (base)
    base->refs++;
}

void rill_base_unref(rill_base *base) {
  if (base && base->refs > 0)
    base->refs--;
}

int rill_base_in_loop_thread(const rill_base *base) {
  // Relaxed is enough: only the calling thread can have stored its own id.
  return base && base->loop_thread.load(std::memory_order_relaxed) == this_thread_id() ? 1 : 0;
}

const char *rill_base_backend(const rill_base *base) { return base ? base->backend->name : nullptr; }

int rill_base_stats_get(const rill_base *base, rill_base_stats *out) {
  if (!base || !out)
    return RILL_EINVAL;
  *out = base->stats;
  out->handles = base->handle_count;
  out->active = base->active_count;
  return 0;
}

int rill_base_dump(const rill_base *base, FILE *out) {
  if (!base || !out)
    return RILL_EINVAL;
  fprintf(out, "rill_base %p backend=%s handles=%llu active=%llu\n", static_cast<const void *>(base),
          base->backend->name, static_cast<unsigned long long>(base->handle_count),
          static_cast<unsigned long long>(base->active_count));
  base->pool.for_each_used(dump_handle, out);
  // Embedded watchers (a connection's: core/base_impl.h, io_watch_fn) are in
  // no pool; the descriptor table knows them.
  for (size_t fd = 0; fd < base->fds.size(); fd++) {
    const fd_slot &slot = base->fds[fd];
    if (!slot.embedded)
      continue;
    unsigned want = slot.watch_want;
    fprintf(out, "  %-6s %p %-8s fd=%zu events=%s%s embedded\n", "io", slot.watcher,
            want ? "active" : "inactive", fd, want & RILL_READ ? "r" : "", want & RILL_WRITE ? "w" : "");
  }
  base->timer_pool.for_each_used(dump_handle, out);
  return ferror(out) ? -EIO : 0;
}

unsigned rill_version(void) {
  return (RILL_VERSION_MAJOR << 16) | (RILL_VERSION_MINOR << 8) | RILL_VERSION_PATCH;
}

const char *rill_version_string(void) { return RILL_VERSION_STRING; }

}  // extern "C"
