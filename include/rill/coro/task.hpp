/// @file
/// rill — C++20 coroutines: task, job, spawn and sleep (see rill/coro.hpp).
#ifndef RILL_CORO_TASK_HPP
#define RILL_CORO_TASK_HPP

#if !defined(_MSC_VER) && __cplusplus < 202002L
#error "rill/coro.hpp needs C++20 (-std=c++20)"
#endif

#include <coroutine>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include "rill.hpp"

namespace rill::co {

template <class T = void>
class task;
class job;

namespace detail {

struct promise_base {
  std::coroutine_handle<> continuation;  // the awaiter, if any
  std::exception_ptr error;
  bool detached = false;  // a detached job frees its own frame at the end

  struct final_awaiter {
    bool await_ready() const noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      promise_base &p = h.promise();
      if (p.continuation)
        return p.continuation;  // symmetric transfer to the awaiter
      if (p.detached) {
        if (p.error)
          std::terminate();  // nobody can see it
        h.destroy();
      }
      return std::noop_coroutine();
    }
    void await_resume() const noexcept {}
  };

  std::suspend_always initial_suspend() const noexcept { return {}; }
  final_awaiter final_suspend() const noexcept { return {}; }
  void unhandled_exception() noexcept { error = std::current_exception(); }
  void rethrow() const {
    if (error)
      std::rethrow_exception(error);
  }
};

template <class T>
struct promise : promise_base {
  std::optional<T> value;
  task<T> get_return_object() noexcept;
  template <class U>
  void return_value(U &&v) {
    value.emplace(std::forward<U>(v));
  }
  T result() {
    rethrow();
    return std::move(*value);
  }
};

template <>
struct promise<void> : promise_base {
  task<void> get_return_object() noexcept;
  void return_void() const noexcept {}
  void result() const { rethrow(); }
};

}  // namespace detail

/// What the awaitables throw: a std::system_error whose what() is exactly
/// Go's message ("read tcp 127.0.0.1:7000->127.0.0.1:41234: i/o timeout";
/// std::system_error's own what() would append ": " and the code's
/// message once more).
class error : public std::system_error {
 public:
  /// `ec` as code(), `what` as what().
  error(std::error_code ec, const std::string &what) : std::system_error(ec), text_(what) {}
  /// Go's message.
  const char *what() const noexcept override { return text_.what(); }

 private:
  std::runtime_error text_;  // its string copies without throwing
};

namespace detail {
[[noreturn]] inline void throw_error(std::error_code ec, const std::string &what) {
  throw error(ec, what);
}
}  // namespace detail

/// A lazy coroutine returning T. Move-only; destroying it destroys the
/// coroutine (and cancels what it waits on).
template <class T>
class [[nodiscard]] task {
 public:
  /// The coroutine's promise: what makes a function returning task<T> a coroutine.
  using promise_type = detail::promise<T>;

  task() noexcept = default;
  /// Moves the coroutine; `other` is left empty. @{
  task(task &&other) noexcept : h_(std::exchange(other.h_, {})) {}
  task &operator=(task &&other) noexcept {
    if (this != &other) {
      if (h_)
        h_.destroy();
      h_ = std::exchange(other.h_, {});
    }
    return *this;
  }
  /// @}
  task(const task &) = delete;
  task &operator=(const task &) = delete;
  ~task() {
    if (h_)
      h_.destroy();
  }

  /// Awaiting a task runs it; co_await gives its value or rethrows its
  /// exception. @{
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
    h_.promise().continuation = awaiting;
    return h_;
  }
  T await_resume() { return h_.promise().result(); }
  /// @}

 private:
  friend struct detail::promise<T>;
  friend job spawn(task<void> t);
  explicit task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};

namespace detail {
template <class T>
task<T> promise<T>::get_return_object() noexcept {
  return task<T>(std::coroutine_handle<promise<T>>::from_promise(*this));
}
inline task<void> promise<void>::get_return_object() noexcept {
  return task<void>(std::coroutine_handle<promise<void>>::from_promise(*this));
}
}  // namespace detail

/// Owns a spawned coroutine. Destroying it (or cancel()) while the
/// coroutine waits cancels it; detach() lets it run to its end on its own
/// (an exception it then throws calls std::terminate).
class [[nodiscard]] job {
 public:
  job() noexcept = default;
  /// Moves the owner; `other` is left empty (and an assigned-to job cancels
  /// its own coroutine first). @{
  job(job &&other) noexcept : h_(std::exchange(other.h_, {})) {}
  job &operator=(job &&other) noexcept {
    if (this != &other) {
      cancel();
      h_ = std::exchange(other.h_, {});
    }
    return *this;
  }
  /// @}
  job(const job &) = delete;
  job &operator=(const job &) = delete;
  ~job() { cancel(); }

  /// The coroutine has finished (returned or thrown).
  bool done() const noexcept { return !h_ || h_.done(); }
  /// Rethrows what the finished coroutine threw.
  void get() const {
    if (h_ && h_.done())
      h_.promise().rethrow();
  }
  /// Destroys the coroutine, finished or waiting; nothing resumes it again.
  void cancel() noexcept {
    if (h_)
      std::exchange(h_, {}).destroy();
  }
  /// Lets the coroutine run to its end on its own (see above); the job is
  /// empty afterwards.
  void detach() noexcept {
    if (!h_)
      return;
    auto h = std::exchange(h_, {});
    if (h.done()) {
      h.destroy();
      return;
    }
    h.promise().detached = true;
  }

 private:
  friend job spawn(task<void> t);
  explicit job(std::coroutine_handle<detail::promise<void>> h) noexcept : h_(h) {}
  std::coroutine_handle<detail::promise<void>> h_;
};

/// Starts `t` now (it runs until it first waits) and returns its owner.
inline job spawn(task<void> t) {
  auto h = std::exchange(t.h_, {});
  h.resume();
  return job(h);
}

// ---- sleeping --------------------------------------------------------------

/// co_await sleep(base, d): resumes at least `d` later (G29).
class sleep_awaiter {
 public:
  /// Made by sleep(); then the awaiter protocol, what co_await calls. @{
  sleep_awaiter(base_ref base, clock::duration d) noexcept : base_(base), d_(d) {}
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    timer_ = rill::timer(base_, [h] { h.resume(); });
    if (auto ec = timer_.start(d_))
      detail::throw_error(ec, "rill_timer_start: " + ec.message());
  }
  void await_resume() const noexcept {}
  /// @}

 private:
  base_ref base_;
  clock::duration d_;
  rill::timer timer_;  // destroyed with the awaiter: a cancelled sleep never resumes
};

/// What `co_await sleep(base, d)` awaits: see sleep_awaiter.
inline sleep_awaiter sleep(base_ref base, clock::duration d) noexcept { return {base, d}; }

}  // namespace rill::co

#endif  // RILL_CORO_TASK_HPP
