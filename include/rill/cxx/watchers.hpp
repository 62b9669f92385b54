/// @file
/// rill C++ API, part 2: timers, descriptor watchers, signal watchers.
///
/// Include <rill.hpp>, not this file. These three kinds have no close
/// report: close() (or the owner's destructor) frees the C handle at once,
/// and no callback of it runs after that — also when it is called from
/// inside the handle's own callback, whose callable is destroyed once it
/// returns.
#ifndef RILL_CXX_WATCHERS_HPP
#define RILL_CXX_WATCHERS_HPP

#include "rill/cxx/core.hpp"

namespace rill {

namespace cxx_detail {

/// An owner whose C handle is freed synchronously (S::free_handle). Move
/// only; an empty (default-constructed or moved-from) owner answers
/// RILL_EINVAL.
template <class S>
class sync_owner {
 public:
  /// The C handle's type (rill_timer *, rill_io *, ...).
  using handle_type = decltype(S::h);

  sync_owner() noexcept = default;
  /// Moves the owner; `other` is left empty.
  sync_owner(sync_owner &&other) noexcept : s_(std::exchange(other.s_, nullptr)) {}
  /// Closes this owner's handle, then takes `other`'s.
  sync_owner &operator=(sync_owner &&other) noexcept {
    if (this != &other) {
      close();
      s_ = std::exchange(other.s_, nullptr);
    }
    return *this;
  }
  sync_owner(const sync_owner &) = delete;
  sync_owner &operator=(const sync_owner &) = delete;
  ~sync_owner() { close(); }

  /// False once closed or moved from.
  explicit operator bool() const noexcept { return s_ != nullptr; }

  /// The C handle (nullptr when empty). Do not free it yourself.
  handle_type get() const noexcept { return s_ != nullptr ? s_->h : nullptr; }

  /// Frees the handle now; no callback of it runs afterwards. The owner is
  /// empty from here on. Fine from inside the handle's own callback.
  void close() noexcept {
    if (s_ == nullptr)
      return;
    S *s = std::exchange(s_, nullptr);
    S::free_handle(s->h);
    s->h = nullptr;
    s->live = false;
    s->owned = false;
    s->muted = true;
    release_if_unused(s);
  }

 protected:
  // Allocates the state (the handle's one allocation), stores the callable
  // and lets `create(state)` make the C handle.
  template <class Fn, class Create>
  void init(Fn &&fn, Create &&create, std::error_code &ec) {
    std::unique_ptr<S> s(new S);
    s->fn = std::forward<Fn>(fn);
    ec = to_error_code(create(s.get()));
    if (!ec)
      s_ = s.release();
  }

  S *s_ = nullptr;
};

struct timer_state final : state_base {
  rill_timer *h = nullptr;
  callback<void()> fn;
  static void free_handle(rill_timer *h) noexcept { rill_timer_free(h); }
};

inline void on_timer(rill_timer *, void *arg) {
  auto *s = static_cast<timer_state *>(arg);
  dispatch guard(s);
  if (!s->muted)
    s->fn();
}

struct io_state final : state_base {
  rill_io *h = nullptr;
  callback<void(unsigned)> fn;
  static void free_handle(rill_io *h) noexcept { rill_io_free(h); }
};

inline void on_io(rill_io *, int, unsigned events, void *arg) {
  auto *s = static_cast<io_state *>(arg);
  dispatch guard(s);
  if (!s->muted)
    s->fn(events);
}

struct signal_state final : state_base {
  rill_signal *h = nullptr;
  callback<void(int)> fn;
  static void free_handle(rill_signal *h) noexcept { rill_signal_free(h); }
};

inline void on_signal(rill_signal *, int signum, void *arg) {
  auto *s = static_cast<signal_state *>(arg);
  dispatch guard(s);
  if (!s->muted)
    s->fn(signum);
}

template <class F, class... A>
using if_invocable = std::enable_if_t<std::is_invocable_v<std::decay_t<F> &, A...>>;

}  // namespace cxx_detail

// ---- timers -------------------------------------------------------------------

/// A one-shot or repeating timer (rill/timer.h) calling `f()`.
///
/// @code
///   rill::timer tick(base, [&] { ++ticks; });
///   tick.start(250ms, 250ms);
/// @endcode
class timer : public cxx_detail::sync_owner<cxx_detail::timer_state> {
 public:
  timer() noexcept = default;

  /// A stopped timer; throws std::system_error on failure.
  template <class F, class = cxx_detail::if_invocable<F>>
  timer(base_ref base, F &&f) {
    std::error_code ec;
    make(base, std::forward<F>(f), ec);
    cxx_detail::throw_if_error(ec, "rill_timer_new");
  }
  /// The same, storing the failure in `ec` (the timer is then empty).
  template <class F, class = cxx_detail::if_invocable<F>>
  timer(base_ref base, F &&f, std::error_code &ec) {
    make(base, std::forward<F>(f), ec);
  }

  /// Arms the timer: `timeout` from now (the clock read at the call), then
  /// every `repeat` if not zero. Restarts an armed timer.
  std::error_code start(clock::duration timeout, clock::duration repeat = {}) const noexcept {
    if (s_ == nullptr)
      return cxx_detail::invalid();
    return to_error_code(rill_timer_start(s_->h, to_ns(timeout), to_ns(repeat)));
  }
  /// Disarms the timer; it can be started again.
  std::error_code stop() const noexcept {
    return s_ == nullptr ? cxx_detail::invalid() : to_error_code(rill_timer_stop(s_->h));
  }
  /// Armed? (A one-shot timer is disarmed before its callback runs.)
  bool active() const noexcept { return s_ != nullptr && rill_timer_active(s_->h) == 1; }
  /// Time until due; zero if stopped or overdue.
  clock::duration remaining() const noexcept {
    return s_ == nullptr ? clock::duration::zero()
                         : clock::duration(static_cast<clock::rep>(rill_timer_remaining(s_->h)));
  }

 private:
  template <class F>
  void make(base_ref base, F &&f, std::error_code &ec) {
    init(std::forward<F>(f),
         [&](cxx_detail::timer_state *s) {
           return rill_timer_new(base.get(), &cxx_detail::on_timer, s, &s->h);
         },
         ec);
  }
};

// ---- descriptor watchers ----------------------------------------------------

/// Interest and readiness bits for rill::io (RILL_READ, RILL_WRITE). @{
inline constexpr unsigned readable = RILL_READ;
inline constexpr unsigned writable = RILL_WRITE;
/// @}

/// A level-triggered watcher of one descriptor (rill/io.h) calling
/// `f(events)`, `events` being readable and/or writable. The descriptor
/// is not closed by the watcher: close it after the watcher.
class io : public cxx_detail::sync_owner<cxx_detail::io_state> {
 public:
  io() noexcept = default;

  /// A stopped watcher on `fd`; throws std::system_error on failure
  /// (RILL_EBADF, RILL_EEXIST for a second watcher on `fd`, -EPERM for a
  /// regular file on epoll).
  template <class F, class = cxx_detail::if_invocable<F, unsigned>>
  io(base_ref base, int fd, F &&f) {
    std::error_code ec;
    make(base, fd, std::forward<F>(f), ec);
    cxx_detail::throw_if_error(ec, "rill_io_new");
  }
  /// The same, storing the failure in `ec` (the watcher is then empty).
  template <class F, class = cxx_detail::if_invocable<F, unsigned>>
  io(base_ref base, int fd, F &&f, std::error_code &ec) {
    make(base, fd, std::forward<F>(f), ec);
  }

  /// Watches for `events` (readable | writable), replacing the interest.
  std::error_code start(unsigned events) const noexcept {
    return s_ == nullptr ? cxx_detail::invalid() : to_error_code(rill_io_start(s_->h, events));
  }
  /// Stops watching; the watcher can be started again.
  std::error_code stop() const noexcept {
    return s_ == nullptr ? cxx_detail::invalid() : to_error_code(rill_io_stop(s_->h));
  }
  /// The interest while started, 0 while stopped or empty.
  unsigned events() const noexcept { return s_ == nullptr ? 0u : rill_io_events(s_->h); }
  /// The descriptor, -1 when empty.
  int fd() const noexcept { return s_ == nullptr ? -1 : rill_io_fd(s_->h); }

 private:
  template <class F>
  void make(base_ref base, int fd, F &&f, std::error_code &ec) {
    init(std::forward<F>(f),
         [&](cxx_detail::io_state *s) {
           return rill_io_new(base.get(), fd, &cxx_detail::on_io, s, &s->h);
         },
         ec);
  }
};

// ---- signal watchers ----------------------------------------------------------

/// Delivers a signal as a callback `f(signum)` on the base's thread
/// (rill/signal.h: the process-wide model, coalescing, fork).
class signal_watcher : public cxx_detail::sync_owner<cxx_detail::signal_state> {
 public:
  signal_watcher() noexcept = default;

  /// A stopped watcher; throws std::system_error on failure.
  template <class F, class = cxx_detail::if_invocable<F, int>>
  signal_watcher(base_ref base, F &&f) {
    std::error_code ec;
    make(base, std::forward<F>(f), ec);
    cxx_detail::throw_if_error(ec, "rill_signal_new");
  }
  /// The same, storing the failure in `ec` (the watcher is then empty).
  template <class F, class = cxx_detail::if_invocable<F, int>>
  signal_watcher(base_ref base, F &&f, std::error_code &ec) {
    make(base, std::forward<F>(f), ec);
  }

  /// Starts watching `signum` (switching from another one).
  std::error_code start(int signum) const noexcept {
    return s_ == nullptr ? cxx_detail::invalid() : to_error_code(rill_signal_start(s_->h, signum));
  }
  /// Stops watching; the watcher can be started again.
  std::error_code stop() const noexcept {
    return s_ == nullptr ? cxx_detail::invalid() : to_error_code(rill_signal_stop(s_->h));
  }
  /// The signal watched, 0 when stopped or empty.
  int signum() const noexcept { return s_ == nullptr ? 0 : rill_signal_signum(s_->h); }

 private:
  template <class F>
  void make(base_ref base, F &&f, std::error_code &ec) {
    init(std::forward<F>(f),
         [&](cxx_detail::signal_state *s) {
           return rill_signal_new(base.get(), &cxx_detail::on_signal, s, &s->h);
         },
         ec);
  }
};

}  // namespace rill

#endif  // RILL_CXX_WATCHERS_HPP
