// rw_server5 — a slow reader that dies (seed 001, "conn.Write" cases 2 and
// 3). Run with rw_client5. Coroutine version of ../rw_server5.c: no reads
// at first, so the client's writes fill both kernel buffers and block
// (G19); then 60000 bytes a few times, so they resume; then Go's Close with
// unread data, which resets the connection: the client's blocked write
// fails (G21).
#include "seed.hpp"

static constexpr int reads = 8;  // 480000 bytes: more than both buffers hold, see rw_client5
static char buf[60000];

static rill::co::task<> run(rill::base_ref base) {
  std::optional<rill::co::acceptor> l;
  if (!seed::listen(base, l)) {
    seed::status = 1;
    co_return;
  }
  rill::co::stream c = co_await seed::accept_one(*l);
  l.reset();
  c.conn().set_read_buffer(32 * 1024);
  co_await rill::co::sleep(base, seed::ms(10000, 300));
  for (int i = 0; i < reads; i++) {
    co_await rill::co::sleep(base, seed::ms(5000, 50));
    seed::say("start to read from conn");
    // io.ReadFull: one read returns what the small buffer holds.
    std::size_t got = 0, n = 1;
    try {
      while (got < sizeof buf && (n = co_await c.read(buf + got, sizeof buf - got)) > 0)
        got += n;
    } catch (const std::system_error &e) {
      seed::say("conn read error: %s", e.what());
      break;
    }
    if (n == 0) {
      seed::say("conn read error: %s", seed::eof_text);
      break;
    }
    seed::say("read %d bytes", static_cast<int>(got));
  }
  seed::say("close with unread data (resets the connection)");
  c.conn().close_now();
}

int main(int argc, char **argv) {
  seed::parse(argc, argv, "127.0.0.1:8895");
  return seed::run(run);
}
