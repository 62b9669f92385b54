/// @file
/// rill — C++20 coroutines: streams, dialing and accepting (see rill/coro.hpp).
#ifndef RILL_CORO_NET_HPP
#define RILL_CORO_NET_HPP

#include <deque>
#include <string>

#include "rill/coro/task.hpp"

namespace rill::co {

// ---- streams ----------------------------------------------------------------

/// A connection for coroutines: read() and write() are awaited. Owns the
/// rill::conn (conn() gives it, for deadlines and options); destroying the
/// stream closes it gracefully.
class stream {
 public:
  stream() = default;
  /// Takes over `c`; reading waits for a read().
  explicit stream(rill::conn c) : s_(std::make_unique<state>()) {
    s_->c = std::move(c);
    state *s = s_.get();
    s_->c.on_read([s](conn_ref self, std::string_view data, std::error_code ec) {
      return s->deliver(self, data, ec);
    });
    s_->c.on_drain([s] { s->resume_writer(); });
    s_->c.on_write_error([s](std::error_code ec, std::size_t) {
      s->write_error = ec;
      s->resume_writer();
    });
    s_->c.on_close([s] { s->closed(); });
    s_->c.read_stop();  // reading waits for a read()
  }

  /// False when empty, and once the connection has closed.
  explicit operator bool() const noexcept { return s_ && s_->c.is_open(); }
  /// The connection, for deadlines, options and addresses.
  rill::conn &conn() noexcept { return s_->c; }

  class read_awaiter;
  class write_awaiter;

  /// Reads what is there, up to `len` bytes; 0 at EOF. Throws
  /// std::system_error on a read error or a passed read deadline
  /// (rill::errc::timeout; nothing is lost, read again after moving it).
  read_awaiter read(void *buf, std::size_t len) noexcept;
  /// Writes every byte (copying what the kernel does not take at once) and
  /// resumes once the queue has drained. Throws std::system_error.
  write_awaiter write(std::string_view data) noexcept;

  /// The read deadline (a rill::clock time point, no_deadline, or a
  /// duration from now), as rill::conn's. Once it has passed, read() throws
  /// errc::timeout without reading, even when data waits (Go's order, G16).
  template <class T>
  std::error_code set_read_deadline(T when) const noexcept {
    return s_->c.set_read_deadline(when);
  }
  /// The write deadline, as rill::conn's (a passed one makes write() throw
  /// errc::timeout).
  template <class T>
  std::error_code set_write_deadline(T when) const noexcept {
    return s_->c.set_write_deadline(when);
  }
  /// rill::conn's close_write() and close(). @{
  std::error_code close_write() const noexcept { return s_->c.close_write(); }
  std::error_code close() const noexcept { return s_->c.close(); }
  /// @}

 private:
  struct state {
    rill::conn c;
    // The waiting read, if any: its buffer, and what it got.
    std::coroutine_handle<> reader;
    char *buf = nullptr;
    std::size_t cap = 0;
    std::size_t got = 0;
    std::error_code read_error;
    bool eof = false;
    std::string tail;  // bytes that came with EOF and did not fit
    std::coroutine_handle<> writer;
    std::error_code write_error;

    std::size_t deliver(conn_ref self, std::string_view data, std::error_code ec) {
      if (!reader) {
        // Nobody asked. Bytes stay with the connection and reading stops;
        // an end (EOF, an error, a passed deadline) waits for the next read.
        if (ec == rill::errc::eof) {
          eof = true;
          tail.assign(data);
        } else if (ec) {
          read_error = ec;
        } else {
          self.read_stop();
        }
        return 0;
      }
      std::size_t n = data.size() < cap ? data.size() : cap;
      if (n != 0)
        std::memcpy(buf, data.data(), n);
      got = n;
      if (ec == rill::errc::eof) {
        eof = true;
        tail.assign(data.substr(n));
      } else if (ec) {
        read_error = ec;
        n = 0;
        got = 0;
      }
      self.read_stop();
      std::exchange(reader, {}).resume();
      return n;
    }
    void resume_writer() {
      if (writer)
        std::exchange(writer, {}).resume();
    }
    // Closed under a waiting read or write (close_now() from elsewhere, an
    // abort): they resume with errc::closed.
    void closed() {
      std::coroutine_handle<> r = std::exchange(reader, {});
      std::coroutine_handle<> w = std::exchange(writer, {});
      if (r)
        read_error = make_error_code(errc::closed);
      if (w)
        write_error = make_error_code(errc::closed);
      if (r)
        r.resume();
      if (w)
        w.resume();
    }
  };
  std::unique_ptr<state> s_;
};

/// What read() returns, to co_await.
class stream::read_awaiter {
 public:
  /// Made by read(); then the awaiter protocol, what co_await calls. @{
  read_awaiter(state *s, void *buf, std::size_t len) noexcept : s_(s), buf_(buf), len_(len) {}
  read_awaiter(const read_awaiter &) = delete;
  read_awaiter &operator=(const read_awaiter &) = delete;
  ~read_awaiter() {
    if (s_ != nullptr && s_->reader == me_) {  // cancelled while waiting
      s_->reader = {};
      s_->c.read_stop();
    }
  }
  bool await_ready() {
    if (s_ == nullptr)
      detail::throw_error(to_error_code(RILL_EINVAL), "read: invalid argument");
    return s_->eof || s_->read_error || len_ == 0;
  }
  bool await_suspend(std::coroutine_handle<> h) {
    s_->reader = me_ = h;
    s_->buf = static_cast<char *>(buf_);
    s_->cap = len_;
    s_->got = 0;
    if (auto ec = s_->c.read_start()) {
      s_->reader = {};
      s_->read_error = ec;
      return false;
    }
    return true;
  }
  std::size_t await_resume() {
    me_ = {};
    if (s_->read_error) {
      const std::error_code ec = std::exchange(s_->read_error, {});
      detail::throw_error(ec, s_->c.format_error("read", ec));
    }
    if (s_->eof && s_->got == 0 && !s_->tail.empty()) {  // what EOF left over
      std::size_t n = s_->tail.size() < len_ ? s_->tail.size() : len_;
      std::memcpy(buf_, s_->tail.data(), n);
      s_->tail.erase(0, n);
      return n;
    }
    return std::exchange(s_->got, 0);
  }
  /// @}

 private:
  state *s_;
  void *buf_;
  std::size_t len_;
  std::coroutine_handle<> me_;
};

/// What write() returns, to co_await.
class stream::write_awaiter {
 public:
  /// Made by write(); then the awaiter protocol, what co_await calls. @{
  write_awaiter(state *s, std::string_view data) noexcept : s_(s), data_(data) {}
  write_awaiter(const write_awaiter &) = delete;
  write_awaiter &operator=(const write_awaiter &) = delete;
  ~write_awaiter() {
    if (s_ != nullptr && s_->writer == me_ && me_)
      s_->writer = {};  // cancelled while waiting: the copy stays queued
  }
  bool await_ready() {
    if (s_ == nullptr)
      detail::throw_error(to_error_code(RILL_EINVAL), "write: invalid argument");
    s_->write_error.clear();
    error_ = s_->c.write(data_);
    return error_ || s_->c.write_queued() == 0;
  }
  void await_suspend(std::coroutine_handle<> h) noexcept { s_->writer = me_ = h; }
  void await_resume() {
    me_ = {};
    if (!error_)
      error_ = std::exchange(s_->write_error, {});
    if (error_)
      detail::throw_error(error_, s_->c.format_error("write", error_));
  }
  /// @}

 private:
  state *s_;
  std::string_view data_;
  std::error_code error_;
  std::coroutine_handle<> me_;
};

inline stream::read_awaiter stream::read(void *buf, std::size_t len) noexcept {
  return read_awaiter(s_.get(), buf, len);
}
inline stream::write_awaiter stream::write(std::string_view data) noexcept {
  return write_awaiter(s_.get(), data);
}

// ---- dialing and accepting -----------------------------------------------------

/// co_await dial(base, network, address[, options]): a connected stream,
/// or std::system_error with Go's message ("dial tcp 127.0.0.1:1: connect:
/// connection refused").
class dial_awaiter {
 public:
  /// Made by dial(); then the awaiter protocol, what co_await calls. @{
  dial_awaiter(base_ref base, std::string network, std::string address, const net_options &opts)
      : base_(base), network_(std::move(network)), address_(std::move(address)), opts_(opts) {}
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    dialer_ = rill::dial(base_, network_, address_,
                         [this, h](rill::conn c, std::error_code ec, std::string_view what) {
                           conn_ = std::move(c);
                           ec_ = ec;
                           what_ = what;
                           h.resume();
                         },
                         opts_, ec_);
    if (ec_)
      what_ = "dial " + network_ + " " + address_ + ": " + ec_.message();
    return !ec_;
  }
  stream await_resume() {
    if (ec_)
      detail::throw_error(ec_, what_);
    return stream(std::move(conn_));
  }
  /// @}

 private:
  base_ref base_;
  std::string network_, address_;
  net_options opts_;
  rill::dialer dialer_;  // destroyed with the awaiter: a cancelled dial stops
  rill::conn conn_;
  std::error_code ec_;
  std::string what_;
};

/// What `co_await dial(base, network, address[, options])` awaits: see
/// dial_awaiter.
inline dial_awaiter dial(base_ref base, std::string network, std::string address,
                         const net_options &opts = net_options{}) {
  return dial_awaiter(base, std::move(network), std::move(address), opts);
}

/// A listener for coroutines: co_await accept() gives the next connection.
/// Connections that arrive while nobody waits are queued.
class acceptor {
 public:
  /// Throws std::system_error (as rill::listen does).
  acceptor(base_ref base, zstring network, zstring address, const net_options &opts = net_options{})
      : s_(std::make_unique<state>()) {
    state *s = s_.get();
    s_->l = rill::listen(base, network, address, [s](rill::conn c, std::error_code ec) {
      if (ec)
        return;  // EMFILE and friends: the listener backs off and goes on
      s->ready.push_back(std::move(c));
      if (s->waiter)
        std::exchange(s->waiter, {}).resume();
    }, opts);
  }

  /// The bound address and port, as rill::listener's. @{
  std::string addr() const { return s_->l.addr(); }
  int port() const noexcept { return s_->l.port(); }
  /// @}
  /// Stops taking connections from the kernel until resume(): new ones
  /// wait in its listen queue (net_options::backlog), as they do while a Go
  /// program calls no Accept, and dials beyond it wait too. A waiting
  /// accept() keeps waiting. rill::errc::closed once closed.
  std::error_code pause() const noexcept {
    return s_->l ? s_->l.pause() : make_error_code(errc::closed);
  }
  /// Takes connections from the kernel again after pause().
  std::error_code resume() const noexcept {
    return s_->l ? s_->l.resume() : make_error_code(errc::closed);
  }
  /// Stops listening; a waiting accept() resumes with errc::closed, as do
  /// later ones once the queued connections are taken.
  void close() {
    s_->l.close();
    if (s_->waiter)
      std::exchange(s_->waiter, {}).resume();
  }

  /// What accept() returns, to co_await.
  class accept_awaiter {
   public:
    /// Made by accept(); then the awaiter protocol, what co_await calls. @{
    explicit accept_awaiter(acceptor *a) noexcept : a_(a) {}
    accept_awaiter(const accept_awaiter &) = delete;
    accept_awaiter &operator=(const accept_awaiter &) = delete;
    ~accept_awaiter() {
      if (me_ && a_->s_->waiter == me_)
        a_->s_->waiter = {};
    }
    bool await_ready() const noexcept { return !a_->s_->ready.empty(); }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
      if (!a_->s_->l)
        return false;  // closed: await_resume says so
      a_->s_->waiter = me_ = h;
      return true;
    }
    stream await_resume() {
      me_ = {};
      if (a_->s_->ready.empty())
        detail::throw_error(make_error_code(errc::closed), "accept: use of closed network connection");
      rill::conn c = std::move(a_->s_->ready.front());
      a_->s_->ready.pop_front();
      return stream(std::move(c));
    }
    /// @}

   private:
    acceptor *a_;
    std::coroutine_handle<> me_;
  };

  /// The next connection; std::system_error (errc::closed) once closed.
  accept_awaiter accept() noexcept { return accept_awaiter(this); }

 private:
  struct state {
    rill::listener l;
    std::deque<rill::conn> ready;
    std::coroutine_handle<> waiter;
  };
  std::unique_ptr<state> s_;
};

}  // namespace rill::co

#endif  // RILL_CORO_NET_HPP
