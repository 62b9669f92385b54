// rw_server4 — reads under deadlines (seed 001, "conn.Read" case 5;
// docs/go-model.md G16). Run with rw_client4, which sends 65536 bytes after
// a pause and closes. The three cases of ../rw_server4.c:
//   1. a deadline that passes before any data came: 0 bytes, i/o timeout;
//   2. a deadline already passed while data waits: still 0 bytes and
//      i/o timeout (the deadline is checked before reading), nothing lost;
//   3. a deadline in the future: every byte, then EOF.
#include "seed.hpp"

static char buf[65536];

// One read: its byte count and error text as the C and Go versions print them.
static rill::co::task<> read_once(rill::co::stream &c) {
  try {
    const std::size_t n = co_await c.read(buf, sizeof buf);
    seed::say("conn read %d bytes, error: %s", static_cast<int>(n), n == 0 ? seed::eof_text : "none");
  } catch (const std::system_error &e) {
    seed::say("conn read 0 bytes, error: %s", e.what());
  }
}

static rill::co::task<> run(rill::base_ref base) {
  std::optional<rill::co::acceptor> l;
  if (!seed::listen(base, l)) {
    seed::status = 1;
    co_return;
  }
  rill::co::stream c = co_await seed::accept_one(*l);
  l.reset();

  seed::say("start to read from conn (deadline soon, no data yet)");
  c.set_read_deadline(std::chrono::duration_cast<rill::clock::duration>(seed::ms(1000, 100)));
  co_await read_once(c);

  co_await rill::co::sleep(base, seed::ms(4000, 500));  // the data arrives meanwhile
  seed::say("start to read from conn (deadline passed, data waiting)");
  c.set_read_deadline(rill::clock::now() - 1ms);
  co_await read_once(c);

  seed::say("start to read from conn (deadline in 1 s)");
  c.set_read_deadline(std::chrono::duration_cast<rill::clock::duration>(1s));
  // Every read returns what is there; how it is split depends on the
  // kernel, so only the sum is printed.
  std::size_t total = 0;
  try {
    std::size_t n = 1;
    while (total < sizeof buf && (n = co_await c.read(buf + total, sizeof buf - total)) > 0)
      total += n;
    if (n == 0)
      seed::say("conn read error: %s", seed::eof_text);
  } catch (const std::system_error &e) {
    seed::say("conn read error: %s", e.what());
  }
  seed::say("read %d bytes in total: nothing was lost to the timeouts", static_cast<int>(total));
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
  c.conn().close_now();
}

int main(int argc, char **argv) {
  seed::parse(argc, argv, "127.0.0.1:8894");
  return seed::run(run);
}
