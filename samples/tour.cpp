// tour — the README's tour of rill, in C++ (include/rill.hpp).
//
// One base, one stop after the other, each started by the event that ends
// the previous one: a repeating timer; a pipe watched for input; an echo
// server on 127.0.0.1 and a client that dials it by name ("localhost",
// answered without asking a DNS server); a read deadline passing; the
// server pausing and resuming its reading while its echo piles up unread
// (back-pressure); a signal; and a function posted from another thread,
// which ends the tour. Exits 0 when every stop behaved, 1 otherwise.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>
#include <thread>

#include <rill.hpp>

using namespace std::chrono_literals;

namespace {

constexpr std::size_t bulk_bytes = 4u << 20;  // the back-pressure stop

class tour {
 public:
  tour() { std::printf("tour: a base on %s\n", base_.backend()); }

  int run() {
    start_timer();
    base_.run();
    if (poster_.joinable())
      poster_.join();
    const bool all = stops_ == 8;
    std::printf("tour: %s (%d of 8 stops)\n", all ? "done" : "FAILED", stops_);
    return all ? 0 : 1;
  }

 private:
  // 1. A timer every 10 ms, stopped from its own callable after three ticks.
  void start_timer() {
    ticker_ = rill::timer(base_, [this] {
      std::printf("timer: tick %d\n", ++ticks_);
      if (ticks_ == 3) {
        ticker_.close();  // fine from inside its own callback
        stops_++;
        start_io();
      }
    });
    ticker_.start(10ms, 10ms);
  }

  // 2. A pipe watched for input.
  void start_io() {
    if (pipe(pipe_) != 0) {
      std::perror("pipe");
      return;
    }
    watcher_ = rill::io(base_, pipe_[0], [this](unsigned) {
      char buf[16];
      const ssize_t n = read(pipe_[0], buf, sizeof buf);
      std::printf("io: the pipe said \"%.*s\"\n", static_cast<int>(n > 0 ? n : 0), buf);
      watcher_.close();  // before its descriptor
      close(pipe_[0]);
      close(pipe_[1]);
      stops_++;
      start_server();
    });
    watcher_.start(rill::readable);
    if (write(pipe_[1], "ping", 4) != 4)
      std::perror("write");
  }

  // 3. An echo server with back-pressure: when the echo piles up unread
  //    (its queue passes the high-water mark) it stops reading, and reads
  //    again once the queue fell to the low mark.
  void start_server() {
    rill::net_options opts{};
    opts.write_high_water = 256 * 1024;
    opts.write_low_water = 64 * 1024;
    server_ = rill::listen(base_, "tcp4", "127.0.0.1:0", [this](rill::conn c, std::error_code ec) {
      if (ec) {
        std::printf("accept: %s\n", ec.message().c_str());
        return;
      }
      c.set_write_buffer(32 * 1024);  // small buffers: the echo piles up soon
      c.on_read([](rill::conn_ref self, std::string_view data, std::error_code e) -> std::size_t {
        if (e) {  // EOF or an error: done with this one
          self.close();
          return 0;
        }
        self.write(data);
        return data.size();
      });
      c.on_high_water([this](rill::conn_ref self, std::size_t queued) {
        if (!paused_once_)
          std::printf("back-pressure: %zu bytes of echo unread, the server stops reading\n", queued);
        paused_once_ = true;
        self.read_stop();
        client_.read_start();  // the client reads its echo now
      });
      c.on_low_water([this](rill::conn_ref self, std::size_t) {
        if (!resumed_once_)
          std::printf("back-pressure: the client caught up, the server reads again\n");
        resumed_once_ = true;
        self.read_start();
      });
      c.detach();  // it lives on its callbacks until it closes
    }, opts);
    std::printf("listen: echo server on %s\n", server_.addr().c_str());
    dial_by_name();
  }

  // 4. Dial by name, echo a greeting, then wait for more with a deadline.
  void dial_by_name() {
    const std::string address = "localhost:" + std::to_string(server_.port());
    dialer_ = rill::dial(base_, "tcp4", address,
                         [this, address](rill::conn c, std::error_code ec, std::string_view what) {
      if (ec) {
        std::printf("%.*s\n", static_cast<int>(what.size()), what.data());
        server_.close();
        return;
      }
      std::printf("dial: connected to %s (%s)\n", address.c_str(), c.remote_addr().c_str());
      stops_++;
      client_ = std::move(c);
      client_.on_read([this](rill::conn_ref self, std::string_view data, std::error_code e) {
        on_client_read(self, data, e);
      });
      client_.on_close([this] { start_signal(); });
      client_.write("hello, rill");
    });
  }

  void on_client_read(rill::conn_ref self, std::string_view data, std::error_code ec) {
    if (ec == rill::errc::timeout) {
      // 5. Nothing came before the deadline: reading pauses, nothing is lost.
      std::printf("deadline: %s\n", self.format_error("read", ec).c_str());
      stops_++;
      self.set_read_deadline(rill::no_deadline);
      send_bulk(self);
      return;
    }
    if (ec) {
      std::printf("client: %s\n", ec.message().c_str());
      self.close();
      return;
    }
    echoed_ += data.size();
    if (phase_ == 0 && echoed_ == 11) {
      std::printf("echo: \"hello, rill\" came back\n");
      stops_++;
      phase_ = 1;
      echoed_ = 0;
      self.set_read_deadline(50ms);  // the server says nothing more
    } else if (phase_ == 2 && echoed_ == bulk_bytes) {
      // 6. Back-pressure held the server back, then let it go.
      std::printf("back-pressure: %zu bytes echoed\n", echoed_);
      if (paused_once_ && resumed_once_)
        stops_++;
      self.close();
      server_.close();
    }
  }

  // The client sends 4 MiB without reading, so the echo piles up on the
  // server until its high-water mark pauses it.
  void send_bulk(rill::conn_ref self) {
    phase_ = 2;
    self.read_stop();
    const std::string chunk(64 * 1024, 'x');
    for (std::size_t sent = 0; sent < bulk_bytes; sent += chunk.size())
      self.write(chunk);
  }

  // 7. A signal, delivered as a callback on the base's thread.
  void start_signal() {
    signals_ = rill::signal_watcher(base_, [this](int signum) {
      std::printf("signal: %s\n", signum == SIGUSR1 ? "SIGUSR1" : "another one");
      signals_.close();
      stops_++;
      start_post();
    });
    signals_.start(SIGUSR1);
    kill(getpid(), SIGUSR1);
  }

  // 8. A function posted from another thread (post() and stop() are the
  //    only calls other threads may make). Nothing is active afterwards,
  //    so run() returns.
  void start_post() {
    base_.add_ref();  // run() waits for the post
    rill::base_ref base = base_;
    poster_ = std::thread([this, base] {
      base.post([this] {
        std::printf("post: ran on the base's thread\n");
        stops_++;
        base_.remove_ref();
      });
    });
  }

  rill::base base_;
  rill::timer ticker_;
  rill::io watcher_;
  rill::listener server_;
  rill::dialer dialer_;
  rill::conn client_;
  rill::signal_watcher signals_;
  std::thread poster_;
  int pipe_[2] = {-1, -1};
  int ticks_ = 0;
  int stops_ = 0;
  int phase_ = 0;
  std::size_t echoed_ = 0;
  bool paused_once_ = false;
  bool resumed_once_ = false;
};

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each stop as it happens, also into a pipe
  try {
    tour t;
    return t.run();
  } catch (const std::system_error &e) {
    std::fprintf(stderr, "tour: %s: %s\n", e.what(), e.code().message().c_str());
    return 1;
  }
}
