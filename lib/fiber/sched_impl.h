// The scheduler's state, shared by scheduler.cpp (running fibers) and
// idle.cpp (taking the stack pages of fibers that wait long).
#ifndef RILL_FIBER_SCHED_IMPL_H
#define RILL_FIBER_SCHED_IMPL_H

#include <cstdint>

#include "core/pending.h"
#include "core/stall.h"
#include "core/vec.h"
#include "fiber/fiber_impl.h"
#include "fiber/stack.h"

#if defined(__SANITIZE_ADDRESS__)
#define RILL_FIBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RILL_FIBER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define RILL_FIBER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RILL_FIBER_TSAN 1
#endif
#endif

namespace rill::detail {
struct scheduler;
struct saved_frames;  // idle.cpp
}  // namespace rill::detail

// On the heap, not on its stack: a fiber whose frames idle.cpp moved away
// has no stack pages, yet its queues and timers still reach this.
struct rill_fiber {
  void *sp = nullptr;
  void *deepest_sp = nullptr;  // the lowest `sp` it switched out with
  rill::detail::fiber_stack stack;
  rill::detail::scheduler *sched;
  rill_fiber_fn fn;
  void *arg;
  rill::detail::list_node queue_node;  // in the ready queue or a wait queue
  bool done = false;
  bool private_stack = false;  // rill_fiber_private_stack()
  int wake_status = 0;
  rill_timer *sleep_timer = nullptr;
  uint64_t id = 0;  // rill_fiber_id()
  // Called once the fiber, woken, has run and parked again (or ended), on
  // the loop's stack; set by whoever woke it (net_conn.cpp's read check).
  void (*after_run)(void *) = nullptr;
  void *after_run_arg = nullptr;
  // While parked in fiber_park_idle(): its place in the scheduler's idle
  // list, the sweep it started waiting in, and the bytes its stack need not
  // keep. `saved` holds its frames once idle.cpp moved them off the stack.
  rill::detail::list_node idle_node;
  uint32_t idle_since = 0;
  const char *scratch = nullptr;
  size_t scratch_len = 0;
  void (*on_idle)(void *) = nullptr;
  void *on_idle_arg = nullptr;
  rill::detail::saved_frames *saved = nullptr;
#ifdef RILL_FIBER_TSAN
  void *tsan_fiber = nullptr;
#endif
};

namespace rill::detail {

struct scheduler {
  rill_base *base;
  void *loop_sp = nullptr;  // the loop's context while a fiber runs
  rill_fiber *current = nullptr;
  fiber_queue ready;
  // What runs the ready queue (scheduler.cpp): `run_soon` on the base's
  // pending queue, or `kick`, a 0 ms timer, once a run spent its budget.
  rill::detail::pending_node run_soon;
  rill_timer *kick = nullptr;
  bool kick_armed = false;  // rill_timer_active(kick), without the call per wake-up
  size_t live = 0;
  uint64_t net_read_copied = 0;  // bytes net_conn.cpp's read path copied (for a test)
  vec<fiber_stack> pool;  // default-size stacks for reuse
  stall_detector *stall;  // the base's
  // idle.cpp: fibers parked in fiber_park_idle(), oldest first, and the
  // clock that sweeps them: a timerfd watched by `sweep_io` (Linux), else
  // the timer `sweeper` (created on first use; internal, so neither keeps
  // the loop alive).
  list idle;
  int sweep_fd = -1;
  rill_io *sweep_io = nullptr;
  int sweep_owner = 0;  // getpid() of its creator: a forked child's is shared
  rill_timer *sweeper = nullptr;
  bool sweeper_armed = false;  // a sweep is due, without a call per park to ask
  uint32_t sweeps = 0;
#ifdef RILL_FIBER_ASAN
  const void *loop_stack_bottom = nullptr;
  size_t loop_stack_size = 0;
#endif
#ifdef RILL_FIBER_TSAN
  void *loop_tsan_fiber = nullptr;
#endif
};

// idle.cpp. idle_enter() puts the running fiber `f`, about to park, on the
// idle list when its stack is private or it has an on_idle hook; the sweep
// later calls the hook and moves a private stack's frames to the heap,
// leaving `scratch` (len bytes whose contents need not survive the park)
// out. idle_leave() brings them back, just before `f` runs again.
// Inline: every read of a fiber-held connection parks through here.
// sweeper_arm() starts the sweeps' clock, false when it cannot;
// sweeper_disarm() stops it.
bool sweeper_arm(scheduler *s);
void sweeper_disarm(scheduler *s);
inline void idle_enter(scheduler *s, rill_fiber *f, const void *scratch, size_t len,
                       void (*on_idle)(void *), void *arg) {
  if (!f->private_stack && !on_idle)
    return;
  if (!s->sweeper_armed && !sweeper_arm(s))
    return;  // out of memory: the fiber keeps its pages, nothing else changes
  f->scratch = static_cast<const char *>(scratch);
  f->scratch_len = len;
  f->on_idle = on_idle;
  f->on_idle_arg = arg;
  f->idle_since = s->sweeps;
  s->idle.push_back(&f->idle_node);
}
void idle_leave(rill_fiber *f);
void idle_destroy(scheduler *s);

}  // namespace rill::detail

#endif
