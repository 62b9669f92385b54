// The fiber scheduler: one per base that runs fibers, created by the first
// rill_go() and gone with the last fiber.
//
// Fibers run from the loop: a woken fiber is put on the ready queue, and
// the scheduler's node on the base's pending queue runs the queue in the
// same loop iteration — the pending queue runs after readiness is
// dispatched and again after the timers, so a fiber woken by its socket or
// a timer runs before the loop waits again. Like Go's scheduler, which polls
// the network only now and then, a run keeps running fibers that other
// fibers wake, for a bounded number of switches; what is still ready then
// waits for a 0 ms timer (the "kick"), which runs after the loop polled
// again. The pending node costs a list push per wake-up; the kick timer,
// used for every wake-up before, cost a clock read and a timer wheel insert
// and removal (about 230 instructions per echo round trip, callgrind).
// Switching happens only between such a run and a fiber, never from inside
// another callback, so callbacks of the callback API never find themselves
// re-entered.
//
// Under AddressSanitizer and ThreadSanitizer every switch is announced to
// the sanitizer, which otherwise mistakes a new stack for a wild access.
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>

#include "core/fiber_slot.h"
#include "fiber/context.h"
#include "fiber/sched_impl.h"

#ifdef RILL_FIBER_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef RILL_FIBER_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace rill::detail {

// A thread's default: deep recursion and megabytes of locals work, and
// only the pages a fiber touches are committed (stack.h).
constexpr size_t default_stack_size = 8 * 1024 * 1024;
constexpr size_t pooled_stacks_max = 64;
// What a pooled stack keeps committed for its next fiber: the frames of a
// typical call chain and a read buffer. Below that, a deep fiber's pages
// go back to the kernel when its stack returns to the pool. 8 KiB was too
// little for a connection's fiber with a 16 KiB buffer (a TLS record) or an
// SSL_write's frames: every such fiber ending paid an madvise and its
// successor page faults, a third of the fiber TLS echo server's CPU per
// handshake (docs/bench/tls.md). At most pooled_stacks_max * this stays.
constexpr size_t pooled_stack_keep = 64 * 1024;
constexpr int extra_switches = 64;

namespace {

thread_local rill_fiber *running = nullptr;
std::atomic<uint64_t> next_fiber_id{1};  // fibers start on any base's thread

scheduler *find(const rill_base *base) {
  return base ? static_cast<scheduler *>(base_fiber_slot(const_cast<rill_base *>(base))) : nullptr;
}

void run_ready(rill_timer *, void *arg);

void run_soon(pending_node *node) {
  run_ready(nullptr, RILL_CONTAINER_OF(node, scheduler, run_soon));
}

scheduler *get_or_create(rill_base *base) {
  if (scheduler *s = find(base))
    return s;
  auto *s = make<scheduler>();
  if (!s)
    return nullptr;
  s->base = base;
  s->stall = stall_of(base);
  s->run_soon.run = run_soon;
  if (rill_timer_new(base, run_ready, s, &s->kick) != 0) {
    destroy(s);
    return nullptr;
  }
  base_fiber_slot(base) = s;
  return s;
}

void destroy_scheduler(scheduler *s) {
  base_fiber_slot(s->base) = nullptr;
  pending_cancel(s->base, &s->run_soon);
  rill_timer_free(s->kick);
  idle_destroy(s);
  for (size_t i = 0; i < s->pool.size(); i++)
    stack_free(s->pool[i]);
  destroy(s);
}

// Saves the current context in *save and continues `to`, whose stack is
// [stack_bottom, +stack_size), telling the sanitizers. `for_good`: the
// current stack is never resumed (a finished fiber), so ASan keeps no fake
// stack for it.
void switch_stacks(void **save, void *to, const void *stack_bottom, size_t stack_size,
                   [[maybe_unused]] void *tsan_to, [[maybe_unused]] bool for_good) {
#ifdef RILL_FIBER_ASAN
  void *fake = nullptr;
  __sanitizer_start_switch_fiber(for_good ? nullptr : &fake, stack_bottom, stack_size);
#else
  (void)stack_bottom;
  (void)stack_size;
#endif
#ifdef RILL_FIBER_TSAN
  __tsan_switch_to_fiber(tsan_to, 0);
#endif
  context_switch(save, to);
#ifdef RILL_FIBER_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

// From the loop into `f`, until it parks or ends.
void switch_into(scheduler *s, rill_fiber *f) {
  // A fiber may run another base's loop; its own fiber comes back after.
  rill_fiber *outer = running;
  running = f;
  s->current = f;
#ifdef RILL_FIBER_TSAN
  void *tsan_to = f->tsan_fiber;
#else
  void *tsan_to = nullptr;
#endif
  if (f->saved)
    idle_leave(f);
  switch_stacks(&s->loop_sp, f->sp, f->stack.base, f->stack.size, tsan_to, false);
  if (f->sp < f->deepest_sp)  // for fiber_delete's guess at how deep it went
    f->deepest_sp = f->sp;
  running = outer;
  s->current = nullptr;
}

// From `f` back to the loop.
void switch_out(rill_fiber *f) {
  scheduler *s = f->sched;
#ifdef RILL_FIBER_ASAN
  const void *bottom = s->loop_stack_bottom;
  size_t size = s->loop_stack_size;
#else
  const void *bottom = nullptr;
  size_t size = 0;
#endif
#ifdef RILL_FIBER_TSAN
  void *tsan_to = s->loop_tsan_fiber;
#else
  void *tsan_to = nullptr;
#endif
  switch_stacks(&f->sp, s->loop_sp, bottom, size, tsan_to, f->done);
}

[[noreturn]] void fiber_main(void *arg) {
  auto *f = static_cast<rill_fiber *>(arg);
#ifdef RILL_FIBER_ASAN
  // The first entry: learn the loop's stack, for switching back.
  __sanitizer_finish_switch_fiber(nullptr, &f->sched->loop_stack_bottom, &f->sched->loop_stack_size);
#endif
  f->fn(f->arg);
  f->done = true;
  switch_out(f);
  std::abort();  // a finished fiber is never resumed
}

// A new fiber with a stack of `stack_size` bytes (0: the default, from the
// pool when it has one). Returns 0, RILL_ENOMEM, or stack_alloc's error.
int fiber_new(scheduler *s, size_t stack_size, rill_fiber **out) {
  auto *f = make<rill_fiber>();
  if (!f)
    return RILL_ENOMEM;
  fiber_stack stack;
  if (stack_size == 0)
    stack_size = default_stack_size;
  if (stack_size == default_stack_size && !s->pool.empty()) {
    stack = s->pool.back();
    s->pool.pop_back();
    stack_reset(stack);
  } else if (int err = stack_alloc(stack_size, &stack)) {
    destroy(f);
    return err;
  }
  f->stack = stack;
  f->deepest_sp = static_cast<char *>(stack.base) + stack.size;
  f->sched = s;
  *out = f;
  return 0;
}

// Frees `f` and pools or unmaps its stack. A stack that cannot be pooled
// (the pool is full, or cannot grow) is unmapped: pooling is an
// optimisation, never a reason to fail.
void fiber_delete(scheduler *s, rill_fiber *f) {
  fiber_stack stack = f->stack;
  const void *deepest_sp = f->deepest_sp;
  destroy(f);
  if (stack.size == default_stack_size && s->pool.size() < pooled_stacks_max) {
    // madvise costs more than the rest of a spawn: only for a deep fiber.
    if (stack_used_below(stack, pooled_stack_keep, deepest_sp))
      stack_release_pages(stack, pooled_stack_keep);
    if (s->pool.push(stack))
      return;
  }
  stack_free(stack);
}

void release(scheduler *s, rill_fiber *f) {
  rill_timer_free(f->sleep_timer);
#ifdef RILL_FIBER_TSAN
  __tsan_destroy_fiber(f->tsan_fiber);
#endif
  fiber_delete(s, f);
  if (--s->live == 0)
    destroy_scheduler(s);
}

void run_ready(rill_timer *kick, void *arg) {
  auto *s = static_cast<scheduler *>(arg);
  if (kick)
    s->kick_armed = false;
#ifdef RILL_FIBER_TSAN
  if (!s->loop_tsan_fiber)
    s->loop_tsan_fiber = __tsan_get_current_fiber();
#endif
  // Every fiber ready now runs. Fibers made ready meanwhile (a yield, a
  // hand-off between fibers) run too, up to a budget: cooperating fibers do
  // not pay a loop iteration per switch, and the loop still polls at least
  // every `extra_switches` switches, so io cannot starve.
  rill_fiber *last = s->ready.back();
  bool past_last = false;
  int extra = 0;
  while (!s->ready.empty() && (!past_last || extra++ < extra_switches)) {
    rill_fiber *f = s->ready.pop();
    past_last = past_last || f == last;
    // The stall detector (core/stall.h) measures each run of a fiber on its
    // own, and reports it once the fiber is released: the report is a user
    // callback, which may throw.
    rill_base *base = s->base;
    stall_detector &stall = *s->stall;
    if (stall.threshold_ns)
      stall_slice_begin(stall);
    switch_into(s, f);
    if (void (*after)(void *) = f->after_run) {
      f->after_run = nullptr;
      after(f->after_run_arg);
    }
    // Taken before `f` may be freed; the fiber may have turned the
    // detector on in this run.
    stall_source what{};
    if (stall.threshold_ns)
      what = stall_source{RILL_STALL_FIBER, stall_fn(f->fn), f->arg, f->id};
    bool scheduler_gone = false;
    if (f->done) {
      scheduler_gone = s->live == 1;
      release(s, f);
    }
    if (stall.threshold_ns)
      stall_slice_end(base, stall, what);
    if (scheduler_gone)
      return;
  }
  // Fibers woken during this run were run by it, or wait for the loop to
  // poll first: either way not for another pass of the pending queue.
  pending_cancel(s->base, &s->run_soon);
  if (!s->ready.empty() && rill_timer_start(s->kick, 0, 0) == 0)
    s->kick_armed = true;
}

void make_ready(rill_fiber *f) {
  scheduler *s = f->sched;
  list::remove(&f->queue_node);  // a fiber woken directly leaves its wait queue
  list::remove(&f->idle_node);
  s->ready.push(f);
  // While the kick is armed, the queue waits for it (the loop polls first).
  if (!s->kick_armed)
    pending_push(s->base, &s->run_soon);  // a no-op while it is queued
}

void on_sleep_done(rill_timer *, void *arg) { fiber_unpark(static_cast<rill_fiber *>(arg), 0); }

}  // namespace

void fiber_queue::push(rill_fiber *f) { fibers.push_back(&f->queue_node); }

rill_fiber *fiber_queue::pop() {
  list_node *n = fibers.pop_front();
  return n ? RILL_CONTAINER_OF(n, rill_fiber, queue_node) : nullptr;
}

rill_fiber *fiber_queue::back() const {
  return fibers.empty() ? nullptr : RILL_CONTAINER_OF(fibers.head.prev, rill_fiber, queue_node);
}

int fiber_park() {
  rill_fiber *f = running;
  f->wake_status = 0;
  switch_out(f);
  return f->wake_status;
}

int fiber_park_idle(const void *scratch, size_t len, void (*on_idle)(void *), void *arg) {
  rill_fiber *f = running;
  idle_enter(f->sched, f, scratch, len, on_idle, arg);
  return fiber_park();
}

void fiber_unpark(rill_fiber *f, int status) {
  f->wake_status = status;
  make_ready(f);
}

bool fiber_after_run(rill_fiber *f, void (*fn)(void *), void *arg) {
  if (f->after_run)
    return false;
  f->after_run = fn;
  f->after_run_arg = arg;
  return true;
}

int fiber_wait(fiber_queue &q) {
  q.push(running);
  return fiber_park();
}

void fiber_wake_all(fiber_queue &q, int status) {
  while (rill_fiber *f = q.pop())
    fiber_unpark(f, status);
}

int fiber_lock_wait(fiber_lock &l) {
  // Ownership is handed over by the releaser, so a woken waiter holds it.
  return fiber_wait(l.waiters);
}

void fiber_lock_hand_over(fiber_lock &l) { fiber_unpark(l.waiters.pop(), 0); }

}  // namespace rill::detail

using namespace rill::detail;

namespace {

// rill_go_stack() on the base's thread: the fiber is ready when this returns.
int start_here(rill_base *base, rill_fiber_fn fn, void *arg, size_t stack_size) {
  scheduler *s = get_or_create(base);
  if (!s)
    return RILL_ENOMEM;
  rill_fiber *f;
  if (int err = fiber_new(s, stack_size, &f)) {
    if (s->live == 0)
      destroy_scheduler(s);
    return err;
  }
  f->fn = fn;
  f->arg = arg;
  f->id = next_fiber_id.fetch_add(1, std::memory_order_relaxed);
  f->sp = context_make(f->stack.base, f->stack.size, fiber_main, f);
#ifdef RILL_FIBER_TSAN
  f->tsan_fiber = __tsan_create_fiber(0);
#endif
  s->live++;
  make_ready(f);
  return 0;
}

// G34: rill_go() from a thread that is not the base's hands the fiber over
// through rill_base_post(), the one call that is safe from any thread, and
// the base's thread starts it. Everything the fiber needs (the scheduler,
// its timer, the stack pool) belongs to the base's thread, so nothing but
// this request is made here.
struct handed_fiber {
  rill_fiber_fn fn;
  void *arg;
  size_t stack_size;
};

void start_handed(rill_base *base, void *arg) {
  auto *h = static_cast<handed_fiber *>(arg);
  handed_fiber copy = *h;
  destroy(h);
  // Out of memory here cannot reach rill_go()'s caller: the fiber is not
  // started (rill/fiber.h says so).
  (void)start_here(base, copy.fn, copy.arg, copy.stack_size);
}

int hand_over(rill_base *base, rill_fiber_fn fn, void *arg, size_t stack_size) {
  // The check stack_alloc() makes, made here so that bad input is still
  // the caller's error (the base's thread could only drop the fiber).
  auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (stack_size > SIZE_MAX - 2 * page)
    return RILL_EINVAL;
  auto *h = make<handed_fiber>(handed_fiber{fn, arg, stack_size});
  if (!h)
    return RILL_ENOMEM;
  int err = rill_base_post(base, start_handed, h);
  if (err)
    destroy(h);
  return err;
}

}  // namespace

extern "C" {

int rill_go_stack(rill_base *base, rill_fiber_fn fn, void *arg, size_t stack_size) {
  if (!base || !fn)
    return RILL_EINVAL;
  if (!rill_base_in_loop_thread(base))
    return hand_over(base, fn, arg, stack_size);
  return start_here(base, fn, arg, stack_size);
}

int rill_go(rill_base *base, rill_fiber_fn fn, void *arg) { return rill_go_stack(base, fn, arg, 0); }

rill_fiber *rill_fiber_current(void) { return running; }

uint64_t rill_fiber_id(const rill_fiber *f) { return f ? f->id : 0; }

rill_base *rill_fiber_base(void) { return running ? running->sched->base : nullptr; }

size_t rill_fiber_count(const rill_base *base) {
  scheduler *s = find(base);
  return s ? s->live : 0;
}

int rill_yield(void) {
  if (!running)
    return RILL_ENOTFIBER;
  make_ready(running);
  fiber_park();
  return 0;
}

int rill_sleep(uint64_t d) {
  rill_fiber *f = running;
  if (!f)
    return RILL_ENOTFIBER;
  if (!f->sleep_timer) {
    int err = rill_timer_new(f->sched->base, on_sleep_done, f, &f->sleep_timer);
    if (err)
      return err;
  }
  int err = rill_timer_start(f->sleep_timer, d, 0);  // from now (G29)
  if (err)
    return err;
  fiber_park_idle(nullptr, 0);
  return 0;
}

int rill_fiber_private_stack(void) {
  if (!running)
    return RILL_ENOTFIBER;
  if (!context_saves_exact_sp)
    return RILL_ENOSYS;
  running->private_stack = true;
  return 0;
}

}  // extern "C"
