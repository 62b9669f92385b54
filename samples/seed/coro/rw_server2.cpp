// rw_server2 — reads into a 10-byte buffer until EOF (seed 001,
// "conn.Read" cases 2 and 3; docs/go-model.md G13, G14, G15): fewer bytes
// than the buffer come back at once, more fill the buffer and the rest
// comes with the next read. Run with rw_client2.
// Coroutine version of ../rw_server2.c.
#include "seed.hpp"

static rill::co::task<> run(rill::base_ref base) {
  std::optional<rill::co::acceptor> l;
  if (!seed::listen(base, l)) {
    seed::status = 1;
    co_return;
  }
  rill::co::stream c = co_await seed::accept_one(*l);
  l.reset();
  for (;;) {
    char buf[10];
    seed::say("start to read from conn");
    try {
      const std::size_t n = co_await c.read(buf, sizeof buf);
      if (n == 0) {
        seed::say("conn read error: %s", seed::eof_text);
        break;
      }
      seed::say("read %d bytes, content is %.*s", static_cast<int>(n), static_cast<int>(n), buf);
    } catch (const std::system_error &e) {
      seed::say("conn read error: %s", e.what());
      break;
    }
  }
  c.conn().close_now();
}

int main(int argc, char **argv) {
  seed::parse(argc, argv, "127.0.0.1:8892");
  return seed::run(run);
}
