// rw_server1 — reading a connection that has no data yet (seed 001,
// "conn.Read" case 1; docs/go-model.md G12): the read waits, suspended,
// using no CPU, until rw_client1 sends; then the read returns what came;
// then EOF. Coroutine version of ../rw_server1.c.
#include <sys/resource.h>

#include "seed.hpp"

static std::uint64_t cpu_ms() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<std::uint64_t>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000u +
         static_cast<std::uint64_t>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000u;
}

static rill::co::task<> run(rill::base_ref base) {
  const std::uint64_t client_delay = static_cast<std::uint64_t>(seed::ms(2000, 200).count());
  std::optional<rill::co::acceptor> l;
  if (!seed::listen(base, l)) {
    seed::status = 1;
    co_return;
  }
  rill::co::stream c = co_await seed::accept_one(*l);
  l.reset();
  char buf[10];
  seed::say("start to read from conn");
  const std::uint64_t t0 = seed::clock_ms(), cpu0 = cpu_ms();
  std::size_t n = 0;
  try {
    n = co_await c.read(buf, sizeof buf);
  } catch (const std::system_error &e) {
    seed::say("conn read error: %s", e.what());
    seed::status = 1;
    co_return;
  }
  const std::uint64_t waited = seed::clock_ms() - t0, cpu = cpu_ms() - cpu0;
  if (n == 0) {
    seed::say("conn read error: %s", seed::eof_text);
    seed::status = 1;
    co_return;
  }
  seed::say("read %d bytes, content is %.*s", static_cast<int>(n), static_cast<int>(n), buf);
  // Half the client's delay: the accept itself took part of it.
  if (waited >= client_delay / 2)
    seed::say("the read waited for the data");
  if (cpu * 10 < waited)
    seed::say("and used (almost) no CPU while it waited");
  seed::say("start to read from conn");
  try {
    n = co_await c.read(buf, sizeof buf);
    if (n == 0)
      seed::say("conn read error: %s", seed::eof_text);
    else
      seed::say("read %d bytes, content is %.*s", static_cast<int>(n), static_cast<int>(n), buf);
  } catch (const std::system_error &e) {
    seed::say("conn read error: %s", e.what());
  }
  c.conn().close_now();
}

int main(int argc, char **argv) {
  seed::parse(argc, argv, "127.0.0.1:8891");
  return seed::run(run);
}
