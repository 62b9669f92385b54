// Signal watchers.
//
// The model is libuv's: one process-wide sigaction handler per watched
// signal, never a blocked signal. The handler is installed when the first
// watcher of a signal in the process starts (the previous disposition is
// saved) and the saved disposition comes back when the last one stops. It
// runs on whatever thread the kernel picks and only marks the signal pending
// for every base that watches it and writes to that base's wake-up
// descriptor; the base reads the descriptor in its loop and runs the
// watchers' callbacks on its own thread.
//
// Why not signalfd: it needs the signal blocked, and a blocked mask is
// inherited by threads created later and by fork+exec'd children (a spawned
// program then ignores `kill -TERM`), only one reader gets each signal (so
// one base per signal), and a stack switch that restores an old mask
// unblocks the signal behind the loop's back. A handler has none of these
// problems.
//
// The handler may only do async-signal-safe things, so it takes no lock and
// allocates nothing: it walks a lock-free list of per-base registrations
// (signal_slot) that are never unlinked or freed, only recycled, and touches
// nothing but lock-free atomics and write(2). Everything else (claiming a
// slot, installing and restoring dispositions) happens under a mutex on the
// threads that start and stop watchers.
//
// Deliveries are flags, not counts: a signal that arrives again before the
// base has read the first is merged with it, so a burst of N signals runs
// every watcher at least once and at most N times.
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/alloc.h"
#include "core/base_impl.h"

using namespace rill::detail;

static_assert(ATOMIC_BOOL_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2 &&
                  ATOMIC_POINTER_LOCK_FREE == 2,
              "the signal handler may only touch lock-free atomics");

namespace rill::detail {

constexpr int max_signal = 65;  // signal numbers are 1 ... 64 on Linux

// One base's registration with the process-wide handler. Slots are linked
// once and never freed, so the handler can walk the list at any moment; a
// base that goes away leaves its slot for the next one.
struct signal_slot {
  signal_slot *next = nullptr;  // written once, before the slot is published
  bool claimed = false;         // guarded by registry_mutex
  std::atomic<int> write_fd{-1};
  std::atomic<int> handlers_inside{0};  // handlers between reading write_fd and writing to it
  std::atomic<bool> watches[max_signal] = {};
  std::atomic<bool> pending[max_signal] = {};
};

struct signal_state {
  signal_slot *slot = nullptr;
  int read_fd = -1;
  int write_fd = -1;
  rill_io *io = nullptr;
  int watchers[max_signal] = {};  // started watchers per signal
  vec<rill_signal *> started;     // every started watcher
  vec<rill_signal *> snapshot;    // reused while dispatching
};

}  // namespace rill::detail

namespace {

std::atomic<signal_slot *> slots_head{nullptr};

pthread_mutex_t registry_mutex = PTHREAD_MUTEX_INITIALIZER;
int bases_watching[max_signal];               // guarded by registry_mutex
struct sigaction previous_action[max_signal];  // guarded by registry_mutex

void on_signal(int signum) {
  int saved = errno;
  if (signum > 0 && signum < max_signal) {
    for (signal_slot *s = slots_head.load(std::memory_order_acquire); s; s = s->next) {
      s->handlers_inside.fetch_add(1);
      // Only the first delivery since the base last looked wakes it; later
      // ones are merged into it.
      if (s->watches[signum].load() && !s->pending[signum].exchange(true)) {
        int fd = s->write_fd.load();
        if (fd >= 0)
          wakeup_signal(fd);
      }
      s->handlers_inside.fetch_sub(1);
    }
  }
  errno = saved;
}

// Waits until no handler can still write to the descriptor the slot had:
// the caller stored -1 first, so handlers that start now see that. A handler
// interrupting this thread finishes before the thread resumes, so this never
// waits for itself.
void wait_for_handlers(signal_slot *s) {
  while (s->handlers_inside.load() != 0)
    sched_yield();
}

signal_slot *claim_slot(int write_fd) {
  mutex_lock lock(registry_mutex);
  signal_slot *s = slots_head.load(std::memory_order_relaxed);
  while (s && s->claimed)
    s = s->next;
  bool fresh = !s;
  if (fresh) {
    // Never freed (the handler may be walking the list at any time); it is
    // reachable from slots_head, so leak checkers do not count it. Taken
    // from malloc, not from the user's allocator (rill_set_allocator),
    // which may be replaced while it lives.
    void *p = std::malloc(sizeof(signal_slot));
    if (!p)
      return nullptr;
    s = new (p) signal_slot;
  }
  for (int i = 0; i < max_signal; i++) {
    s->watches[i].store(false);
    s->pending[i].store(false);
  }
  s->claimed = true;
  s->write_fd.store(write_fd);
  if (fresh) {
    s->next = slots_head.load(std::memory_order_relaxed);
    slots_head.store(s, std::memory_order_release);
  }
  return s;
}

void unclaim_slot(signal_slot *s) {
  mutex_lock lock(registry_mutex);
  s->write_fd.store(-1);
  wait_for_handlers(s);
  s->claimed = false;
}

// The first watcher of `signum` on this base: route the signal to the base,
// installing the handler if no other base watches it yet.
int claim(rill_base *base, int signum) {
  signal_slot *s = base->signals->slot;
  mutex_lock lock(registry_mutex);
  if (bases_watching[signum] == 0) {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    // Interrupted system calls resume instead of failing with EINTR in code
    // that never expected a signal; the short handler runs with every other
    // signal held off.
    sa.sa_flags = SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (sigaction(signum, &sa, &previous_action[signum]) < 0)
      return -errno;
  }
  bases_watching[signum]++;
  // A delivery left over from an earlier watch (read after its watchers
  // stopped) must not reach the new watcher.
  s->pending[signum].store(false);
  s->watches[signum].store(true);
  return 0;
}

// The last watcher of `signum` on this base stopped: stop routing it here,
// and give the signal its old disposition back if no base watches it now.
void release(rill_base *base, int signum) {
  signal_slot *s = base->signals->slot;
  mutex_lock lock(registry_mutex);
  s->watches[signum].store(false);
  if (--bases_watching[signum] == 0)
    sigaction(signum, &previous_action[signum], nullptr);
}

// Holds every watcher of a snapshot until the delivery ends, by return or
// by an exception from a callback.
class snapshot_hold {
 public:
  explicit snapshot_hold(vec<rill_signal *> &snapshot) noexcept : snapshot_(snapshot) {
    for (size_t i = 0; i < snapshot_.size(); i++)
      life_hold(snapshot_[i]->lifetime);
  }
  snapshot_hold(const snapshot_hold &) = delete;
  snapshot_hold &operator=(const snapshot_hold &) = delete;
  ~snapshot_hold() {
    for (size_t i = 0; i < snapshot_.size(); i++)
      handle_release(snapshot_[i]);
    snapshot_.clear();
  }

 private:
  vec<rill_signal *> &snapshot_;
};

void deliver(rill_base *base, int signum) {
  signal_state *st = base->signals;
  // Callbacks may stop or free any watcher, so walk a snapshot, holding
  // each watcher in it; freed ones stay in memory until the end and are
  // skipped.
  st->snapshot.clear();
  for (size_t i = 0; i < st->started.size(); i++)
    if (st->started[i]->signum == signum)
      st->snapshot.push(st->started[i]);
  snapshot_hold hold(st->snapshot);
  for (size_t i = 0; i < st->snapshot.size(); i++) {
    rill_signal *s = st->snapshot[i];
    if (!s->lifetime.open() || !s->active || s->signum != signum)
      continue;
    base->stats.events++;
    RILL_STALL_BEGIN(base);
    s->cb(s, signum, s->arg);
    RILL_STALL_END(base, RILL_STALL_SIGNAL, stall_fn(s->cb), s->arg, 0);
  }
}

void on_readable(rill_io *, int fd, unsigned, void *arg) {
  auto *base = static_cast<rill_base *>(arg);
  // Consume the wake-up before looking at the flags: a signal that lands in
  // between sets its flag (seen below) and wakes the base once more.
  wakeup_consume(fd);
  signal_slot *slot = base->signals->slot;  // outlives every callback: only rill_base_free drops it
  for (int signum = 1; signum < max_signal; signum++)
    if (slot->pending[signum].exchange(false))
      deliver(base, signum);
}

// Opens the base's signal wake-up descriptor and watches it: the pair
// (read_fd, write_fd, io) is returned through `st`.
int open_wakeup(rill_base *base, signal_state *st) {
  int err = wakeup_open(&st->read_fd, &st->write_fd);
  if (err)
    return err;
  err = io_create(base, st->read_fd, on_readable, base, true, &st->io);
  if (!err)
    err = rill_io_start(st->io, RILL_READ);
  if (err) {
    rill_io_free(st->io);
    st->io = nullptr;
    wakeup_close(st->read_fd, st->write_fd);
    st->read_fd = st->write_fd = -1;
  }
  return err;
}

int open_state(rill_base *base) {
  if (base->signals)
    return 0;
  signal_state *st = make<signal_state>();
  if (!st)
    return RILL_ENOMEM;
  int err = open_wakeup(base, st);
  if (err) {
    destroy(st);
    return err;
  }
  st->slot = claim_slot(st->write_fd);
  if (!st->slot) {
    rill_io_free(st->io);
    wakeup_close(st->read_fd, st->write_fd);
    destroy(st);
    return RILL_ENOMEM;
  }
  base->signals = st;
  return 0;
}

int stop(rill_signal *sig) {
  if (!sig->active)
    return 0;
  rill_base *base = sig->base;
  signal_state *st = base->signals;
  handle_set_active(sig, false);
  for (size_t i = 0; i < st->started.size(); i++)
    if (st->started[i] == sig) {
      st->started[i] = st->started.back();
      st->started.pop_back();
      break;
    }
  if (--st->watchers[sig->signum] == 0)
    release(base, sig->signum);
  sig->signum = 0;
  return 0;
}

}  // namespace

namespace rill::detail {

void signals_destroy(rill_base *base) noexcept {
  signal_state *st = base->signals;
  if (!st)
    return;
  // Every watcher is stopped by now (the base has no handles left), so the
  // slot watches nothing; once no handler can write to our descriptor, the
  // slot is free for another base.
  unclaim_slot(st->slot);
  rill_io_free(st->io);
  wakeup_close(st->read_fd, st->write_fd);
  destroy(st);
  base->signals = nullptr;
}

int signals_reinit(rill_base *base) noexcept {
  signal_state *st = base->signals;
  if (!st)
    return 0;
  // The inherited descriptor is shared with the parent: a signal to either
  // process would wake whichever reads first. Open one of our own.
  signal_state fresh;
  int err = open_wakeup(base, &fresh);
  if (err)
    return err;
  signal_slot *s = st->slot;
  s->write_fd.store(fresh.write_fd);
  // Only this thread exists in the child, and a handler interrupting it runs
  // to its end before the thread resumes: a count inherited from a parent
  // thread that was inside the handler at the fork is stale, and no handler
  // can still hold the old descriptor.
  s->handlers_inside.store(0);
  // What the parent received before the fork was the parent's.
  for (int i = 0; i < max_signal; i++)
    s->pending[i].store(false);
  rill_io_free(st->io);
  wakeup_close(st->read_fd, st->write_fd);
  st->read_fd = fresh.read_fd;
  st->write_fd = fresh.write_fd;
  st->io = fresh.io;
  return 0;
}

}  // namespace rill::detail

extern "C" {

int rill_signal_new(rill_base *base, rill_signal_cb cb, void *arg, rill_signal **out) {
  if (!base || !cb || !out)
    return RILL_EINVAL;
  rill_signal *sig = handle_new<rill_signal>(base, false, cb, arg);
  if (!sig)
    return RILL_ENOMEM;
  *out = sig;
  return 0;
}

int rill_signal_start(rill_signal *sig, int signum) {
  if (signum <= 0 || signum >= max_signal || signum >= NSIG || signum == SIGKILL ||
      signum == SIGSTOP)
    return RILL_EINVAL;
  if (int err = handle_check(sig, handle_kind::signal))
    return err;
  if (sig->active && sig->signum == signum)
    return 0;
  rill_base *base = sig->base;
  int err = open_state(base);
  if (err)
    return err;
  signal_state *st = base->signals;
  if (!st->started.reserve(st->started.size() + 1) || !st->snapshot.reserve(st->started.size() + 1))
    return RILL_ENOMEM;
  if (st->watchers[signum] == 0) {
    err = claim(base, signum);
    if (err)
      return err;
  }
  stop(sig);
  st->started.push(sig);
  st->watchers[signum]++;
  sig->signum = signum;
  handle_set_active(sig, true);
  return 0;
}

int rill_signal_stop(rill_signal *sig) {
  if (int err = handle_check(sig, handle_kind::signal))
    return err;
  return stop(sig);
}

int rill_signal_signum(const rill_signal *sig) {
  return handle_check(sig, handle_kind::signal) == 0 && sig->active ? sig->signum : 0;
}

void rill_signal_free(rill_signal *sig) {
  if (handle_check(sig, handle_kind::signal) != 0)
    return;
  stop(sig);
  handle_close(sig);
}

}  // extern "C"
