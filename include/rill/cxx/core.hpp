/// @file
/// rill C++ API, part 1: errors, time, callable storage, the base.
///
/// Include <rill.hpp>, not this file; the whole contract (ownership, the
/// close protocol, exceptions, allocations) is written at the top of
/// rill.hpp. Everything here is a thin layer over the C API of rill.h and
/// calls nothing else.
#ifndef RILL_CXX_CORE_HPP
#define RILL_CXX_CORE_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include "rill.h"

namespace rill {

// ---- errors -----------------------------------------------------------------

/// rill's own conditions (rill/error.h). Operating-system failures are the
/// negated errno and compare equal to std::errc values:
/// `ec == std::errc::connection_refused`.
enum class errc : int {
  eof = RILL_EOF,                ///< the peer closed its side
  closed = RILL_ECLOSED,         ///< use of a closed handle or connection
  timeout = RILL_ETIMEOUT,       ///< a deadline passed ("i/o timeout")
  canceled = RILL_ECANCELED,     ///< the operation was cancelled
  not_fiber = RILL_ENOTFIBER,    ///< a blocking call made outside a fiber
  need_dns = RILL_ENEEDDNS,      ///< a host name where only numbers work
  no_backend = RILL_EBACKEND,    ///< no such backend, or not built in
  dns_no_host = RILL_EDNS_NOHOST,
  dns_server_failure = RILL_EDNS_SERVFAIL,
  dns_refused = RILL_EDNS_REFUSED,
  dns_timeout = RILL_EDNS_TIMEOUT,
  dns_bad_name = RILL_EDNS_BADNAME,
  wrong_thread = RILL_EWRONGTHREAD,
  context_canceled = RILL_ECTX_CANCELED,
  context_deadline_exceeded = RILL_ECTX_DEADLINE,
  dns_unreachable = RILL_EDNS_UNREACHABLE,
  address_missing_port = RILL_EADDR_NOPORT,
  address_too_many_colons = RILL_EADDR_COLONS,
  address_missing_bracket = RILL_EADDR_NOBRACKET,
  address_unexpected_open_bracket = RILL_EADDR_OPENBRACKET,
  address_unexpected_close_bracket = RILL_EADDR_CLOSEBRACKET,
  address_invalid_port = RILL_EADDR_PORT,
  address_unknown_port = RILL_EADDR_SERVICE,
  address_missing = RILL_EADDR_MISSING,
  address_no_suitable = RILL_EADDR_FAMILY,
  unknown_network = RILL_EUNKNOWN_NETWORK
};

namespace cxx_detail {

// The category's value is the rill code itself (negative), so
// ec.value() == RILL_ECONNREFUSED, and its messages are rill_strerror()'s.
class error_category_impl final : public std::error_category {
 public:
  const char *name() const noexcept override { return "rill"; }
  std::string message(int code) const override { return rill_strerror(code); }
  // -errno codes are the generic category's conditions, so they compare
  // equal to std::errc values; so do malformed addresses
  // (std::errc::invalid_argument, which they were before Go's texts gave
  // them codes of their own) and unknown networks; rill's other codes
  // stay rill's.
  std::error_condition default_error_condition(int code) const noexcept override {
    if (code < 0 && code >= -4095)
      return std::error_condition(-code, std::generic_category());
    if (code == RILL_EUNKNOWN_NETWORK)
      return std::make_error_condition(std::errc::address_family_not_supported);
    if (RILL_IS_ADDR_ERROR(code))
      return std::make_error_condition(std::errc::invalid_argument);
    return std::error_condition(code, *this);
  }
};

}  // namespace cxx_detail

/// The "rill" error category: values are rill's negative codes, messages
/// are rill_strerror()'s texts ("connection refused", "i/o timeout").
inline const std::error_category &category() noexcept {
  static const cxx_detail::error_category_impl instance;
  return instance;
}

/// A rill return value as an error code: empty for 0 and positive values.
inline std::error_code to_error_code(long rc) noexcept {
  return rc < 0 ? std::error_code(static_cast<int>(rc), category()) : std::error_code();
}

/// An errc as an error code of category() (what makes `ec == errc::eof` work).
inline std::error_code make_error_code(errc e) noexcept {
  return std::error_code(static_cast<int>(e), category());
}

namespace cxx_detail {

inline void throw_if_error(const std::error_code &ec, const char *what) {
  if (ec)
    throw std::system_error(ec, what);
}

inline std::error_code invalid() noexcept { return to_error_code(RILL_EINVAL); }

}  // namespace cxx_detail

}  // namespace rill

namespace std {
template <>
struct is_error_code_enum<rill::errc> : true_type {};
}  // namespace std

namespace rill {

// ---- time ---------------------------------------------------------------------

/// The clock of rill_time_now() (CLOCK_MONOTONIC), as a std::chrono clock.
/// Deadlines are time points on it; clock::time_point{} means "none".
struct clock {
  /// The std::chrono clock requirements: nanoseconds, steady. @{
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<clock>;
  static constexpr bool is_steady = true;
  /// @}
  /// rill_time_now().
  static time_point now() noexcept {
    return time_point(duration(static_cast<rep>(rill_time_now())));
  }
};

/// "No deadline".
inline constexpr clock::time_point no_deadline{};

/// A duration in rill's unit (uint64_t nanoseconds): negative is 0, and
/// more than about 292 years is capped there.
template <class Rep, class Period>
constexpr std::uint64_t to_ns(std::chrono::duration<Rep, Period> d) noexcept {
  const double approx = std::chrono::duration<double, std::nano>(d).count();
  if (!(approx > 0))
    return 0;
  if (approx >= 9.2e18)
    return static_cast<std::uint64_t>(INT64_MAX);
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

/// A point in time in rill's unit (0 for no_deadline and earlier).
constexpr std::uint64_t to_ns(clock::time_point t) noexcept {
  return t.time_since_epoch().count() <= 0 ? 0
                                           : static_cast<std::uint64_t>(t.time_since_epoch().count());
}

namespace cxx_detail {

// A deadline `d` from now, on the clock read at the call (G29).
template <class Rep, class Period>
std::uint64_t from_now(std::chrono::duration<Rep, Period> d) noexcept {
  const std::uint64_t now = rill_time_now();
  const std::uint64_t add = to_ns(d);
  return add > UINT64_MAX - now ? UINT64_MAX : now + add;
}

// ---- callable storage -----------------------------------------------------

// A move-only type-erased callable. A callable of up to three pointers
// (a lambda capturing `this` and two references, say) that can be moved
// without throwing lives inside the object; a larger one is allocated once,
// when it is stored. Calling it never allocates: one indirect call.
template <class Sig>
class callback;

template <class R, class... A>
class callback<R(A...)> {
 public:
  callback() noexcept = default;

  template <class F, class D = std::decay_t<F>,
            class = std::enable_if_t<!std::is_same_v<D, callback>>>
  callback(F &&f) {  // NOLINT: implicit on purpose, from any callable
    static_assert(std::is_invocable_r_v<R, D &, A...>,
                  "rill: the callable does not accept this callback's arguments");
    if constexpr (fits_inline<D>) {
      ::new (static_cast<void *>(buf_)) D(std::forward<F>(f));
      ops_ = &inline_ops<D>::table;
    } else {
      D *p = new D(std::forward<F>(f));
      std::memcpy(buf_, &p, sizeof p);
      ops_ = &heap_ops<D>::table;
    }
  }

  callback(callback &&other) noexcept { take(other); }
  callback &operator=(callback &&other) noexcept {
    if (this != &other) {
      reset();
      take(other);
    }
    return *this;
  }
  callback(const callback &) = delete;
  callback &operator=(const callback &) = delete;
  ~callback() { reset(); }

  explicit operator bool() const noexcept { return ops_ != nullptr; }

  R operator()(A... args) { return ops_->invoke(buf_, std::forward<A>(args)...); }

  void reset() noexcept {
    if (ops_ != nullptr) {
      const ops *o = ops_;
      ops_ = nullptr;
      o->destroy(buf_);
    }
  }

  /// Bytes a callable may take and still be stored without allocating.
  static constexpr std::size_t inline_capacity = 3 * sizeof(void *);

 private:
  struct ops {
    R (*invoke)(void *storage, A... args);
    void (*move)(void *to, void *from) noexcept;
    void (*destroy)(void *storage) noexcept;
  };

  template <class D>
  static constexpr bool fits_inline = sizeof(D) <= inline_capacity &&
                                      alignof(D) <= alignof(void *) &&
                                      std::is_nothrow_move_constructible_v<D>;

  template <class D>
  struct inline_ops {
    static D *get(void *p) noexcept { return std::launder(static_cast<D *>(p)); }
    static R invoke(void *p, A... args) { return (*get(p))(std::forward<A>(args)...); }
    static void move(void *to, void *from) noexcept {
      ::new (to) D(std::move(*get(from)));
      get(from)->~D();
    }
    static void destroy(void *p) noexcept { get(p)->~D(); }
    static constexpr ops table{&invoke, &move, &destroy};
  };

  template <class D>
  struct heap_ops {
    static D *get(void *p) noexcept {
      D *d;
      std::memcpy(&d, p, sizeof d);
      return d;
    }
    static R invoke(void *p, A... args) { return (*get(p))(std::forward<A>(args)...); }
    static void move(void *to, void *from) noexcept { std::memcpy(to, from, sizeof(D *)); }
    static void destroy(void *p) noexcept { delete get(p); }
    static constexpr ops table{&invoke, &move, &destroy};
  };

  void take(callback &other) noexcept {
    if (other.ops_ != nullptr) {
      other.ops_->move(buf_, other.buf_);
      ops_ = std::exchange(other.ops_, nullptr);
    }
  }

  alignas(void *) unsigned char buf_[inline_capacity];
  const ops *ops_ = nullptr;
};

// A callable small enough to travel in a C `void *arg` itself: trivially
// copyable and no larger than a pointer (a lambda capturing one pointer or
// reference, or nothing). Such callables are posted without allocating.
template <class D>
inline constexpr bool fits_in_pointer = std::is_trivially_copyable_v<D> &&
                                        sizeof(D) <= sizeof(void *) &&
                                        alignof(D) <= alignof(void *);

template <class D>
void *pack(const D &f) noexcept {
  void *arg = nullptr;
  std::memcpy(static_cast<void *>(&arg), static_cast<const void *>(&f), sizeof(D));
  return arg;
}

// Holds the callable packed into `arg` for the duration of a call.
template <class D>
class unpacked {
 public:
  explicit unpacked(void *arg) noexcept { std::memcpy(buf_, &arg, sizeof(D)); }
  D &get() noexcept { return *std::launder(reinterpret_cast<D *>(buf_)); }

 private:
  alignas(D) unsigned char buf_[sizeof(D)];
};

// ---- the state shared by an owner and its C handle ------------------------

// Every handle owner (rill::timer, rill::conn, ...) points to one state
// object, allocated when the handle is created and passed as the C
// callbacks' `arg`; the owner can move, the state does not. The state goes
// away when three things are over: the owner let go of it, the C handle is
// gone (freed, or its close report or completion delivered), and no
// callback of the handle is running (an owner may be destroyed from inside
// its own callback; the callable is then destroyed when it returns).
struct state_base {
  state_base() = default;
  state_base(const state_base &) = delete;
  state_base &operator=(const state_base &) = delete;
  virtual ~state_base() = default;

  unsigned running = 0;  // callbacks of this handle in progress
  bool owned = true;     // an owner object (rill::conn, ...) holds the state
  bool live = true;      // the C handle exists
  bool muted = false;    // the owner is gone: no user callback runs any more
};

inline void release_if_unused(state_base *s) noexcept {
  if (!s->owned && !s->live && s->running == 0)
    delete s;
}

// The dispatch guard of every trampoline; also on the way out of an
// exception thrown by the user's callable.
class dispatch {
 public:
  explicit dispatch(state_base *s) noexcept : s_(s) { s_->running++; }
  dispatch(const dispatch &) = delete;
  dispatch &operator=(const dispatch &) = delete;
  ~dispatch() {
    s_->running--;
    release_if_unused(s_);
  }

 private:
  state_base *s_;
};

// Runs a function posted with rill_base_post(): packed into `arg`, or
// allocated by post() and freed here, also when it throws.
template <class D>
void run_packed(rill_base *, void *arg) {
  unpacked<D> f(arg);
  f.get()();
}

template <class D>
void run_allocated(rill_base *, void *arg) {
  std::unique_ptr<D> f(static_cast<D *>(arg));
  (*f)();
}

}  // namespace cxx_detail

// ---- the base ----------------------------------------------------------------

/// How long base::run() runs (rill_run_mode).
enum class run_mode {
  until_done = RILL_RUN_DEFAULT,  ///< until no handle is active, or stop()
  once = RILL_RUN_ONCE,           ///< one iteration, waiting if nothing is ready
  nowait = RILL_RUN_NOWAIT        ///< one iteration, never waiting
};

/// rill_base_config: zero-initialise (`rill::base_config cfg{};`) and set
/// what you need.
using base_config = rill_base_config;

namespace cxx_detail {

/// What base_ref and base both offer, on the rill_base* that `D::get()`
/// returns.
template <class D>
class base_ops {
 public:
  /// False for an empty base (or a view of none).
  explicit operator bool() const noexcept { return b() != nullptr; }

  /// Runs the loop. True if active handles remain (stopped, or a single
  /// iteration), false if nothing is active any more. An exception thrown by
  /// a callback propagates out of this call and leaves the base idle and
  /// usable (rill/base.h, "Exceptions"). A failure of the loop itself
  /// (RILL_EBUSY for a run from a callback, a failed backend wait) throws
  /// std::system_error, or is stored in `ec` by the second form.
  bool run(run_mode mode = run_mode::until_done) const {
    std::error_code ec;
    const bool more = run(mode, ec);
    throw_if_error(ec, "rill_base_run");
    return more;
  }
  /// The same, storing a failure of the loop in `ec`.
  bool run(run_mode mode, std::error_code &ec) const {
    const int rc = rill_base_run(b(), static_cast<rill_run_mode>(mode));
    ec = to_error_code(rc);
    return rc > 0;
  }

  /// Makes run() return after its current iteration. Any thread.
  std::error_code stop() const noexcept { return to_error_code(rill_base_stop(b())); }

  /// Runs `f()` on the base's thread, once, in a later iteration (or in the
  /// base's destruction). Any thread. A callable that fits in a pointer and
  /// is trivially copyable (a lambda capturing one pointer or reference, or
  /// nothing) travels without allocating; a larger one is moved into one
  /// allocation, freed after it ran. RILL_EINVAL / RILL_ENOMEM: `f` will not
  /// run.
  template <class F>
  std::error_code post(F &&f) const {
    using C = std::decay_t<F>;
    static_assert(std::is_invocable_v<C &>, "rill: a posted callable takes no arguments");
    if constexpr (fits_in_pointer<C>) {
      return to_error_code(rill_base_post(b(), &run_packed<C>, pack<C>(f)));
    } else {
      auto owned = std::make_unique<C>(std::forward<F>(f));
      const int rc = rill_base_post(b(), &run_allocated<C>, owned.get());
      if (rc == 0)
        owned.release();  // run_allocated frees it
      return to_error_code(rc);
    }
  }

  /// The base's cached clock (rill_base_now()); rill::clock::now() reads
  /// the clock itself.
  clock::time_point now() const noexcept {
    return clock::time_point(clock::duration(static_cast<clock::rep>(rill_base_now(b()))));
  }
  /// Re-reads the clock into now() (rill_base_update_time()).
  void update_time() const noexcept { rill_base_update_time(b()); }

  /// Keeps run(until_done) running without active handles (rill_base_ref);
  /// every add_ref() needs one remove_ref().
  void add_ref() const noexcept { rill_base_ref(b()); }
  /// Undoes one add_ref() (rill_base_unref).
  void remove_ref() const noexcept { rill_base_unref(b()); }

  /// "epoll", "kqueue" or "poll".
  const char *backend() const noexcept { return rill_base_backend(b()); }

  /// The base's counters (rill_base_stats_get()); zeros for an empty base.
  rill_base_stats stats() const noexcept {
    rill_base_stats s{};
    rill_base_stats_get(b(), &s);
    return s;
  }

  /// One line per live handle, to `out`.
  std::error_code dump(std::FILE *out) const noexcept {
    return to_error_code(rill_base_dump(b(), out));
  }

 private:
  rill_base *b() const noexcept { return static_cast<const D &>(*this).get(); }
};

}  // namespace cxx_detail

/// A non-owning view of a base: what handles are created on and what
/// callbacks capture. Copyable; valid while the base exists.
class base_ref : public cxx_detail::base_ops<base_ref> {
 public:
  base_ref() noexcept = default;
  /// A view of `b`.
  explicit base_ref(rill_base *b) noexcept : b_(b) {}

  /// The C handle.
  rill_base *get() const noexcept { return b_; }

 private:
  rill_base *b_ = nullptr;
};

/// Owns a rill_base. Move-only. Destroy every handle owner made on it
/// first; the destructor then delivers the close reports still queued (a
/// connection's on_close) and frees the base. Posted functions still queued
/// run inside the destructor: one that throws there calls std::terminate
/// (call close() first to see the exception).
class base : public cxx_detail::base_ops<base> {
 public:
  /// Creates a base with the default configuration (the backend from the
  /// RILL_BACKEND environment variable, else the best one built in).
  /// Throws std::system_error on failure.
  base() : base(base_config{}) {}
  /// Creates a base with `config`. Throws std::system_error on failure.
  explicit base(const base_config &config) {
    std::error_code ec;
    init(config, ec);
    cxx_detail::throw_if_error(ec, "rill_base_new");
  }
  /// The same, storing the failure in `ec` (the base is then empty). @{
  explicit base(std::error_code &ec) noexcept { init(base_config{}, ec); }
  base(const base_config &config, std::error_code &ec) noexcept { init(config, ec); }
  /// @}

  /// Moves the base; `other` is left empty. @{
  base(base &&other) noexcept : b_(std::exchange(other.b_, nullptr)) {}
  base &operator=(base &&other) noexcept {
    if (this != &other) {
      destroy();
      b_ = std::exchange(other.b_, nullptr);
    }
    return *this;
  }
  /// @}
  base(const base &) = delete;
  base &operator=(const base &) = delete;
  ~base() { destroy(); }

  /// The C handle.
  rill_base *get() const noexcept { return b_; }

  /// A view to pass around; converts implicitly. @{
  base_ref ref() const noexcept { return base_ref(b_); }
  operator base_ref() const noexcept { return base_ref(b_); }  // NOLINT: a view of it
  /// @}

  /// Frees the base now: RILL_EBUSY (nothing changed) while handles live or
  /// close reports are queued, or from a callback of the base. Posted
  /// functions still queued run first; an exception one of them throws
  /// propagates, and the base stays (call close() again).
  std::error_code close() {
    if (b_ == nullptr)
      return {};
    const int rc = rill_base_free(b_);
    if (rc == 0)
      b_ = nullptr;
    return to_error_code(rc);
  }

 private:
  void init(const base_config &config, std::error_code &ec) noexcept {
    rill_base *b = nullptr;
    ec = to_error_code(rill_base_new(&config, &b));
    b_ = ec ? nullptr : b;
  }

  // Close reports (a connection whose owner went away is closing) need the
  // loop: run it a bounded number of times without waiting. A base whose
  // handles are still alive after that is left allocated rather than freed
  // under them.
  void destroy() noexcept {
    if (b_ == nullptr)
      return;
    int rc = rill_base_free(b_);
    for (int i = 0; rc == RILL_EBUSY && i < 64; i++) {
      if (rill_base_run(b_, RILL_RUN_NOWAIT) < 0)
        break;
      rc = rill_base_free(b_);
    }
    b_ = nullptr;
  }

  rill_base *b_ = nullptr;
};

}  // namespace rill

#endif  // RILL_CXX_CORE_HPP
