// A connection's write queue (lib/net/net_impl.h, conn_queue) is a block
// of its own, made only when a write has to queue: an idle connection
// otherwise points at the shared empty queue. A ref write must be able to
// queue without failing once the kernel has its first bytes, so it
// reserves a block beforehand, but one the kernel takes whole leaves the
// connection without a queue, as a plain write does. On io_uring every
// write queues (the send reads the bytes later), so there a connection
// that wrote has a queue.
//
// Looks inside rill_conn (net_impl.h): the queue is invisible through the
// API except as memory.
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
extern "C" {  // this cmocka.h does not say so itself
#include <cmocka.h>
}

#include <cstring>
#include <vector>

#include "net/net_impl.h"
#include "rill.h"
#include "test_util.h"
#include "net_util.h"

namespace {

constexpr unsigned limit_ms = 10000;  // a hang guard only

struct ref_done {
  int calls = 0;
  int status = 1;
  size_t written = 0;
};

void on_ref_done(rill_conn *, int status, size_t written, void *arg) {
  auto *d = static_cast<ref_done *>(arg);
  d->calls++;
  d->status = status;
  d->written = written;
}

bool has_queue(const rill_conn *c) { return c->queue != &rill::detail::no_queue; }
bool sends_by_uring(const rill_conn *c) { return c->has(rill::detail::conn_flag::uring_send); }

// A ref write the kernel takes whole makes no queue; the next one, too
// large for the socket, does.
void test_ref_write_taken_whole_makes_no_queue(void **) {
  rill_base *base = tu_base_new();
  nu_pair p;
  nu_pair_accepted(base, "127.0.0.1", nullptr, &p);
  static const char hello[] = "hello";
  ref_done small;
  assert_int_equal(rill_conn_write_ref(p.conn, hello, 5, on_ref_done, &small), 0);
  nu_run_until_count(base, &small.calls, 1, limit_ms);
  assert_int_equal(small.status, 0);
  assert_int_equal(small.written, 5);
  char got[5];
  assert_int_equal(nu_recv_all(p.peer, got, 5, 5000), 5);
  assert_memory_equal(got, hello, 5);
  if (sends_by_uring(p.conn))
    assert_true(has_queue(p.conn));
  else
    assert_false(has_queue(p.conn));

  // More than the socket holds: the rest waits on the queue.
  std::vector<char> big(16u << 20, 'x');
  ref_done large;
  assert_int_equal(rill_conn_write_ref(p.conn, big.data(), big.size(), on_ref_done, &large), 0);
  assert_true(has_queue(p.conn));
  assert_true(rill_conn_write_queued(p.conn) > 0);
  nu_sink sink{};
  nu_sink_start(base, &sink, p.peer, 0);
  nu_run_until_count(base, &large.calls, 1, limit_ms);
  assert_int_equal(large.status, 0);
  assert_int_equal(large.written, big.size());
  nu_sink_stop(&sink);
  nu_pair_cleanup(base, &p);
  tu_base_free(base);
}

// Many connections that each made a ref write the kernel took whole share
// the one reserved block: none of them has a queue.
void test_many_ref_writers_hold_no_queue(void **) {
  rill_base *base = tu_base_new();
  enum { count = 8 };
  nu_pair p[count];
  ref_done done[count];
  static const char ping[] = "ping";
  for (int i = 0; i < count; i++) {
    nu_pair_accepted(base, "127.0.0.1", nullptr, &p[i]);
    assert_int_equal(rill_conn_write_ref(p[i].conn, ping, 4, on_ref_done, &done[i]), 0);
    nu_run_until_count(base, &done[i].calls, 1, limit_ms);
    assert_int_equal(done[i].status, 0);
  }
  for (int i = 0; i < count; i++) {
    char got[4];
    assert_int_equal(nu_recv_all(p[i].peer, got, 4, 5000), 4);
    assert_memory_equal(got, ping, 4);
    assert_int_equal(has_queue(p[i].conn), sends_by_uring(p[i].conn));
  }
  for (int i = 0; i < count; i++)
    nu_pair_cleanup(base, &p[i]);
  tu_base_free(base);
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_ref_write_taken_whole_makes_no_queue, tu_setup_fds,
                                      tu_teardown_fds),
      cmocka_unit_test_setup_teardown(test_many_ref_writers_hold_no_queue, tu_setup_fds,
                                      tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
