// rw_server3 — reads only after the client has closed (seed 001,
// "conn.Read" case 4; docs/go-model.md G15): the data that was sent before
// the close comes first, then EOF. Run with rw_client3.
// Coroutine version of ../rw_server3.c.
#include "seed.hpp"

static rill::co::task<> run(rill::base_ref base) {
  std::optional<rill::co::acceptor> l;
  if (!seed::listen(base, l)) {
    seed::status = 1;
    co_return;
  }
  rill::co::stream c = co_await seed::accept_one(*l);
  l.reset();
  for (int i = 0; i < 2; i++) {
    char buf[10];
    co_await rill::co::sleep(base, seed::ms(10000, 100));  // the client is long gone by then
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
  seed::parse(argc, argv, "127.0.0.1:8893");
  return seed::run(run);
}
