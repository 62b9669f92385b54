// include/rill.hpp, the C++ API: owners that move and never copy, capturing
// lambdas as callbacks for the base, timers, io and signal watchers, the
// close protocol seen from C++ (an owner destroyed inside its own callback,
// calls on a closed owner), the "rill" error category, exceptions thrown by
// callables (they leave base::run() and the base runs again), and no
// allocation per event (a counting global operator new and a counting rill
// allocator, across 10,000 timer, io and post events). The connection
// side is in test_rill_hpp_net.cpp.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
extern "C" {  // this cmocka.h does not say so itself
#include <cmocka.h>
}

#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "rill.hpp"
#include "test_util.h"

using namespace std::chrono_literals;

// cmocka's assert_false() takes integers; an error code is "set" or not.
inline bool is_set(bool b) { return b; }
inline bool is_set(const std::error_code &ec) { return static_cast<bool>(ec); }
#define assert_ok(x) assert_false(is_set(x))

// ---- counting every operator new of the program -----------------------------

namespace {
std::atomic<unsigned long> g_news{0};
}

// The replacements below pair malloc with free on purpose; GCC, seeing
// them inlined, takes that for a new/free mismatch.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void *operator new(std::size_t size) {
  g_news.fetch_add(1, std::memory_order_relaxed);
  if (void *p = std::malloc(size != 0 ? size : 1))
    return p;
  throw std::bad_alloc();
}
void *operator new[](std::size_t size) { return operator new(size); }
void *operator new(std::size_t size, const std::nothrow_t &) noexcept {
  g_news.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size != 0 ? size : 1);
}
void *operator new[](std::size_t size, const std::nothrow_t &t) noexcept {
  return operator new(size, t);
}
void operator delete(void *p, const std::nothrow_t &) noexcept { std::free(p); }
void operator delete[](void *p, const std::nothrow_t &) noexcept { std::free(p); }
void operator delete(void *p) noexcept { std::free(p); }
void operator delete[](void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }
void operator delete[](void *p, std::size_t) noexcept { std::free(p); }

namespace {

// Allocations so far: C++ operator new, and rill's own allocator (set to
// the counting one in main, before any base exists).
unsigned long allocations() {
  tu_alloc_counts c;
  tu_alloc_get(&c);
  return g_news.load() + static_cast<unsigned long>(c.mallocs + c.reallocs);
}

void run_all(rill::base &base, unsigned limit_ms = 20000) {
  TU_RUN(base.get(), RILL_RUN_DEFAULT, limit_ms);
}

struct boom : std::runtime_error {
  boom() : std::runtime_error("boom") {}
};

// ---- owners: movable, never copyable -----------------------------------------

template <class T>
constexpr bool move_only = std::is_nothrow_move_constructible_v<T> &&
                           std::is_nothrow_move_assignable_v<T> &&
                           !std::is_copy_constructible_v<T> && !std::is_copy_assignable_v<T>;

static_assert(move_only<rill::base>);
static_assert(move_only<rill::timer>);
static_assert(move_only<rill::io>);
static_assert(move_only<rill::signal_watcher>);
static_assert(move_only<rill::listener>);
static_assert(move_only<rill::conn>);
static_assert(move_only<rill::dialer>);
static_assert(move_only<rill::dns_query>);
// Views copy.
static_assert(std::is_nothrow_copy_constructible_v<rill::base_ref>);
static_assert(std::is_nothrow_copy_constructible_v<rill::conn_ref>);
// A view never becomes an owner.
static_assert(!std::is_constructible_v<rill::conn, rill::conn_ref>);
static_assert(!std::is_constructible_v<rill::base, rill::base_ref>);
// Errors.
static_assert(std::is_error_code_enum_v<rill::errc>);
// Durations convert.
static_assert(rill::to_ns(std::chrono::milliseconds(250)) == 250 * RILL_MSEC);
static_assert(rill::to_ns(std::chrono::seconds(-1)) == 0);
static_assert(rill::to_ns(std::chrono::hours(24 * 365 * 1000)) == static_cast<std::uint64_t>(INT64_MAX));

// ---- errors -------------------------------------------------------------------

void test_error_category(void **) {
  const std::error_category &cat = rill::category();
  assert_string_equal(cat.name(), "rill");
  std::error_code timeout = rill::errc::timeout;
  assert_true(timeout.category() == cat);
  assert_int_equal(timeout.value(), RILL_ETIMEOUT);
  assert_string_equal(timeout.message().c_str(), "i/o timeout");
  assert_string_equal(rill::make_error_code(rill::errc::eof).message().c_str(), "EOF");
  assert_string_equal(rill::make_error_code(rill::errc::closed).message().c_str(),
                      "use of closed network connection");
  assert_string_equal(rill::make_error_code(rill::errc::dns_no_host).message().c_str(), "no such host");

  // System errors keep their value and compare equal to std::errc.
  std::error_code refused = rill::to_error_code(RILL_ECONNREFUSED);
  assert_true(refused == std::errc::connection_refused);
  assert_false(refused == rill::errc::timeout);
  assert_string_equal(refused.message().c_str(), "connection refused");
  assert_true(rill::to_error_code(-EOPNOTSUPP) == std::errc::operation_not_supported);
  // rill's own codes are not system errors.
  assert_false(timeout == std::errc::timed_out);
  assert_true(rill::to_error_code(RILL_ETIMEDOUT) == std::errc::timed_out);

  // Success is an empty code.
  assert_ok(rill::to_error_code(0));
  assert_ok(rill::to_error_code(42));

  // Failures that throw carry the code and its text.
  try {
    rill::base_config cfg{};
    cfg.backend = "no-such-backend";
    rill::base b(cfg);
    fail_msg("a base with an unknown backend was created");
  } catch (const std::system_error &e) {
    assert_true(e.code() == rill::errc::no_backend);
    assert_non_null(std::strstr(e.what(), rill_strerror(RILL_EBACKEND)));
  }
  // ... and the error_code forms do not throw.
  rill::base_config cfg{};
  cfg.backend = "no-such-backend";
  std::error_code ec;
  rill::base b(cfg, ec);
  assert_true(ec == rill::errc::no_backend);
  assert_false(static_cast<bool>(b));
}

// ---- timers ------------------------------------------------------------------

void test_timer_capturing_lambda(void **) {
  rill::base base;
  int fired = 0;
  std::string log;
  rill::timer t(base, [&] {
    log += std::to_string(++fired);
    if (fired == 3)
      t.stop();
  });
  assert_false(t.active());
  assert_ok(t.start(1ms, 1ms));
  assert_true(t.active());
  run_all(base);
  assert_int_equal(fired, 3);
  assert_string_equal(log.c_str(), "123");
  assert_false(t.active());
}

void test_timer_moves(void **) {
  rill::base base;
  int fired = 0;
  rill::timer first(base, [&fired] { fired++; });
  rill_timer *handle = first.get();
  rill::timer second = std::move(first);
  // The moved-from owner is empty and says so; the handle moved along.
  assert_false(static_cast<bool>(first));
  assert_null(first.get());
  assert_true(first.start(0ms) == std::errc::invalid_argument);
  assert_ptr_equal(second.get(), handle);
  std::vector<rill::timer> timers;
  timers.push_back(std::move(second));
  for (int i = 0; i < 20; i++)  // the vector grows and moves its owners
    timers.emplace_back(base, [&fired] { fired++; });
  for (auto &t : timers)
    assert_ok(t.start(0ms));
  run_all(base);
  assert_int_equal(fired, 21);
  // Move assignment over a live owner frees what it held.
  timers[0] = std::move(timers[1]);
  assert_int_equal(base.stats().handles, 20);
}

// An owner destroyed inside its own callback: the handle is freed, the
// running callable (here big enough to be allocated) lives until it
// returns, and no callback follows. ASan checks the memory.
void test_timer_destroyed_inside_callback(void **) {
  rill::base base;
  std::optional<rill::timer> t;
  int fired = 0;
  std::array<char, 64> big{};  // larger than the inline capacity
  big[0] = 'x';
  t.emplace(base, [&, big] {
    fired++;
    t.reset();                   // frees the handle and the owner
    assert_int_equal(big[0], 'x');  // the callable is still alive
  });
  assert_ok(t->start(0ms, 1ms));
  run_all(base);
  assert_int_equal(fired, 1);
  assert_int_equal(base.stats().handles, 0);
}

void test_timer_close_inside_callback(void **) {
  rill::base base;
  int fired = 0;
  rill::timer t(base, [&] {
    fired++;
    t.close();
    assert_false(static_cast<bool>(t));
    assert_true(t.start(1ms) == std::errc::invalid_argument);
  });
  assert_ok(t.start(0ms, 1ms));
  run_all(base);
  assert_int_equal(fired, 1);
  assert_int_equal(base.stats().handles, 0);
}

void test_timer_remaining(void **) {
  rill::base base;
  rill::timer t(base, [] {});
  assert_ok(t.start(10s));
  assert_true(t.remaining() > 9s);
  assert_true(t.remaining() <= 10s);
  t.stop();
  assert_true(t.remaining() == rill::clock::duration::zero());
}

// ---- io watchers ------------------------------------------------------------

void test_io_capturing_lambda(void **) {
  rill::base base;
  int sv[2];
  tu_socketpair(sv);
  std::string got;
  {
    rill::io watcher(base, sv[0], [&](unsigned events) {
      assert_true(events & rill::readable);
      char c;
      while (read(sv[0], &c, 1) == 1)
        got += c;
      if (got.size() == 3)
        watcher.stop();
    });
    assert_int_equal(watcher.fd(), sv[0]);
    assert_ok(watcher.start(rill::readable));
    assert_int_equal(watcher.events(), rill::readable);
    assert_int_equal(write(sv[1], "abc", 3), 3);
    run_all(base);
    assert_string_equal(got.c_str(), "abc");
    // A second watcher on the descriptor: RILL_EEXIST, through either form.
    std::error_code ec;
    rill::io second(base, sv[0], [](unsigned) {}, ec);
    assert_true(ec == std::errc::file_exists);
    assert_false(static_cast<bool>(second));
    try {
      rill::io third(base, sv[0], [](unsigned) {});
      fail_msg("a second watcher on one descriptor");
    } catch (const std::system_error &e) {
      assert_true(e.code() == std::errc::file_exists);
    }
  }  // the watcher is freed before its descriptor is closed
  close(sv[0]);
  close(sv[1]);
}

// ---- signal watchers ----------------------------------------------------------

void test_signal_capturing_lambda(void **) {
  rill::base base;
  int got = 0;
  rill::signal_watcher w(base, [&](int signum) {
    got = signum;
    w.stop();
  });
  assert_ok(w.start(SIGUSR1));
  assert_int_equal(w.signum(), SIGUSR1);
  // Raised from a posted function, so the base is running when it comes.
  assert_ok(base.post([] { raise(SIGUSR1); }));
  run_all(base);
  assert_int_equal(got, SIGUSR1);
  assert_int_equal(w.signum(), 0);
}

// ---- posts ---------------------------------------------------------------------

void test_post_from_threads(void **) {
  rill::base base;
  base.add_ref();  // keeps run() going until the last post
  std::atomic<int> runs{0};
  std::string joined;
  const std::thread::id base_thread = std::this_thread::get_id();
  std::thread other([&] {
    for (int i = 0; i < 100; i++) {
      // Pointer-sized: travels in the C argument.
      assert_ok(base.ref().post([&runs] { runs++; }));
    }
    // Larger, with a std::string inside: one allocation, freed after.
    std::string word = "posted";
    assert_ok(base.ref().post([&, word] {
      assert_true(std::this_thread::get_id() == base_thread);
      joined = word;
      base.remove_ref();
    }));
  });
  run_all(base);
  other.join();
  assert_int_equal(runs.load(), 100);
  assert_string_equal(joined.c_str(), "posted");
}

// Posted functions still queued run in the base's destruction.
void test_post_runs_in_destruction(void **) {
  int runs = 0;
  {
    rill::base base;
    assert_ok(base.post([&runs] { runs++; }));
  }
  assert_int_equal(runs, 1);
}

// ---- exceptions -------------------------------------------------------------

template <class Fn>
void expect_boom(Fn &&fn) {
  bool caught = false;
  try {
    fn();
  } catch (const boom &) {
    caught = true;
  }
  assert_true(caught);
}

void test_exception_from_timer(void **) {
  rill::base base;
  int fired = 0;
  rill::timer t(base, [&] {
    if (++fired == 1)
      throw boom();
  });
  assert_ok(t.start(0ms, 1ms));
  expect_boom([&] { base.run(); });
  assert_int_equal(fired, 1);
  // The repeating timer was re-armed before its callable threw; the base
  // runs again and the timer with it.
  assert_true(t.active());
  rill::timer stopper(base, [&] {
    if (fired >= 3)
      t.stop();
    else
      stopper.start(1ms);
  });
  assert_ok(stopper.start(1ms));
  run_all(base);
  assert_true(fired >= 3);
}

void test_exception_after_destroying_own_owner(void **) {
  rill::base base;
  auto t = std::make_unique<rill::timer>();
  std::string captured(100, 'c');  // an allocated callable
  *t = rill::timer(base, [&, captured] {
    t.reset();
    throw boom();
  });
  assert_ok((*t).start(0ms));
  expect_boom([&] { base.run(); });
  assert_null(t.get());
  assert_int_equal(base.stats().handles, 0);
  assert_false(base.run());  // nothing left, and the base runs
}

void test_exception_from_post(void **) {
  rill::base base;
  int order = 0;
  int second = 0;
  base.add_ref();  // posts alone keep no base running
  assert_ok(base.post([] { throw boom(); }));
  assert_ok(base.post([&] {
    second = ++order;
    base.remove_ref();
  }));
  expect_boom([&] { base.run(); });
  // The rest of the batch runs once, in a later iteration.
  run_all(base);
  assert_int_equal(second, 1);
}

void test_exception_from_io(void **) {
  rill::base base;
  int sv[2];
  tu_socketpair(sv);
  {
    int calls = 0;
    rill::io w(base, sv[0], [&](unsigned) {
      if (++calls == 1)
        throw boom();
      tu_drain(sv[0]);
      w.stop();
    });
    assert_ok(w.start(rill::readable));
    tu_write_byte(sv[1]);
    expect_boom([&] { base.run(); });
    // Level-triggered: still readable, reported again.
    run_all(base);
    assert_int_equal(calls, 2);
  }
  close(sv[0]);
  close(sv[1]);
}

// ---- no allocation per event ----------------------------------------------

constexpr int events_counted = 10000;

void test_no_allocation_per_timer_event(void **) {
  rill::base base;
  int fired = 0;
  int target = 0;
  std::string tag = "a capture that makes the callable large enough to be allocated";
  rill::timer t(base, [&fired, &target, &t, tag] {
    if (++fired == target)
      t.stop();
  });
  target = 100;  // warm up: the heap, the pending queue
  assert_ok(t.start(0ms, 1ns));
  run_all(base);
  const unsigned long before = allocations();
  target = fired + events_counted;
  assert_ok(t.start(0ms, 1ns));
  run_all(base);
  assert_int_equal(fired, 100 + events_counted);
  assert_int_equal(allocations() - before, 0);
}

void test_no_allocation_per_io_event(void **) {
  rill::base base;
  int sv[2];
  tu_socketpair(sv);
  {
    int reads = 0;
    int target = 0;
    // Each read answers with a byte from the other side: one event each.
    rill::io w(base, sv[0], [&](unsigned) {
      char c;
      assert_int_equal(read(sv[0], &c, 1), 1);
      if (++reads == target)
        w.stop();
      else
        tu_write_byte(sv[1]);
    });
    target = 100;
    assert_ok(w.start(rill::readable));
    tu_write_byte(sv[1]);
    run_all(base);
    const unsigned long before = allocations();
    target = reads + events_counted;
    assert_ok(w.start(rill::readable));
    tu_write_byte(sv[1]);
    run_all(base);
    assert_int_equal(reads, 100 + events_counted);
    assert_int_equal(allocations() - before, 0);
  }
  close(sv[0]);
  close(sv[1]);
}

// Pointer-sized posted callables travel in the C argument.
struct poster {
  rill::base_ref base;
  int runs = 0;
  int target = 0;
  // Posts alone keep no base running: the chain holds a reference.
  void next() {
    if (++runs < target)
      assert_ok(base.post([this] { next(); }));
    else
      base.remove_ref();
  }
};

void test_no_allocation_per_post(void **) {
  rill::base base;
  poster p{base.ref()};
  p.target = 100;
  base.add_ref();
  assert_ok(base.post([&p] { p.next(); }));
  run_all(base);
  const unsigned long before = allocations();
  p.target = p.runs + events_counted;
  base.add_ref();
  assert_ok(base.post([&p] { p.next(); }));
  run_all(base);
  assert_int_equal(p.runs, 100 + events_counted);
  assert_int_equal(allocations() - before, 0);
}

// Connection reads: two connections adopted from a socket pair play
// ping-pong, one byte each way; every on_read is an event.
void test_no_allocation_per_conn_read(void **) {
  rill::base base;
  int sv[2];
  tu_socketpair(sv);
  std::error_code ec;
  rill::conn a = rill::conn::from_fd(base, sv[0], ec);
  assert_ok(ec);
  rill::conn b = rill::conn::from_fd(base, sv[1], ec);
  assert_ok(ec);
  int reads = 0;
  // Past the write-request pool's quarantine (256 slots when handle checks
  // are on): on io_uring every write takes a request.
  int target = 400;
  a.on_read([&](rill::conn_ref self, std::string_view data, std::error_code e) {
    assert_ok(e);
    reads += static_cast<int>(data.size());
    if (reads < target)
      assert_ok(self.write("p"));
    else
      self.read_stop();
  });
  b.on_read([&](rill::conn_ref self, std::string_view data, std::error_code e) -> std::size_t {
    if (e) {
      self.close();
      return 0;
    }
    assert_ok(self.write(data));
    return data.size();
  });
  assert_ok(a.write("p"));
  base.add_ref();  // a's reads stop; the run ends through the stop below
  rill::timer check(base, [&] {
    if (reads >= target)
      base.stop();
    else
      check.start(1ms);
  });
  assert_ok(check.start(1ms));
  run_all(base);
  const unsigned long before = allocations();
  target = reads + events_counted;
  assert_ok(a.read_start());
  assert_ok(a.write("p"));
  assert_ok(check.start(1ms));
  run_all(base);
  assert_int_equal(reads, 400 + events_counted);
  assert_int_equal(allocations() - before, 0);
  base.remove_ref();
  a.close();
  b.close();
  run_all(base);
  assert_false(a.is_open());
  assert_false(b.is_open());
}

}  // namespace

int main() {
  // Every block rill allocates is counted; must precede every base.
  if (rill_set_allocator(tu_malloc, tu_realloc, tu_free) != 0)
    return 1;
  const CMUnitTest tests[] = {
      cmocka_unit_test(test_error_category),
      cmocka_unit_test_setup_teardown(test_timer_capturing_lambda, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_timer_moves, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_timer_destroyed_inside_callback, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_timer_close_inside_callback, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_timer_remaining, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_io_capturing_lambda, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_signal_capturing_lambda, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_post_from_threads, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_post_runs_in_destruction, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_exception_from_timer, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_exception_after_destroying_own_owner, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_exception_from_post, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_exception_from_io, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_no_allocation_per_timer_event, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_no_allocation_per_io_event, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_no_allocation_per_post, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_no_allocation_per_conn_read, tu_setup_fds,
                                      tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
