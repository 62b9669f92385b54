// rw_client5 — writes 64 KiB chunks until an error (seed 001, "conn.Write"
// cases 2 and 3; docs/go-model.md G19, G21). Run against rw_server5.
// Coroutine version of ../rw_client5.c, which says why it prints events
// ("write blocked", "write resumed", the error) and not byte counts.
//
// co_await write() resumes once every byte reached the kernel; a failing
// one throws, and the connection's bytes_written() says how much of its
// chunk got there before (Go's n).
#include "seed.hpp"

static rill::co::task<> run(rill::base_ref base) {
  static const std::string chunk(65536, '\0');
  rill::co::stream c = co_await seed::dial(base);
  if (!c) {
    seed::status = 1;
    co_return;
  }
  c.conn().set_write_buffer(32 * 1024);
  bool blocked = false, resumed = false;
  const std::uint64_t long_write = static_cast<std::uint64_t>(seed::ms(1000, 100).count());
  for (;;) {
    const std::uint64_t before = c.conn().bytes_written(), t0 = seed::clock_ms();
    try {
      co_await c.write(chunk);
    } catch (const std::system_error &e) {
      const std::uint64_t n = c.conn().bytes_written() - before;
      seed::say("write n %s %d bytes, error: %s", n < chunk.size() ? "<" : ">=",
                static_cast<int>(chunk.size()), e.what());
      break;
    }
    const std::uint64_t took = seed::clock_ms() - t0;
    if (!blocked && took >= long_write) {
      blocked = true;
      seed::say("write blocked: the kernel buffers were full");
    } else if (blocked && !resumed) {
      resumed = true;
      seed::say("write resumed: the server reads");
    }
  }
  seed::say("write %s bytes in total", c.conn().bytes_written() > 0 ? ">0" : "0");
  c.conn().close_now();
}

int main(int argc, char **argv) {
  seed::parse(argc, argv, "127.0.0.1:8895");
  return seed::run(run);
}
