/// @file
/// rill C++ API, part 3: connections and listeners.
///
/// Include <rill.hpp>, not this file. A connection follows rill/net.h's
/// close protocol; the C++ owner adds two things to it: once on_close has
/// run, every call through the owner (or a conn_ref) returns errc::closed
/// instead of touching a dead handle, and once the owner is destroyed none
/// of its callables runs again.
#ifndef RILL_CXX_NET_HPP
#define RILL_CXX_NET_HPP

#include <netinet/in.h>

#include "rill/cxx/watchers.hpp"

namespace rill {

/// rill_socket_config: zero-initialise (`rill::net_options opts{};`), set what
/// you need (durations with rill::to_ns()).
using net_options = rill_socket_config;

/// Which deadline (rill_conn_set_deadline).
enum class deadline : int {
  read = RILL_DEADLINE_READ,
  write = RILL_DEADLINE_WRITE,
  both = RILL_DEADLINE_BOTH
};

/// A C string argument: a literal, a `const char *` or a std::string.
class zstring {
 public:
  /// Converts implicitly from either; the string must outlive the call. @{
  zstring(const char *s) noexcept : s_(s) {}         // NOLINT: implicit on purpose
  zstring(const std::string &s) noexcept : s_(s.c_str()) {}  // NOLINT
  /// @}
  /// The C string.
  const char *c_str() const noexcept { return s_; }

 private:
  const char *s_;
};

class conn;
class conn_ref;

namespace cxx_detail {

struct conn_state final : state_base {
  rill_conn *h = nullptr;
  bool reading = false;  // on_read is in the C event table
  callback<std::size_t(conn_ref, std::string_view, std::error_code)> on_read;
  callback<void(conn_ref)> on_drain;
  callback<void(conn_ref, std::size_t)> on_high_water;
  callback<void(conn_ref, std::size_t)> on_low_water;
  callback<void(conn_ref, std::error_code, std::size_t)> on_write_error;
  callback<void(conn_ref)> on_close;
};

struct conn_access;

}  // namespace cxx_detail

/// What every connection call offers, on a conn (the owner) or a conn_ref
/// (a view, what callbacks get). Calls after on_close return errc::closed
/// (RILL_ECLOSED); calls on an empty owner RILL_EINVAL.
template <class D>
class conn_ops {
 public:
  /// The C handle; nullptr once on_close ran (or when empty).
  rill_conn *get() const noexcept { return st() != nullptr ? st()->h : nullptr; }
  /// False once on_close ran, and for an empty owner.
  bool is_open() const noexcept { return get() != nullptr; }

  /// Writes now what the kernel takes and queues the rest (copied).
  std::error_code write(std::string_view data) const noexcept {
    return call([&](rill_conn *c) { return rill_conn_write(c, data.data(), data.size()); });
  }
  /// The same, for `len` bytes at `data`.
  std::error_code write(const void *data, std::size_t len) const noexcept {
    return call([&](rill_conn *c) { return rill_conn_write(c, data, len); });
  }
  /// Zero-copy write: `data` must stay valid until `done(ec, written)`
  /// runs, from the loop. A `done` that is trivially copyable and no larger
  /// than a pointer (capturing one pointer or reference) costs no
  /// allocation; a larger one is allocated once per write.
  template <class F>
  std::error_code write_ref(std::string_view data, F &&done) const {
    using C = std::decay_t<F>;
    static_assert(std::is_invocable_v<C &, std::error_code, std::size_t>,
                  "rill: write_ref's callable takes (std::error_code, std::size_t)");
    if constexpr (cxx_detail::fits_in_pointer<C>) {
      return call([&](rill_conn *c) {
        return rill_conn_write_ref(c, data.data(), data.size(), &written_packed<C>,
                                   cxx_detail::pack<C>(done));
      });
    } else {
      auto owned = std::make_unique<C>(std::forward<F>(done));
      const std::error_code ec = call([&](rill_conn *c) {
        return rill_conn_write_ref(c, data.data(), data.size(), &written_allocated<C>,
                                   owned.get());
      });
      if (!ec)
        owned.release();  // written_allocated frees it
      return ec;
    }
  }
  /// Writes what the kernel takes now, nothing more; the count taken.
  std::size_t try_write(std::string_view data, std::error_code &ec) const noexcept {
    rill_conn *c = get();
    if (c == nullptr) {
      ec = gone();
      return 0;
    }
    const ssize_t n = rill_conn_try_write(c, data.data(), data.size());
    ec = to_error_code(n);
    return n < 0 ? 0 : static_cast<std::size_t>(n);
  }
  /// Bytes queued, not yet taken by the kernel.
  std::size_t write_queued() const noexcept { return rill_conn_write_queued(get()); }
  /// Bytes the kernel has taken since the connection opened.
  std::uint64_t bytes_written() const noexcept { return rill_conn_bytes_written(get()); }

  /// Back-pressure: pause reading.
  std::error_code read_stop() const noexcept { return call(&rill_conn_read_stop); }
  /// Back-pressure: resume reading.
  std::error_code read_start() const noexcept { return call(&rill_conn_read_start); }

  /// Deadlines: a time point on rill::clock (no_deadline: none), or a
  /// duration from now. A passed deadline fails I/O with errc::timeout
  /// until moved; nothing read is lost.
  std::error_code set_deadline(deadline which, clock::time_point when) const noexcept {
    return call([&](rill_conn *c) {
      return rill_conn_set_deadline(c, static_cast<int>(which), to_ns(when));
    });
  }
  /// The same, `from_now` from now.
  std::error_code set_deadline(deadline which, clock::duration from_now) const noexcept {
    return call([&](rill_conn *c) {
      return rill_conn_set_deadline(c, static_cast<int>(which), cxx_detail::from_now(from_now));
    });
  }
  /// set_deadline(deadline::read, when).
  template <class T>
  std::error_code set_read_deadline(T when) const noexcept {
    return set_deadline(deadline::read, when);
  }
  /// set_deadline(deadline::write, when).
  template <class T>
  std::error_code set_write_deadline(T when) const noexcept {
    return set_deadline(deadline::write, when);
  }

  /// FIN once the queue is flushed; reading goes on.
  std::error_code close_write() const noexcept { return call(&rill_conn_close_write); }
  /// Graceful close: flush, then close; on_close follows, from the loop.
  std::error_code close() const noexcept { return call(&rill_conn_close); }
  /// Close at once, dropping the queue (Go's Close); then on_close.
  std::error_code close_now() const noexcept { return call(&rill_conn_close_now); }
  /// Reset (RST); then on_close.
  std::error_code abort() const noexcept { return call(&rill_conn_abort); }

  /// Go's TCPConn.SetNoDelay (G4), rill_conn_set_no_delay().
  std::error_code set_no_delay(bool on) const noexcept {
    return call([&](rill_conn *c) { return rill_conn_set_no_delay(c, on ? 1 : 0); });
  }
  /// Go's TCPConn.SetKeepAlive and SetKeepAlivePeriod (`period` zero: 15 s),
  /// rill_conn_set_keep_alive().
  std::error_code set_keep_alive(bool on, clock::duration period = {}) const noexcept {
    return call([&](rill_conn *c) { return rill_conn_set_keep_alive(c, on ? 1 : 0, to_ns(period)); });
  }
  /// Go's TCPConn.SetLinger (< 0: off), rill_conn_set_linger().
  std::error_code set_linger(int seconds) const noexcept {
    return call([&](rill_conn *c) { return rill_conn_set_linger(c, seconds); });
  }
  /// Go's TCPConn.SetReadBuffer, rill_conn_set_read_buffer().
  std::error_code set_read_buffer(int bytes) const noexcept {
    return call([&](rill_conn *c) { return rill_conn_set_read_buffer(c, bytes); });
  }
  /// Go's TCPConn.SetWriteBuffer, rill_conn_set_write_buffer().
  std::error_code set_write_buffer(int bytes) const noexcept {
    return call([&](rill_conn *c) { return rill_conn_set_write_buffer(c, bytes); });
  }

  /// The descriptor, or a negative code.
  int fd() const noexcept { return get() != nullptr ? rill_conn_fd(get()) : RILL_ECLOSED; }
  /// The base the connection is on.
  base_ref base() const noexcept { return base_ref(rill_conn_base(get())); }
  /// "tcp" or "unix"; "" once closed.
  std::string_view network() const noexcept {
    const char *n = get() != nullptr ? rill_conn_network(get()) : nullptr;
    return n != nullptr ? std::string_view(n) : std::string_view();
  }
  /// The local address, Go-formatted ("127.0.0.1:7000"); "" once closed.
  std::string local_addr() const { return addr(&rill_conn_local_addr); }
  /// The remote address, the same way.
  std::string remote_addr() const { return addr(&rill_conn_remote_addr); }
  /// "read tcp 127.0.0.1:5000->127.0.0.1:7000: i/o timeout".
  std::string format_error(zstring op, std::error_code ec) const {
    char buf[512];
    const int n = rill_conn_format_error(get(), op.c_str(), ec.value(), buf, sizeof buf);
    return n < 0 ? std::string() : std::string(buf);
  }

 private:
  const cxx_detail::conn_state *st() const noexcept { return static_cast<const D &>(*this).state(); }

  std::error_code gone() const noexcept {
    return to_error_code(st() == nullptr ? RILL_EINVAL : RILL_ECLOSED);
  }
  template <class Fn>
  std::error_code call(Fn &&fn) const noexcept {
    rill_conn *c = get();
    return c == nullptr ? gone() : to_error_code(fn(c));
  }
  std::string addr(int (*fn)(const rill_conn *, char *, std::size_t)) const {
    char buf[RILL_ADDRSTRLEN];
    const int n = get() != nullptr ? fn(get(), buf, sizeof buf) : -1;
    return n < 0 ? std::string() : std::string(buf, static_cast<std::size_t>(n));
  }

  template <class C>
  static void written_packed(rill_conn *, int status, std::size_t written, void *arg) {
    cxx_detail::unpacked<C> f(arg);
    f.get()(to_error_code(status), written);
  }
  template <class C>
  static void written_allocated(rill_conn *, int status, std::size_t written, void *arg) {
    std::unique_ptr<C> f(static_cast<C *>(arg));
    (*f)(to_error_code(status), written);
  }
};

/// A non-owning view of a connection: what callbacks get. Valid while the
/// connection's owner exists, and in any callback of the connection.
class conn_ref : public conn_ops<conn_ref> {
 public:
  conn_ref() noexcept = default;

 private:
  friend class conn;
  friend class conn_ops<conn_ref>;
  friend struct cxx_detail::conn_access;
  explicit conn_ref(cxx_detail::conn_state *s) noexcept : s_(s) {}
  const cxx_detail::conn_state *state() const noexcept { return s_; }
  cxx_detail::conn_state *s_ = nullptr;
};

namespace cxx_detail {

// Adapts a callable to a callback taking the connection first: a callable
// that takes it gets it, one that does not is wrapped to drop it.
template <class F, class... A>
decltype(auto) with_conn(F &&f) {
  if constexpr (std::is_invocable_v<std::decay_t<F> &, conn_ref, A...>) {
    return std::forward<F>(f);
  } else {
    static_assert(std::is_invocable_v<std::decay_t<F> &, A...>,
                  "rill: the callable does not accept this callback's arguments");
    return [g = std::forward<F>(f)](conn_ref, A... args) mutable -> decltype(auto) {
      return g(std::forward<A>(args)...);
    };
  }
}

}  // namespace cxx_detail

/// Owns a connection, from the accept or dial callback that hands it over
/// to its on_close. Move-only.
///
/// Callbacks (each optional; set them from the callback that hands the
/// connection over, or later; a callable may take the connection as a
/// leading rill::conn_ref, or not):
/// @code{.unparsed}
///   on_read([](conn_ref c, std::string_view data, std::error_code ec) -> std::size_t)
///     bytes (ec empty), or errc::eof, errc::timeout (read deadline; reading
///     pauses until a new deadline), or a read error. Returns the bytes
///     used (a callable returning void uses them all); unused bytes come
///     again first. Reading starts when on_read is first set.
///   on_drain(conn_ref)                       the write queue emptied
///   on_high_water(conn_ref, std::size_t)     queued bytes rose above the mark
///   on_low_water(conn_ref, std::size_t)      ... fell back to the low mark
///   on_write_error(conn_ref, std::error_code, std::size_t unsent)
///   on_close(conn_ref)                       exactly once; then is_open() is
///                                            false and every call errc::closed
/// @endcode
/// A callable must not replace itself from inside its own call.
///
/// Destroying the owner: the connection is closed gracefully (queued bytes
/// are still flushed) if it was open, and none of the callables runs again.
/// detach() instead lets the connection live on with its callables until
/// its on_close.
class conn : public conn_ops<conn> {
 public:
  conn() noexcept = default;
  /// Moves the owner; `other` is left empty. @{
  conn(conn &&other) noexcept : s_(std::exchange(other.s_, nullptr)) {}
  conn &operator=(conn &&other) noexcept {
    if (this != &other) {
      release();
      s_ = std::exchange(other.s_, nullptr);
    }
    return *this;
  }
  /// @}
  conn(const conn &) = delete;
  conn &operator=(const conn &) = delete;
  ~conn() { release(); }

  /// False for an empty (default-constructed or moved-from) owner. An owner
  /// whose connection has closed is still an owner: see is_open().
  explicit operator bool() const noexcept { return s_ != nullptr; }

  /// A view, for callables that outlive this scope; converts implicitly. @{
  conn_ref ref() const noexcept { return conn_ref(s_); }
  operator conn_ref() const noexcept { return conn_ref(s_); }  // NOLINT: a view of it
  /// @}

  /// Set the callables listed above; each returns *this, to chain them. @{

  template <class F>
  conn &on_read(F &&f) {
    if (s_ == nullptr)
      return *this;
    using C = std::decay_t<F>;
    using sv = std::string_view;
    using ec = std::error_code;
    if constexpr (std::is_invocable_v<C &, conn_ref, sv, ec>) {
      if constexpr (std::is_void_v<std::invoke_result_t<C &, conn_ref, sv, ec>>) {
        s_->on_read = [g = std::forward<F>(f)](conn_ref c, sv d, ec e) mutable -> std::size_t {
          g(c, d, e);
          return d.size();  // returning void: every byte used
        };
      } else {
        s_->on_read = std::forward<F>(f);
      }
    } else {
      static_assert(std::is_invocable_v<C &, sv, ec>,
                    "rill: on_read takes ([rill::conn_ref,] std::string_view, std::error_code)");
      if constexpr (std::is_void_v<std::invoke_result_t<C &, sv, ec>>) {
        s_->on_read = [g = std::forward<F>(f)](conn_ref, sv d, ec e) mutable -> std::size_t {
          g(d, e);
          return d.size();
        };
      } else {
        s_->on_read = [g = std::forward<F>(f)](conn_ref, sv d, ec e) mutable -> std::size_t {
          return g(d, e);
        };
      }
    }
    if (!s_->reading && s_->h != nullptr) {
      s_->reading = true;
      rill_conn_start(s_->h, &events_with_read, s_);
    }
    return *this;
  }
  template <class F>
  conn &on_drain(F &&f) {
    if (s_ != nullptr)
      s_->on_drain = cxx_detail::with_conn<F>(std::forward<F>(f));
    return *this;
  }
  template <class F>
  conn &on_high_water(F &&f) {
    if (s_ != nullptr)
      s_->on_high_water = cxx_detail::with_conn<F, std::size_t>(std::forward<F>(f));
    return *this;
  }
  template <class F>
  conn &on_low_water(F &&f) {
    if (s_ != nullptr)
      s_->on_low_water = cxx_detail::with_conn<F, std::size_t>(std::forward<F>(f));
    return *this;
  }
  template <class F>
  conn &on_write_error(F &&f) {
    if (s_ != nullptr)
      s_->on_write_error = cxx_detail::with_conn<F, std::error_code, std::size_t>(std::forward<F>(f));
    return *this;
  }
  template <class F>
  conn &on_close(F &&f) {
    if (s_ != nullptr)
      s_->on_close = cxx_detail::with_conn<F>(std::forward<F>(f));
    return *this;
  }
  /// @}

  /// Lets go of the connection without closing it: it lives on with its
  /// callables until its on_close. The owner is empty afterwards.
  void detach() noexcept {
    if (s_ == nullptr)
      return;
    cxx_detail::conn_state *s = std::exchange(s_, nullptr);
    s->owned = false;
    cxx_detail::release_if_unused(s);
  }

  /// Adopts a connected stream socket (rill_conn_from_fd); the connection
  /// owns `fd` from then on.
  static conn from_fd(base_ref base, int fd, std::error_code &ec) noexcept {
    rill_conn *c = nullptr;
    ec = to_error_code(rill_conn_from_fd(base.get(), fd, &c));
    return ec ? conn() : adopt(c, ec);
  }

 private:
  friend class conn_ops<conn>;
  friend struct cxx_detail::conn_access;
  const cxx_detail::conn_state *state() const noexcept { return s_; }

  // The connection's one allocation; the C events are set at once (without
  // on_read, so reading waits for on_read). On failure the C connection is
  // closed and `ec` says RILL_ENOMEM.
  static conn adopt(rill_conn *c, std::error_code &ec) noexcept {
    auto *s = new (std::nothrow) cxx_detail::conn_state;
    if (s == nullptr) {
      rill_conn_close_now(c);
      ec = to_error_code(RILL_ENOMEM);
      return conn();
    }
    s->h = c;
    rill_conn_start(c, &events_without_read, s);
    ec.clear();
    conn owner;
    owner.s_ = s;
    return owner;
  }

  void release() noexcept {
    if (s_ == nullptr)
      return;
    cxx_detail::conn_state *s = std::exchange(s_, nullptr);
    s->owned = false;
    s->muted = true;
    if (s->h != nullptr)
      rill_conn_close(s->h);  // RILL_ECLOSED if already closing: fine
    cxx_detail::release_if_unused(s);
  }

  static cxx_detail::conn_state *from(void *arg) noexcept {
    return static_cast<cxx_detail::conn_state *>(arg);
  }
  static std::size_t tramp_read(rill_conn *, const char *data, std::size_t len, int status,
                                void *arg) {
    cxx_detail::conn_state *s = from(arg);
    cxx_detail::dispatch guard(s);
    if (s->muted || !s->on_read)
      return len;
    const std::size_t used =
        s->on_read(conn_ref(s), std::string_view(data, len), to_error_code(status));
    return used < len ? used : len;
  }
  static void tramp_drain(rill_conn *, void *arg) {
    cxx_detail::conn_state *s = from(arg);
    cxx_detail::dispatch guard(s);
    if (!s->muted && s->on_drain)
      s->on_drain(conn_ref(s));
  }
  static void tramp_high(rill_conn *, std::size_t queued, void *arg) {
    cxx_detail::conn_state *s = from(arg);
    cxx_detail::dispatch guard(s);
    if (!s->muted && s->on_high_water)
      s->on_high_water(conn_ref(s), queued);
  }
  static void tramp_low(rill_conn *, std::size_t queued, void *arg) {
    cxx_detail::conn_state *s = from(arg);
    cxx_detail::dispatch guard(s);
    if (!s->muted && s->on_low_water)
      s->on_low_water(conn_ref(s), queued);
  }
  static void tramp_write_error(rill_conn *, int err, std::size_t unsent, void *arg) {
    cxx_detail::conn_state *s = from(arg);
    cxx_detail::dispatch guard(s);
    if (!s->muted && s->on_write_error)
      s->on_write_error(conn_ref(s), to_error_code(err), unsent);
  }
  // The handle is gone when this returns: the state forgets it first, so
  // every later call says errc::closed, even from inside the callable.
  static void tramp_close(rill_conn *, void *arg) {
    cxx_detail::conn_state *s = from(arg);
    cxx_detail::dispatch guard(s);
    s->h = nullptr;
    s->live = false;
    if (!s->muted && s->on_close)
      s->on_close(conn_ref(s));
  }

  static constexpr rill_conn_events events_with_read{&tramp_read, &tramp_drain, &tramp_high,
                                                     &tramp_low, &tramp_write_error, &tramp_close};
  static constexpr rill_conn_events events_without_read{
      nullptr, &tramp_drain, &tramp_high, &tramp_low, &tramp_write_error, &tramp_close};

  cxx_detail::conn_state *s_ = nullptr;
};

namespace cxx_detail {

struct conn_access {
  static conn adopt(rill_conn *c, std::error_code &ec) noexcept { return conn::adopt(c, ec); }
};

struct listener_state final : state_base {
  rill_listener *h = nullptr;
  callback<void(conn, std::error_code)> fn;
  static void free_handle(rill_listener *h) noexcept { rill_listener_free(h); }
};

inline void on_accept(rill_listener *, rill_conn *c, int status, void *arg) {
  auto *s = static_cast<listener_state *>(arg);
  dispatch guard(s);
  std::error_code ec = to_error_code(status);
  conn owner;
  if (c != nullptr)
    owner = conn_access::adopt(c, ec);  // closed again if the owner goes unused
  if (!s->muted)
    s->fn(std::move(owner), ec);
}

}  // namespace cxx_detail

// ---- listeners ----------------------------------------------------------------

/// Accepts connections (rill_listen) and hands each to `on_accept(conn,
/// ec)` as an owner: keep it (move it somewhere, or set its callbacks and
/// detach() it), or let it go, which closes it. An accept error comes with
/// an empty conn and the listener goes on. Closed (synchronously, no
/// callback) by close() or the destructor.
class listener : public cxx_detail::sync_owner<cxx_detail::listener_state> {
 public:
  listener() noexcept = default;

  /// The bound address ("127.0.0.1:39211"), with the kernel's port.
  std::string addr() const {
    char buf[RILL_ADDRSTRLEN];
    const int n = s_ != nullptr ? rill_listener_addr(s_->h, buf, sizeof buf) : -1;
    return n < 0 ? std::string() : std::string(buf, static_cast<std::size_t>(n));
  }
  /// The bound TCP port (0 for a Unix listener), or a negative code.
  int port() const noexcept { return s_ != nullptr ? rill_listener_port(s_->h) : RILL_EINVAL; }
  /// The listening socket, or a negative code.
  int fd() const noexcept { return s_ != nullptr ? rill_listener_fd(s_->h) : RILL_EINVAL; }
  /// Stops / resumes accepting (connections wait in the kernel's backlog
  /// meanwhile). @{
  std::error_code pause() const noexcept {
    return s_ == nullptr ? cxx_detail::invalid() : to_error_code(rill_listener_stop(s_->h));
  }
  std::error_code resume() const noexcept {
    return s_ == nullptr ? cxx_detail::invalid() : to_error_code(rill_listener_start(s_->h));
  }
  /// @}

 private:
  template <class F>
  friend listener listen(base_ref, zstring, zstring, F &&, const net_options &, std::error_code &);
};

/// Listens on `address` for `network` ("tcp", "tcp4", "tcp6", "unix").
/// The second form stores a failure in `ec` (the listener is then empty);
/// the first throws std::system_error. @{
template <class F>
listener listen(base_ref base, zstring network, zstring address, F &&on_accept,
                const net_options &options, std::error_code &ec) {
  static_assert(std::is_invocable_v<std::decay_t<F> &, conn, std::error_code>,
                "rill: on_accept takes (rill::conn, std::error_code)");
  listener l;
  l.init(std::forward<F>(on_accept),
         [&](cxx_detail::listener_state *s) {
           return rill_listen(base.get(), network.c_str(), address.c_str(), &options,
                              &cxx_detail::on_accept, s, &s->h);
         },
         ec);
  return l;
}

template <class F>
listener listen(base_ref base, zstring network, zstring address, F &&on_accept,
                const net_options &options = net_options{}) {
  std::error_code ec;
  listener l = listen(base, network, address, std::forward<F>(on_accept), options, ec);
  cxx_detail::throw_if_error(ec, "rill_listen");
  return l;
}

/// @}

}  // namespace rill

#endif  // RILL_CXX_NET_HPP
