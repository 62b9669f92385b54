// rw_server6 — reads only after the client's write deadline has passed,
// then everything until EOF (seed 001, "conn.Write" case 4;
// docs/go-model.md G20). Run with rw_client6, which ends its stream with an
// 8-byte trailer: the number of bytes its writes reported. The server checks
// that it received exactly that many. Coroutine version of ../rw_server6.c.
#include "seed.hpp"

static rill::co::task<> run(rill::base_ref base) {
  static unsigned char buf[65536];
  unsigned char last[8] = {0};
  std::uint64_t total = 0, reported = 0;
  std::optional<rill::co::acceptor> l;
  if (!seed::listen(base, l)) {
    seed::status = 1;
    co_return;
  }
  rill::co::stream c = co_await seed::accept_one(*l);
  l.reset();
  c.conn().set_read_buffer(32 * 1024);
  co_await rill::co::sleep(base, seed::ms(3000, 300));  // past the client's write deadline
  seed::say("start to read from conn until EOF");
  try {
    std::size_t n;
    while ((n = co_await c.read(buf, sizeof buf)) > 0) {
      for (std::size_t i = 0; i < n; i++) {  // keep the stream's last 8 bytes
        std::memmove(last, last + 1, 7);
        last[7] = buf[i];
      }
      total += n;
    }
    seed::say("conn read error: %s", seed::eof_text);
  } catch (const std::system_error &e) {
    seed::say("conn read error: %s", e.what());
  }
  for (unsigned char b : last)
    reported = reported << 8 | b;
  if (total >= 8 && total - 8 == reported)
    seed::say("received exactly the bytes the client's writes reported, the partial one included");
  else
    seed::say("received %llu bytes, but the client reported %llu",
              static_cast<unsigned long long>(total - 8), static_cast<unsigned long long>(reported));
  c.conn().close_now();
}

int main(int argc, char **argv) {
  seed::parse(argc, argv, "127.0.0.1:8896");
  return seed::run(run);
}
