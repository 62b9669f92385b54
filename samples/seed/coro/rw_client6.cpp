// rw_client6 — rw_client5 with a write deadline (seed 001, "conn.Write"
// case 4; docs/go-model.md G20). Run against rw_server6, which does not
// read until the deadline has passed. Coroutine version of ../rw_client6.c.
//
// The write that waits when the deadline passes throws "i/o timeout"; what
// of it reached the kernel is in bytes_written() (Go's n); a later write
// fails at once. After clearing the deadline, the client sends that total
// as an 8-byte trailer, so the server can check that no byte was hidden.
#include "seed.hpp"

static rill::co::task<> run(rill::base_ref base) {
  static const std::string chunk(65536, '\0');
  rill::co::stream c = co_await seed::dial(base);
  if (!c) {
    seed::status = 1;
    co_return;
  }
  c.conn().set_write_buffer(32 * 1024);
  c.set_write_deadline(std::chrono::duration_cast<rill::clock::duration>(seed::ms(1000, 100)));
  for (;;) {
    const std::uint64_t before = c.conn().bytes_written();
    try {
      co_await c.write(chunk);
    } catch (const std::system_error &e) {
      // How far the last write got depends on the kernel's buffers.
      const std::uint64_t n = c.conn().bytes_written() - before;
      seed::say("write n %s %d bytes, error: %s", n < chunk.size() ? "<" : ">=",
                static_cast<int>(chunk.size()), e.what());
      break;
    }
  }
  const std::uint64_t total = c.conn().bytes_written();
  seed::say("write %s bytes in total", total > 0 ? ">0" : "0");
  try {
    co_await c.write(chunk);
    seed::say("write again: %d bytes, error: none", static_cast<int>(c.conn().bytes_written() - total));
  } catch (const std::system_error &e) {
    seed::say("write again: %d bytes, error: %s", static_cast<int>(c.conn().bytes_written() - total),
              e.what());
  }
  c.set_write_deadline(rill::clock::time_point{});  // no deadline
  std::string trailer(8, '\0');
  for (int i = 0; i < 8; i++)
    trailer[static_cast<std::size_t>(i)] = static_cast<char>(total >> (56 - 8 * i));
  try {
    co_await c.write(trailer);
    seed::say("no deadline: write the total as an 8-byte trailer");
  } catch (const std::system_error &e) {
    seed::say("write error: %s", e.what());
  }
  c.close();
  seed::say("close");
}

int main(int argc, char **argv) {
  seed::parse(argc, argv, "127.0.0.1:8896");
  return seed::run(run);
}
