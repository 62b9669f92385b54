/// @file
/// rill — C++20 coroutines over the base (header-only, over rill.hpp).
///
/// Needs C++20 only where it is included; rill.hpp stays C++17.
///
/// @code
///   rill::co::task<> client(rill::base_ref base, std::string address) {
///     rill::co::stream s = co_await rill::co::dial(base, "tcp", address);
///     co_await s.write("hello");
///     char buf[64];
///     std::size_t n = co_await s.read(buf, sizeof buf);   // 0: EOF
///     co_await rill::co::sleep(base, 10ms);
///   }
///   rill::co::job j = rill::co::spawn(client(base, "127.0.0.1:7000"));
///   base.run();
///   j.get();                          // rethrows what the coroutine threw
/// @endcode
///
/// The model:
///  - rill::co::task<T> is a lazy coroutine: it runs when awaited (or
///    spawned) and hands its value, or its exception, to its awaiter.
///  - rill::co::spawn() starts a task at once and returns a job, its owner.
///    The coroutine resumes from the base's callbacks, on the base's thread.
///  - Cancellation is destruction: destroying a job (or job::cancel()) while
///    its coroutine waits destroys the coroutine's frames, and with them the
///    awaiters, which own what they wait on (a timer, a dialer, a read
///    registration): nothing resumes it afterwards. cancel() must not be
///    called from inside the job's own coroutine.
///  - Failures throw std::system_error with a rill::category() code
///    (rill::errc::timeout when a deadline passed, std::errc values for
///    system errors), its what() Go's message ("read tcp ...: i/o timeout").
///    EOF is not a failure: read() returns 0.
///  - Deadlines are the connection's: stream::set_read_deadline() and
///    friends, as on rill::conn.
///  - Writes copy what the kernel does not take at once and wait until the
///    queue has drained (Go's Write), so a cancelled write never leaves the
///    kernel reading freed memory.
#ifndef RILL_CORO_HPP
#define RILL_CORO_HPP

#include "rill/coro/task.hpp"  // task, job, spawn, sleep
#include "rill/coro/net.hpp"   // stream, dial, acceptor

#endif  // RILL_CORO_HPP
