// Idle fibers give their stack pages back.
//
// A fiber parked in a read or a sleep still holds the stack pages it touched:
// its frames, and often a buffer (`char buf[4096]` waiting in
// rill_net_read). With thousands of idle connections that is most of their
// memory. Go shrinks an idle goroutine's stack by copying it; rill cannot
// move a C stack, but it can empty one in place: copy the live frames, the
// bytes from the saved stack pointer to the top, to the heap, and give every
// page back to the kernel (MADV_DONTNEED). Just before the fiber runs again
// the frames are copied back to the same addresses, so no pointer changes.
// The reader's buffer is left out of the copy: its bytes past what a read
// returns are unspecified (as in Go's io.Reader), and the wake-up writes the
// data into it directly.
//
// Only where nothing outside the fiber points into its stack, which the
// fiber promises with rill_fiber_private_stack(): a pointer from elsewhere
// would read zeros, and a write through it would be lost when the frames
// come back. Go guarantees the same for goroutine stacks by escape analysis.
//
// A sweep every sweep_interval takes the fibers idle for at least
// sweeps_before_release sweeps, oldest first: a fiber that parks for a
// moment, as in a busy echo, never pays for a copy. The same sweep calls
// the hook a wait may have (fiber_park_idle's on_idle), private stack or
// not: a reader's spare buffer goes when its connection turns idle.
//
// The sweeps' clock is, on Linux, a timerfd of the scheduler's own, armed
// while fibers wait and ticking in the kernel: a loop timer would make every
// wait of the loop a timed one, so a busy loop would pay for it on every
// wait (the timer wheel's next-timeout work, about 60 instructions per
// round trip of a one-connection fiber echo, and epoll_pwait2 with a
// timeout where epoll_wait(-1) does) for a sweep due twice a second. Where
// there is no timerfd, or the kernel refuses one, a loop timer does it.
#include <sys/mman.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/timerfd.h>
#endif

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "core/base_impl.h"
#include "fiber/context.h"
#include "fiber/sched_impl.h"

namespace rill::detail {

// A fiber's frames while its stack is given back: [low, low + below) and
// [above_at, above_at + above) of the stack, the part between them being
// its scratch.
struct saved_frames {
  char *low;
  size_t below;
  char *above_at;
  size_t above;
  char *data() { return reinterpret_cast<char *>(this + 1); }
};

namespace {

constexpr uint64_t sweep_interval = 500 * RILL_MSEC;
constexpr uint32_t sweeps_before_release = 2;  // so idle for 0.5 to 1 s

// Stack memory is copied byte by byte under AddressSanitizer: the frames
// hold redzones that an instrumented (or intercepted) memcpy would report.
#ifdef RILL_FIBER_ASAN
__attribute__((no_sanitize("address"))) void copy_stack(char *to, const char *from, size_t n) {
  volatile char *t = to;
  const volatile char *f = from;
  for (size_t i = 0; i < n; i++)
    t[i] = f[i];
}
#else
void copy_stack(char *to, const char *from, size_t n) { std::memcpy(to, from, n); }
#endif

// Moves f's frames to the heap and gives its stack pages back; leaves the
// fiber as it is when the copy would cost more than it saves, or finds no
// memory.
void release_stack(rill_fiber *f) {
  char *top = static_cast<char *>(f->stack.base) + f->stack.size;
  char *sp = static_cast<char *>(f->sp);
  // The scratch, clipped to the live part of the stack (a buffer elsewhere
  // is none of this stack's business).
  char *gap_lo = top, *gap_hi = top;
  if (f->scratch) {
    const char *lo = f->scratch, *hi = f->scratch + f->scratch_len;
    if (lo < top && hi > sp) {
      gap_lo = lo > sp ? const_cast<char *>(lo) : sp;
      gap_hi = hi < top ? const_cast<char *>(hi) : top;
    }
  }
  size_t below = static_cast<size_t>(gap_lo - sp);
  size_t above = static_cast<size_t>(top - gap_hi);
  auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  auto spanned = reinterpret_cast<uintptr_t>(top) - (reinterpret_cast<uintptr_t>(sp) & ~(page - 1));
  if (sizeof(saved_frames) + below + above > spanned / 2)
    return;
  auto *saved = static_cast<saved_frames *>(mem_alloc(sizeof(saved_frames) + below + above));
  if (!saved)
    return;
  *saved = saved_frames{sp, below, gap_hi, above};
  copy_stack(saved->data(), sp, below);
  copy_stack(saved->data() + below, gap_hi, above);
  // Advice: should it fail, the pages stay and hold the same bytes.
  (void)madvise(f->stack.base, f->stack.size, MADV_DONTNEED);
  f->saved = saved;
}

void sweep(scheduler *s) {
  s->sweeps++;
  // Oldest first: the first fiber too young to release ends the sweep.
  while (list_node *n = s->idle.front()) {
    rill_fiber *f = RILL_CONTAINER_OF(n, rill_fiber, idle_node);
    if (s->sweeps - f->idle_since < sweeps_before_release)
      break;
    list::remove(n);
    if (f->on_idle)
      f->on_idle(f->on_idle_arg);
    if (f->private_stack)
      release_stack(f);
  }
  if (s->idle.empty())
    sweeper_disarm(s);  // the next long wait arms it again
}

void on_sweep_timer(rill_timer *, void *arg) {
  auto *s = static_cast<scheduler *>(arg);
  s->sweeper_armed = false;  // a timer fires once: sweep() starts it again
  sweep(s);
  if (!s->idle.empty())
    sweeper_arm(s);
}

#ifdef __linux__
void clock_close(scheduler *s) {
  rill_io_free(s->sweep_io);
  s->sweep_io = nullptr;
  close(s->sweep_fd);
  s->sweep_fd = -1;
}

void on_sweep_clock(rill_io *, int fd, unsigned, void *arg) {
  auto *s = static_cast<scheduler *>(arg);
  if (getpid() != s->sweep_owner) {
    // A forked child shares the timerfd with its parent: it leaves that one
    // alone and takes a clock of its own.
    clock_close(s);
    s->sweeper_armed = false;
    if (!s->idle.empty())
      sweeper_arm(s);
    return;
  }
  uint64_t ticks;
  if (read(fd, &ticks, sizeof ticks) < 0 && errno != EAGAIN)
    return;
  sweep(s);
}

bool clock_open(scheduler *s) {
  int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0)
    return false;
  rill_io *io;
  if (io_create(s->base, fd, on_sweep_clock, s, true, &io) != 0) {
    close(fd);
    return false;
  }
  if (rill_io_start(io, RILL_READ) != 0) {
    rill_io_free(io);
    close(fd);
    return false;
  }
  s->sweep_fd = fd;
  s->sweep_io = io;
  s->sweep_owner = getpid();
  return true;
}

bool clock_set(scheduler *s, uint64_t interval_ns) {
  itimerspec when{};
  when.it_value.tv_sec = static_cast<time_t>(interval_ns / 1000000000);
  when.it_value.tv_nsec = static_cast<long>(interval_ns % 1000000000);
  when.it_interval = when.it_value;
  return timerfd_settime(s->sweep_fd, 0, &when, nullptr) == 0;
}
#endif

}  // namespace

bool sweeper_arm(scheduler *s) {
#ifdef __linux__
  // Arming is rare (the clock ticks on until a sweep finds nobody waiting),
  // so a fork is checked for here rather than on every park.
  if (s->sweep_io && getpid() != s->sweep_owner)
    clock_close(s);
  if (!s->sweep_io && !s->sweeper)
    (void)clock_open(s);  // refused: the loop timer below
  if (s->sweep_io) {
    s->sweeper_armed = clock_set(s, sweep_interval);
    return s->sweeper_armed;
  }
#endif
  if (!s->sweeper && timer_create(s->base, on_sweep_timer, s, true, &s->sweeper) != 0)
    return false;
  s->sweeper_armed = rill_timer_start(s->sweeper, sweep_interval, 0) == 0;
  return s->sweeper_armed;
}

void sweeper_disarm(scheduler *s) {
#ifdef __linux__
  // Only a sweep disarms, and on_sweep_clock() ran it in the clock's owner.
  if (s->sweep_io)
    (void)clock_set(s, 0);  // should it fail, it ticks on and sweeps nobody
#endif
  rill_timer_stop(s->sweeper);
  s->sweeper_armed = false;
}

void idle_leave(rill_fiber *f) {
  saved_frames *saved = f->saved;
  f->saved = nullptr;
  copy_stack(saved->low, saved->data(), saved->below);
  copy_stack(saved->above_at, saved->data() + saved->below, saved->above);
  mem_free(saved);
}

void idle_destroy(scheduler *s) {
#ifdef __linux__
  if (s->sweep_io)
    clock_close(s);
#endif
  rill_timer_free(s->sweeper);
}

}  // namespace rill::detail
