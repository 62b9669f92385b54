// include/rill/coro.hpp, C++20 coroutines over the base: tasks and their
// values and exceptions, sleep, an echo over loopback (acceptor, dial,
// read, write, EOF), dial errors, read deadlines, and cancellation by
// destroying a job (a sleep, a read, a dial): nothing resumes afterwards
// and the handles it waited on are freed.
// The C++ headers first: cmocka.h defines a fail() macro that <ios> meets.
#include <poll.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "rill/coro.hpp"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
extern "C" {  // this cmocka.h does not say so itself
#include <cmocka.h>
}

#include "net_util.h"
#include "test_util.h"

using namespace std::chrono_literals;

namespace {

void run_all(rill::base &base, unsigned limit_ms = 20000) {
  TU_RUN(base.get(), RILL_RUN_DEFAULT, limit_ms);
}

rill::co::task<int> answer() { co_return 42; }

rill::co::task<int> doubled() {
  const int a = co_await answer();
  co_return 2 * a;
}

rill::co::task<> thrower() {
  throw std::runtime_error("from a task");
  co_return;
}

void test_tasks(void **) {
  int got = 0;
  std::string caught;
  auto body = [&]() -> rill::co::task<> {
    got = co_await doubled();
    try {
      co_await thrower();
    } catch (const std::runtime_error &e) {
      caught = e.what();
    }
  };
  rill::co::job j = rill::co::spawn(body());
  assert_true(j.done());  // it never waited
  j.get();
  assert_int_equal(got, 84);
  assert_string_equal(caught.c_str(), "from a task");
}

void test_sleep_and_job_exception(void **) {
  rill::base base;
  std::vector<int> order;
  auto sleeper = [&](int id, std::chrono::milliseconds d) -> rill::co::task<> {
    co_await rill::co::sleep(base, d);
    order.push_back(id);
    if (id == 3)
      throw std::logic_error("late");
  };
  rill::co::job a = rill::co::spawn(sleeper(3, 30ms));
  rill::co::job b = rill::co::spawn(sleeper(1, 1ms));
  rill::co::job c = rill::co::spawn(sleeper(2, 15ms));
  assert_false(a.done());
  run_all(base);
  assert_true(a.done() && b.done() && c.done());
  assert_int_equal(order.size(), 3);
  assert_int_equal(order[0], 1);
  assert_int_equal(order[1], 2);
  assert_int_equal(order[2], 3);
  b.get();
  bool thrown = false;
  try {
    a.get();
  } catch (const std::logic_error &) {
    thrown = true;
  }
  assert_true(thrown);
  assert_int_equal(base.stats().handles, 0);
}

void test_echo(void **) {
  rill::base base;
  rill::co::acceptor acceptor(base, "tcp", "127.0.0.1:0");
  auto server = [&]() -> rill::co::task<> {
    rill::co::stream s = co_await acceptor.accept();
    acceptor.close();
    char buf[7];  // small: many reads
    for (;;) {
      const std::size_t n = co_await s.read(buf, sizeof buf);
      if (n == 0)
        break;
      co_await s.write(std::string_view(buf, n));
    }
  };
  std::string got;
  const std::string message = "hello, coroutines: " + std::string(100000, 'z');
  auto client = [&]() -> rill::co::task<> {
    rill::co::stream s = co_await rill::co::dial(base, "tcp", acceptor.addr());
    co_await s.write(message);
    s.close_write();
    char buf[4096];
    while (const std::size_t n = co_await s.read(buf, sizeof buf))
      got.append(buf, n);
  };
  rill::co::job srv = rill::co::spawn(server());
  rill::co::job cli = rill::co::spawn(client());
  run_all(base);
  srv.get();
  cli.get();
  assert_true(got == message);
}

void test_dial_refused(void **) {
  rill::base base;
  const std::string address = "127.0.0.1:" + std::to_string(nu_free_port("127.0.0.1"));
  std::error_code code;
  std::string what;
  auto body = [&]() -> rill::co::task<> {
    try {
      co_await rill::co::dial(base, "tcp", address);
    } catch (const std::system_error &e) {
      code = e.code();
      what = e.what();
    }
  };
  rill::co::job j = rill::co::spawn(body());
  run_all(base);
  j.get();
  assert_true(code == std::errc::connection_refused);
  // Exactly Go's message: nothing appended (std::system_error's own what()
  // would add ": connection refused" once more).
  assert_string_equal(what.c_str(), ("dial tcp " + address + ": connect: connection refused").c_str());
}

// A read times out; data comes meanwhile; the deadline is moved, but to a
// time already passed: the read throws i/o timeout and reads nothing (Go
// checks the deadline first, G16; samples/seed/rw_server4). With the
// deadline gone, the data comes.
void test_read_deadline_before_data(void **) {
  rill::base base;
  rill::co::acceptor acceptor(base, "tcp", "127.0.0.1:0");
  std::vector<std::string> seen;
  auto server = [&]() -> rill::co::task<> {
    rill::co::stream s = co_await acceptor.accept();
    acceptor.close();
    char c;
    co_await s.read(&c, 1);  // the client's go-ahead, after its timeout
    co_await s.write("data");
    co_await s.read(&c, 1);  // until the client closes
  };
  auto client = [&]() -> rill::co::task<> {
    rill::co::stream s = co_await rill::co::dial(base, "tcp", acceptor.addr());
    char buf[16];
    s.set_read_deadline(5ms);
    try {
      co_await s.read(buf, sizeof buf);
    } catch (const std::system_error &e) {
      seen.push_back(e.code() == rill::errc::timeout ? "timeout" : e.what());
    }
    co_await s.write("!");
    pollfd p{s.conn().fd(), POLLIN, 0};
    while (poll(&p, 1, 0) == 0)  // the stream reads only in read()
      co_await rill::co::sleep(base, 1ms);
    s.set_read_deadline(rill::clock::now() - 1ms);
    try {
      const std::size_t n = co_await s.read(buf, sizeof buf);
      seen.push_back("read " + std::string(buf, n));
    } catch (const std::system_error &e) {
      seen.push_back(e.code() == rill::errc::timeout ? "timeout" : e.what());
    }
    s.set_read_deadline(rill::no_deadline);
    const std::size_t n = co_await s.read(buf, sizeof buf);
    seen.push_back("read " + std::string(buf, n));
    s.close();
  };
  rill::co::job srv = rill::co::spawn(server());
  rill::co::job cli = rill::co::spawn(client());
  run_all(base);
  srv.get();
  cli.get();
  assert_int_equal(seen.size(), 3);
  assert_string_equal(seen[0].c_str(), "timeout");
  assert_string_equal(seen[1].c_str(), "timeout");
  assert_string_equal(seen[2].c_str(), "read data");
}

// A paused acceptor takes nothing from the kernel: a dial completes (the
// kernel's backlog queues it) yet accept() waits, until resume().
void test_acceptor_pause(void **) {
  rill::base base;
  rill::co::acceptor acceptor(base, "tcp", "127.0.0.1:0");
  assert_false(static_cast<bool>(acceptor.pause()));
  bool accepted = false, dialed = false, accepted_while_paused = false;
  auto server = [&]() -> rill::co::task<> {
    rill::co::stream s = co_await acceptor.accept();
    accepted = true;
    acceptor.close();
    char c;
    co_await s.read(&c, 1);  // until the client closes
  };
  auto client = [&]() -> rill::co::task<> {
    rill::co::stream s = co_await rill::co::dial(base, "tcp", acceptor.addr());
    dialed = true;
    for (int i = 0; i < 20; i++)  // loop iterations in which an accept would show
      co_await rill::co::sleep(base, 1ms);
    accepted_while_paused = accepted;
    assert_false(static_cast<bool>(acceptor.resume()));
    while (!accepted)
      co_await rill::co::sleep(base, 1ms);
    s.close();
  };
  rill::co::job srv = rill::co::spawn(server());
  rill::co::job cli = rill::co::spawn(client());
  run_all(base);
  srv.get();
  cli.get();
  assert_true(dialed);
  assert_false(accepted_while_paused);
  assert_true(accepted);
  assert_true(acceptor.pause() == rill::errc::closed);
}

void test_read_deadline(void **) {
  rill::base base;
  rill::co::acceptor acceptor(base, "tcp", "127.0.0.1:0");
  std::vector<std::string> seen;
  auto server = [&]() -> rill::co::task<> {
    rill::co::stream s = co_await acceptor.accept();
    acceptor.close();
    char c;
    co_await s.read(&c, 1);  // the client's go-ahead, after its timeout
    co_await s.write("late");
  };
  auto client = [&]() -> rill::co::task<> {
    rill::co::stream s = co_await rill::co::dial(base, "tcp", acceptor.addr());
    s.set_read_deadline(20ms);
    char buf[16];
    try {
      co_await s.read(buf, sizeof buf);
    } catch (const std::system_error &e) {
      if (e.code() == rill::errc::timeout)
        seen.push_back("timeout");
      seen.push_back(std::string(e.what()).substr(0, 9));
    }
    s.set_read_deadline(rill::no_deadline);
    co_await s.write("!");
    const std::size_t n = co_await s.read(buf, sizeof buf);
    seen.push_back(std::string(buf, n));
  };
  rill::co::job srv = rill::co::spawn(server());
  rill::co::job cli = rill::co::spawn(client());
  run_all(base);
  srv.get();
  cli.get();
  assert_int_equal(seen.size(), 3);
  assert_string_equal(seen[0].c_str(), "timeout");
  assert_string_equal(seen[1].c_str(), "read tcp ");
  assert_string_equal(seen[2].c_str(), "late");
}

// Cancelling: a job destroyed while it sleeps, reads or dials never
// resumes, and what it waited on is gone.
void test_cancel(void **) {
  rill::base base;
  bool resumed = false;
  auto sleeper = [&]() -> rill::co::task<> {
    co_await rill::co::sleep(base, 1h);
    resumed = true;
  };
  rill::co::job j = rill::co::spawn(sleeper());
  assert_int_equal(base.stats().handles, 1);
  j.cancel();
  assert_true(j.done());
  assert_int_equal(base.stats().handles, 0);
  run_all(base);
  assert_false(resumed);

  // A read, cancelled; then the data comes and nobody is resumed.
  rill::co::acceptor acceptor(base, "tcp", "127.0.0.1:0");
  std::optional<rill::co::stream> server_side;
  auto server = [&]() -> rill::co::task<> {
    server_side = co_await acceptor.accept();
    acceptor.close();
  };
  bool read_returned = false;
  auto reader = [&]() -> rill::co::task<> {
    rill::co::stream s = co_await rill::co::dial(base, "tcp", acceptor.addr());
    char buf[8];
    co_await s.read(buf, sizeof buf);
    read_returned = true;
  };
  rill::co::job srv = rill::co::spawn(server());
  rill::co::job rd = rill::co::spawn(reader());
  rill::timer step(base, [&] {
    if (!server_side) {
      step.start(1ms);
      return;
    }
    rd.cancel();  // the read waits: the stream closes, nothing resumes
    server_side->conn().write("data");
    server_side->close();
  });
  step.start(1ms);
  run_all(base);
  assert_false(read_returned);
  srv.get();

  // A dial, cancelled before it completes.
  bool dialed = false;
  auto dialer = [&]() -> rill::co::task<> {
    co_await rill::co::dial(base, "tcp", "127.0.0.1:1");
    dialed = true;
  };
  rill::co::job d = rill::co::spawn(dialer());
  d.cancel();
  run_all(base);
  assert_false(dialed);
  server_side.reset();
  step.close();
  run_all(base);
  assert_int_equal(base.stats().handles, 0);
}

// Closing a stream's connection under a waiting read resumes it with
// errc::closed; closing an acceptor under a waiting accept likewise.
void test_closed_under_waiters(void **) {
  rill::base base;
  rill::co::acceptor acceptor(base, "tcp", "127.0.0.1:0");
  std::vector<std::string> seen;
  rill::co::stream *server_stream = nullptr;
  auto accepter = [&]() -> rill::co::task<> {
    try {
      rill::co::stream s = co_await acceptor.accept();
      server_stream = &s;
      char c;
      co_await s.read(&c, 1);  // closed from the timer below
      seen.push_back("read returned");
    } catch (const std::system_error &e) {
      seen.push_back(e.code() == rill::errc::closed ? "read: closed" : e.what());
    }
    server_stream = nullptr;
    try {
      co_await acceptor.accept();  // the acceptor closes under it
      seen.push_back("accepted again");
    } catch (const std::system_error &e) {
      seen.push_back(e.code() == rill::errc::closed ? "accept: closed" : e.what());
    }
  };
  rill::co::job a = rill::co::spawn(accepter());
  std::optional<rill::co::stream> client;
  auto dialer = [&]() -> rill::co::task<> {
    client = co_await rill::co::dial(base, "tcp", acceptor.addr());
  };
  rill::co::job d = rill::co::spawn(dialer());
  rill::timer step(base, [&] {
    if (server_stream != nullptr) {
      server_stream->conn().close_now();
    } else if (seen.size() == 1) {
      acceptor.close();
      client.reset();
      return;
    }
    step.start(1ms);
  });
  step.start(1ms);
  run_all(base);
  a.get();
  d.get();
  assert_int_equal(seen.size(), 2);
  assert_string_equal(seen[0].c_str(), "read: closed");
  assert_string_equal(seen[1].c_str(), "accept: closed");
}

}  // namespace

int main() {
  const CMUnitTest tests[] = {
      cmocka_unit_test(test_tasks),
      cmocka_unit_test_setup_teardown(test_sleep_and_job_exception, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_echo, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_dial_refused, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_read_deadline, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_read_deadline_before_data, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_acceptor_pause, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_cancel, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_closed_under_waiters, tu_setup_fds, tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
