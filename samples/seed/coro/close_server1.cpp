// close_server1 — reading and writing a connection the peer has closed
// (seed 001, "closing"; docs/go-model.md G15, G22): the read gets EOF, yet
// a write succeeds (the bytes land in this side's kernel buffer); the peer
// answers them with a reset, and the next write fails with "broken pipe".
// Run with close_client1. Coroutine version of ../close_server1.c.
#include "seed.hpp"

static rill::co::task<> run(rill::base_ref base) {
  char buf[10] = {0};
  std::optional<rill::co::acceptor> l;
  if (!seed::listen(base, l)) {
    seed::status = 1;
    co_return;
  }
  rill::co::stream c = co_await seed::accept_one(*l);
  l.reset();
  seed::say("start to read from conn");
  try {
    const std::size_t n = co_await c.read(buf, sizeof buf);
    if (n == 0)
      seed::say("conn read error: %s", seed::eof_text);
    else
      seed::say("read %d bytes", static_cast<int>(n));
  } catch (const std::system_error &e) {
    seed::say("conn read error: %s", e.what());
  }
  for (int i = 0; i < 2; i++) {
    if (i > 0)
      co_await rill::co::sleep(base, seed::ms(1000, 100));  // the peer's RST comes back meanwhile
    try {
      co_await c.write(std::string_view(buf, sizeof buf));
      seed::say("write %d bytes", static_cast<int>(sizeof buf));
    } catch (const std::system_error &e) {
      seed::say("conn write error: %s", e.what());
    }
  }
  c.conn().close_now();
}

int main(int argc, char **argv) {
  seed::parse(argc, argv, "127.0.0.1:8901");
  return seed::run(run);
}
