// lib/net's internal types, shared by its files.
#ifndef RILL_NET_IMPL_H
#define RILL_NET_IMPL_H

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <cstddef>
#include <cstdint>

#include "core/base_impl.h"
#include "core/lifetime.h"
#include "core/list.h"
#include "core/pending.h"
#include "core/pool.h"
#include "core/vec.h"
#include "net/read_target.h"
#include "rill/net.h"

#ifdef MSG_NOSIGNAL
#define RILL_MSG_NOSIGNAL MSG_NOSIGNAL
#else
#define RILL_MSG_NOSIGNAL 0  // macOS: SO_NOSIGPIPE is set on the socket instead
#endif

namespace rill::detail {

// rill_conn::flags.
namespace conn_flag {
enum : uint32_t {
  // Read side.
  read_wanted = 1u << 0,         // the user wants input
  read_full = 1u << 1,           // read_max bytes held unused: paused
  read_timed_out = 1u << 2,
  read_finished = 1u << 3,       // EOF or an error was reported
  redeliver = 1u << 4,           // held bytes to hand over again
  read_restarted = 1u << 5,      // read_stop then read_start during on_read
  notify_read_enomem = 1u << 6,  // keeping bytes failed; on_read must hear it
  piped = 1u << 7,               // joined by a rill_pipe (pipe.cpp)
  read_target = 1u << 31,        // `arg` lends a buffer to read into (conn_read_target)
  // Write side.
  write_shut = 1u << 8,
  shut_write_wanted = 1u << 9,   // rill_conn_close_write once flushed
  write_timed_out = 1u << 10,
  above_high = 1u << 11,
  // Reports waiting for the loop.
  notify_drain = 1u << 12,
  notify_high = 1u << 13,
  notify_low = 1u << 14,
  // Closing.
  graceful = 1u << 15,           // rill_conn_close: discard unread input, then FIN
  report_queued = 1u << 16,      // the pending node is queued (and holds a ref)
  uring_recv = 1u << 17,         // input comes in io_uring completions (conn_uring.cpp)
  aborted = 1u << 18,            // no goodbye (close_notify): rill_conn_abort (which also resets),
                                 // or the facade's Close cutting a write short
  uring_send = 1u << 19,         // writes go as io_uring sends (conn_write_uring.cpp)
  // Which of conn_rare's fields that every message asks about are set,
  // mirrored here by their only writers (the conn_set_* helpers below and
  // rill_conn_set_deadline): a connection without them pays a test of
  // these bits, which the paths load anyway, instead of loads of c->rare
  // and of the field (issue 12: with a plain socket's send and read(2)
  // building no iovec, 444 -> 430 user instructions per echo round trip,
  // callgrind). Set only while conn_rare exists.
  has_transport = 1u << 20,       // rare->transport (lib/tls)
  has_io_hook = 1u << 21,         // rare->io_hook (pipe.cpp, a TLS handshake)
  has_read_deadline = 1u << 22,   // rare->read_deadline is not 0
  has_write_deadline = 1u << 23,  // rare->write_deadline is not 0
  has_held_buffer = 1u << 24,     // rare->held (conn_read.cpp); held_len is 0 without it
};
}  // namespace conn_flag

enum class net_kind : uint8_t { tcp, tcp4, tcp6, unix_stream };

inline bool is_tcp(net_kind k) { return k != net_kind::unix_stream; }
inline const char *network_name(net_kind k) { return is_tcp(k) ? "tcp" : "unix"; }

// addr.cpp
int parse_network(const char *network, net_kind *out);
int split_host_port(const char *address, char *host, size_t host_size, char *zone, size_t zone_size,
                    int *port);
int parse_address(net_kind kind, const char *address, sockaddr_storage *out, socklen_t *len);
int format_address(const sockaddr *sa, socklen_t len, char *buf, size_t size);

// socket.cpp: creating sockets and setting options the Go way.
bool ipv6_available();
// socket() with SOCK_NONBLOCK|SOCK_CLOEXEC, or the fallback (G1).
int socket_open(int family, int type);
// accept4() with the same flags, or the fallback (G1); the peer's address
// into *peer, *peer_len (0 when the kernel gave none).
int socket_accept(int listen_fd, sockaddr_storage *peer, socklen_t *peer_len);
// Go's defaults for a new TCP connection (G2).
int socket_apply_tcp_defaults(int fd, const rill_socket_config *opts);
// The same, saying whether every option took (0) or the first error.
int socket_set_tcp_defaults(int fd, const rill_socket_config *opts);
int socket_set_no_delay(int fd, bool on);
int socket_set_keep_alive(int fd, bool on, uint64_t period);
int socket_listen_backlog();
// Closes a descriptor once: retrying on EINTR could close a reused number.
void socket_close(int fd);

// Per-base state of lib/net: one read buffer shared by every connection and
// a pool of write requests.
struct write_req {
  list_node link;  // on the connection's queue, then on its list to report
  const char *data;
  size_t len;
  size_t offset;  // bytes already taken by the kernel
  char *owned;    // the copy rill_conn_write made, or nullptr for a ref write
  rill_write_cb done;
  void *arg;
  int status;
  // io_uring sends: the copy's size (later writes append while it has room),
  // the receive buffer pinned instead of a copy (its number + 1, 0: none).
  uint32_t cap;
  uint32_t pin;
};

// The copies io_uring sends read (conn_write_uring.cpp), kept for reuse by
// size (1 KiB << k, up to 64 KiB), so that steady state allocates nothing.
struct copy_cache {
  static constexpr size_t smallest = 1024;
  static constexpr int classes = 7;
  static constexpr size_t max_cached = 8u << 20;  // bytes kept; more go back
  struct node {
    node *next;
  };
  node *free[classes] = {};
  size_t cached = 0;
  copy_cache() = default;
  copy_cache(const copy_cache &) = delete;
  copy_cache &operator=(const copy_cache &) = delete;
  ~copy_cache();
};

// What rill_conn_start and the creating call's rill_socket_config set, in
// one block that the base interns (conn_settings_table): the connections
// of a listener share one, so each holds a pointer instead of a 48-byte
// callback table and three sizes (issue 12: idle memory). Counted: the
// last connection to let it go leaves it to the table, which keeps a few
// unused ones. Read through the connection's pointer on every use, so a
// callback may restart the connection with another table.
struct conn_settings {
  // The key: hashed and compared as bytes (conn_settings.cpp asserts that
  // none is padding).
  rill_conn_events events;
  // conn_create clamps these to 32 bits; read_max is at least 1.
  uint32_t read_max;
  uint32_t high_water;
  uint32_t low_water;
  uint32_t read_room;  // what one read asks for: read_max, at most the shared buffer
  // The table's.
  uint32_t refs = 0;      // connections using it
  uint32_t hash = 0;      // of the key
  list_node unused_link;  // on the table's unused list while refs is 0
};

// The distinct conn_settings of a base's connections (conn_settings.cpp):
// a hash table of the blocks, found in one probe per lookup, and the
// unused ones, a few kept for the next connection, oldest evicted first.
class conn_settings_table {
 public:
  conn_settings_table() = default;
  conn_settings_table(const conn_settings_table &) = delete;
  conn_settings_table &operator=(const conn_settings_table &) = delete;
  ~conn_settings_table();

  // The block equal to `want`, one more connection's; nullptr when a new
  // one cannot be made (out of memory).
  const conn_settings *intern(const conn_settings &want);
  // One connection fewer uses `s`.
  void release(const conn_settings *s);

 private:
  conn_settings *find(const conn_settings &want, uint32_t hash) const;
  void place(conn_settings *s);
  bool reserve_one();
  void erase(const conn_settings *s);

  conn_settings **slots_ = nullptr;  // open addressing, linear probing
  size_t capacity_ = 0;              // a power of two, or 0
  size_t count_ = 0;
  list unused_;  // least recently let go first
  size_t unused_count_ = 0;
};

// A connection's write queue: requests in order, and their unsent bytes.
// A block of its own, from the base's pool, made by the first write the
// kernel does not take at once and kept until the connection is freed, so
// an idle connection carries a pointer and steady state allocates nothing
// (on io_uring most writes queue: a connection that wrote has one). A ref
// write reserves a block before it tries the kernel (it may not fail after
// the kernel took bytes), but takes it only if it must queue: the base
// keeps one reserved block for the next (net_state::queue_reserved).
// Until then the connection points at a shared empty queue (no_queue),
// which is never written to, so the tests made on every message ("is
// anything queued?") need no null check.
struct conn_queue {
  list reqs;
  size_t bytes = 0;
};

// The shared empty queue of connections that never queued (conn.cpp).
extern conn_queue no_queue;

struct net_state {
  static constexpr size_t read_buffer_size = 64 * 1024;
  char read_buffer[read_buffer_size];
  handle_pool write_reqs{sizeof(write_req)};
  copy_cache copies;

  // Emptied held buffers too large for their connection to keep
  // (conn_read.cpp), kept for whichever connection next needs one: a
  // framing reader of large records allocates nothing per message, and
  // an idle connection still holds no large buffer. Bounded in count and
  // bytes; what does not fit is freed.
  struct spare_buffer {
    char *data;
    size_t cap;
  };
  static constexpr int spares_max = 4;
  static constexpr size_t spare_bytes_max = 256 * 1024;
  spare_buffer spares[spares_max]{};
  int spare_count = 0;
  size_t spare_bytes = 0;

  // The distinct conn_settings of this base's connections: a server has
  // a handful, a program that gives each connection its own sizes many.
  conn_settings_table settings;
  // The side blocks of connections that queued a write (conn_queue), and
  // one taken from the pool ahead of need (conn_queue_reserve), or nullptr.
  handle_pool queues{sizeof(conn_queue)};
  void *queue_reserved = nullptr;

  net_state() = default;
  net_state(const net_state &) = delete;
  net_state &operator=(const net_state &) = delete;
  ~net_state();
};

net_state *net_create(rill_base *base);  // nullptr when out of memory
// Inline: every read asks for the shared buffer.
inline net_state *net_get(rill_base *base) {
  return base->net ? static_cast<net_state *>(base->net) : net_create(base);
}

constexpr size_t default_read_max = 64 * 1024;
constexpr size_t default_high_water = 1024 * 1024;
constexpr uint64_t default_keep_alive_period = 15 * RILL_SEC;

// Takes a connection's readiness over (lib/net/pipe.cpp, which moves bytes
// with splice(2) under the connection's feet): while set, the io watcher's
// events go to `on_io` instead of the read and write paths, and its
// interest is `want`.
struct conn_io_hook {
  void (*on_io)(rill_conn *c, unsigned events, void *arg);
  void *arg;
  unsigned want;
};

// Moves a connection's bytes through a layer instead of straight through
// the socket (lib/tls: records under the plaintext the user sees). The read
// and write paths call these where they would call readv/sendmsg/shutdown,
// with the same contract: a count, or -1 with errno set (EAGAIN: wait for
// readiness). `writev` reports a byte as taken once the layer has it (the
// caller's buffer is free again); what carries it may still wait in the
// layer, and `pending` says so: write interest stays on while it does,
// `writev` with no bytes (count 0) flushes it, and drain, a graceful close
// and the write deadline wait for it as for the queue. `shutdown_write`
// sends its FIN behind it. `reading` runs when read interest comes back: the
// layer may hold input the socket no longer signals, and must then arrange
// a read itself. `end` runs before the socket is closed (goodbye: every
// close but an abort or a broken connection, as Go's Close sends
// close_notify), `destroy` when the connection is freed.
struct conn_transport {
  ssize_t (*readv)(rill_conn *c, const iovec *iov, int count);
  ssize_t (*writev)(rill_conn *c, const iovec *iov, int count);
  int (*shutdown_write)(rill_conn *c);
  void (*reading)(rill_conn *c);
  void (*end)(rill_conn *c, bool goodbye);
  void (*destroy)(rill_conn *c);
  bool (*pending)(const rill_conn *c);  // bytes taken and not yet in the kernel
  // A graceful close found the write side drained: the layer writes its
  // last bytes (TLS's close_notify), which the close then waits for.
  void (*closing)(rill_conn *c);
};

}  // namespace rill::detail

namespace rill::detail {

// What few connections need, out of line so that an idle connection does
// not carry it (issue 12: idle memory). Allocated by the first use that
// needs it: a deadline, a ref write, a queued write, a splicing pipe, bytes
// on_read left unused; kept until the connection is freed, so steady state
// does not allocate. The deadlines, io_hook, transport and held are written
// only where their conn_flag::has_* bit is kept with them (conn_set_*).
struct conn_rare {
  // Deadlines, absolute on the base clock in ns; 0: none.
  rill_timer *deadline_timer = nullptr;  // created by the first deadline
  uint64_t read_deadline = 0;
  uint64_t write_deadline = 0;
  uint64_t timer_due = 0;  // when deadline_timer fires, 0 if stopped
  conn_io_hook *io_hook = nullptr;  // pipe.cpp's splice, else none
  const conn_transport *transport = nullptr;  // lib/tls, else the socket itself
  void *transport_state = nullptr;
  list done;  // ref writes done and not yet reported
  // Bytes the user left unused (conn_read.cpp): a connection that always
  // uses all it is shown never makes this struct for them.
  char *held = nullptr;
  uint32_t held_len = 0;
  uint32_t held_cap = 0;
  // on_write_error's report waiting for the loop (only a queued write fails
  // from the loop, and queueing made this struct).
  size_t notify_unsent = 0;
  int notify_write_error = 0;
};

}  // namespace rill::detail

// A connection follows core/lifetime.h: OPEN until the user's close, abort
// or close_now, CLOSING while it flushes and until on_close is delivered,
// CLOSED from on_close on. The owner's reference goes after on_close; a
// queued report and every dispatch of a callback hold one more.
// An idle connection's size matters (thousands of them per base): fields
// are ordered so that little pads, what few connections use is in
// conn_rare, the write queue is a block of its own (conn_queue), the
// callback table and sizes are shared (conn_settings), and the io watcher
// is embedded and carries nothing (io_watch_fn). 104 bytes, and with two
// IPv4 addresses and malloc's header a 128-byte block.
struct rill_conn {
  rill_base *base;
  int fd;  // -1 once the socket is closed (the close report is then queued)

  // The connection's state bits (rill::detail::conn_flag), in one word so
  // that the tests made on every message ("may it read?", "may it write?")
  // are one mask each.
  uint32_t flags = 0;
  bool has(uint32_t flag) const { return (flags & flag) != 0; }
  void set(uint32_t flag, bool on) { flags = on ? flags | flag : flags & ~flag; }

  rill::detail::life lifetime;
  rill::detail::net_kind kind;
  int16_t write_error = 0;  // sticky: -EPIPE, -ECONNRESET ... (every code fits 16 bits)
  // 4 bytes free here (padding).

  // The callback table and sizes, shared (conn_settings); never null.
  const rill::detail::conn_settings *settings;
  void *arg = nullptr;  // the user's; a conn_read_target while read_target is set (read_target.h)
  rill::detail::conn_rare *rare = nullptr;  // see conn_rare; nullptr until needed
  uint64_t read_total = 0;    // bytes taken from the kernel (rill_conn_bytes_read)

  // Write side: the queue (&no_queue until a write queues) and the bytes
  // that went out.
  rill::detail::conn_queue *queue = &rill::detail::no_queue;
  uint64_t written = 0;

  rill::detail::pending_node pending;  // reports waiting for the loop

  const rill_conn_events *events() const { return &settings->events; }
  // Clamped to 32 bits, which also bounds the held bytes (by read_max).
  uint32_t read_max() const { return settings->read_max; }
  uint32_t read_room() const { return settings->read_room; }
  uint32_t high_water() const { return settings->high_water; }
  uint32_t low_water() const { return settings->low_water; }
  bool queue_empty() const { return queue->reqs.empty(); }
  size_t queued() const { return queue->bytes; }

  // The addresses follow this struct in its own allocation (conn.cpp):
  // error texts need them after a reset or the close, when the kernel no
  // longer tells, so they are kept from creation on, in binary (14
  // bytes for IPv4), and formatted when asked for.
  const unsigned char *addrs() const { return reinterpret_cast<const unsigned char *>(this + 1); }

  // conn_rare's fields, through the bits that say they are set (conn_flag::
  // has_*): deadlines are 0 when there is none.
  uint64_t read_deadline() const {
    return has(rill::detail::conn_flag::has_read_deadline) ? rare->read_deadline : 0;
  }
  uint64_t write_deadline() const {
    return has(rill::detail::conn_flag::has_write_deadline) ? rare->write_deadline : 0;
  }
  rill::detail::conn_io_hook *io_hook() const {
    return has(rill::detail::conn_flag::has_io_hook) ? rare->io_hook : nullptr;
  }
  const rill::detail::conn_transport *transport() const {
    return has(rill::detail::conn_flag::has_transport) ? rare->transport : nullptr;
  }
  // Bytes the user left unused (none without a held buffer).
  const char *held() const { return has(rill::detail::conn_flag::has_held_buffer) ? rare->held : nullptr; }
  uint32_t held_len() const { return has(rill::detail::conn_flag::has_held_buffer) ? rare->held_len : 0; }
};

// The idle-memory budget above (issue 12): with the 14 bytes of two IPv4
// addresses and malloc's 8-byte header, 104 bytes fill a 128-byte block
// with 2 to spare; one more field costs every connection 16 bytes. Put
// what a new feature needs in conn_rare, in the 4 bytes of padding after
// write_error, or in spare flag bits.
static_assert(sizeof(void *) != 8 || sizeof(rill_conn) <= 104, "rill_conn outgrew its 128-byte block");

namespace rill::detail {

// conn_settings.cpp: the base's conn_settings_table.
// nullptr when out of memory.
const conn_settings *conn_settings_intern(rill_base *base, const conn_settings &want);
void conn_settings_release(rill_base *base, const conn_settings *s);

// conn.cpp
// The connection's conn_rare, made on first use; nullptr when out of memory.
conn_rare *conn_rare_get(rill_conn *c);

// The only writers of the conn_rare fields that conn_flag::has_* mirror
// (the deadlines' is rill_conn_set_deadline). The connection has its
// conn_rare already; nullptr clears.
inline void conn_set_transport(rill_conn *c, const conn_transport *t, void *state) {
  c->rare->transport = t;
  c->rare->transport_state = state;
  c->set(conn_flag::has_transport, t != nullptr);
}
inline void conn_set_io_hook(rill_conn *c, conn_io_hook *hook) {
  c->rare->io_hook = hook;
  c->set(conn_flag::has_io_hook, hook != nullptr);
}
// The held buffer, `cap` bytes of room (its length is set apart).
inline void conn_set_held_buffer(rill_conn *c, char *data, uint32_t cap) {
  c->rare->held = data;
  c->rare->held_cap = cap;
  c->set(conn_flag::has_held_buffer, data != nullptr);
}
// The connection's own write queue, made on first use (until then it
// points at no_queue); nullptr when out of memory.
conn_queue *conn_queue_get(rill_conn *c);
// Makes sure the next conn_queue_get of `c` cannot fail, without making
// the queue yet; false when out of memory.
bool conn_queue_reserve(rill_conn *c);
// The addresses as text into buf ("" when unknown): the length, or
// RILL_EINVAL when it does not fit (as rill_conn_local_addr says).
int conn_local_addr(const rill_conn *c, char *buf, size_t size);
int conn_remote_addr(const rill_conn *c, char *buf, size_t size);
// Addresses the creator of a connection already knows (accept4 says the
// peer's; a listener bound to one address knows the local one), so that
// conn_create asks the kernel only for the others (null: unknown).
struct conn_addrs {
  const sockaddr_storage *local = nullptr;
  socklen_t local_len = 0;
  const sockaddr_storage *remote = nullptr;
  socklen_t remote_len = 0;
};
int conn_create(rill_base *base, int fd, net_kind kind, const rill_socket_config *opts,
                rill_conn **out, const conn_addrs *known = nullptr);
// Tells the io watcher `want` (conn_update_io found it changed).
void conn_set_interest(rill_conn *c, unsigned want);
void conn_notify(rill_conn *c);  // queue the pending report
void conn_finish_close(rill_conn *c);
inline int conn_check_open(const rill_conn *c) {
  if (!c)
    return RILL_EINVAL;
  return c->lifetime.open() ? 0 : RILL_ECLOSED;
}
inline bool conn_fd_closed(const rill_conn *c) { return c->fd < 0; }
// Input is wanted and may be read now: one mask, on every message.
inline bool conn_may_read(const rill_conn *c) {
  using namespace conn_flag;
  return (c->flags & (read_wanted | read_full | read_timed_out | read_finished)) == read_wanted;
}
// Drops a reference; the last one frees the connection (conn_free).
void conn_free(rill_conn *c);
inline void conn_release(rill_conn *c) {
  if (life_release(c->lifetime))
    conn_free(c);
}
// Holds the connection across a dispatch of its callbacks.
using conn_held = held<rill_conn, conn_release>;

// Whether the transport (lib/tls) holds bytes it took that have not reached
// the kernel yet: the write side is not drained while it does. Not after
// the write side broke or timed out: nothing more will be sent.
inline bool conn_out_pending(const rill_conn *c) {
  const conn_transport *t = c->transport();
  return t && !c->write_error && !c->has(conn_flag::write_timed_out) && t->pending(c);
}

// A graceful close with the write side drained: whether the transport's
// last bytes (conn_transport::closing) now wait for writability too.
inline bool conn_transport_closing(rill_conn *c) {
  const conn_transport *t = c->transport();
  if (!t)
    return false;
  t->closing(c);
  return conn_out_pending(c);
}

// What the io watcher should wait for, told to it only when that changes:
// it rarely does (an echo reads, writes and reads again), and this runs
// after every read, so it is inline and the common case makes no call.
inline void conn_update_io(rill_conn *c) {
  if (conn_fd_closed(c))
    return;
  unsigned want = 0;
  conn_io_hook *hook = c->io_hook();
  if (hook && c->lifetime.open()) {
    want = hook->want;
  } else {
    if (conn_may_read(c) && c->lifetime.open())
      want |= RILL_READ;
    if (!c->queue_empty() || conn_out_pending(c))
      want |= RILL_WRITE;
  }
  if (want != io_watch_want(c->base, c->fd))
    conn_set_interest(c, want);
}

// The socket calls of the read and write paths, through the connection's
// transport when it has one (conn_transport); errors as the calls give
// them. Inline: a plain socket pays one test of its flags. (A single
// send is conn_write.cpp's send_some.)
inline ssize_t conn_sys_readv(rill_conn *c, const iovec *iov, int count) {
  if (const conn_transport *t = c->transport())
    return t->readv(c, iov, count);
  return readv(c->fd, iov, count);  // one buffer is conn_sys_read's
}
// One buffer: the iovec is made only for a transport (the common read(2)
// then keeps its arguments in registers).
inline ssize_t conn_sys_read(rill_conn *c, void *dst, size_t len) {
  if (const conn_transport *t = c->transport()) {
    iovec iov{dst, len};
    return t->readv(c, &iov, 1);
  }
  return read(c->fd, dst, len);
}
inline ssize_t conn_sys_writev(rill_conn *c, const iovec *iov, int count) {
  if (const conn_transport *t = c->transport())
    return t->writev(c, iov, count);
  msghdr msg{};
  msg.msg_iov = const_cast<iovec *>(iov);
  msg.msg_iovlen = count;
  return sendmsg(c->fd, &msg, RILL_MSG_NOSIGNAL);
}
inline int conn_sys_shutdown_write(rill_conn *c) {
  if (const conn_transport *t = c->transport())
    return t->shutdown_write(c);
  return shutdown(c->fd, SHUT_WR);
}

// Where conn_on_readable() reads: the lent buffer, or the shared one.
// A lent buffer is never empty: a read of 0 bytes would look like EOF.
inline char *conn_read_dst(rill_conn *c, char *shared, size_t *room) {
  if (c->has(conn_flag::read_target)) {
    auto *t = static_cast<conn_read_target *>(c->arg);
    if (t->cap) {
      // The wake status carries the count as an int (lib/fiber).
      constexpr size_t most = size_t{1} << 30;
      *room = t->cap < most ? t->cap : most;
      return t->buf;
    }
  }
  return shared;
}

// conn_read.cpp
// The connection's readiness (its io watcher's io_watch_fn).
void conn_on_io(void *owner, unsigned events);
void conn_on_readable(rill_conn *c);
void conn_redeliver(rill_conn *c);
void conn_release_held(rill_conn *c);
// Makes room for `need` held bytes; false when out of memory.
bool conn_reserve_held(rill_conn *c, size_t need);
// Shows `len` bytes to the user; returns how many it used.
inline size_t conn_show(rill_conn *c, const char *data, size_t len) {
  c->flags &= ~conn_flag::read_restarted;
  return c->events()->on_read(c, data, len, 0, c->arg);
}
// Keeps what on_read left of the `len` bytes it was shown (`used` of them).
void conn_keep_unused(rill_conn *c, const char *data, size_t len, size_t used, bool data_is_held);
// Shows `len` bytes to the user and keeps what it leaves.
void conn_deliver(rill_conn *c, const char *data, size_t len, bool data_is_held);
// The stream ended (RILL_EOF) or failed: on_read hears it once.
void conn_finish_read(rill_conn *c, int status);

// conn_uring.cpp: the read side on an io_uring base (multishot receive).
// Puts a new connection's socket in receive mode where the base can.
void conn_uring_attach(rill_conn *c);
// Before the socket is closed: drops what was received and not shown.
void conn_uring_detach(rill_conn *c);
// The connection's wish for input changed: the receive is cancelled at
// once when it goes (a stopped watcher keeps its kernel interest until an
// event shows up, and a receive would take the bytes meanwhile).
void conn_uring_want(rill_conn *c, bool read);
// True when no receive runs and nothing it brought waits (or the socket is
// not in receive mode): the socket's bytes are all still in the kernel.
bool conn_uring_quiet(const rill_conn *c);
// Hands over what the receive brought; false when it is not running and
// the caller must read(2) itself.
bool conn_uring_on_readable(rill_conn *c);

// listener_uring.cpp: a listener's multishot accept on an io_uring base.
bool listener_uring_attach(rill_base *base, int fd);  // false: accept4() on readiness
void listener_uring_detach(rill_base *base, int fd);  // closes what was accepted and not taken
void listener_uring_want(rill_base *base, int fd, bool on);
// An accepted descriptor, -EAGAIN when none waits, or a negative errno.
int listener_uring_accept(rill_base *base, int fd, sockaddr_storage *peer, socklen_t *peer_len);

// conn_write.cpp
void conn_on_writable(rill_conn *c);
// What conn_write_uring.cpp shares with the queue's own code.
void conn_enqueue(rill_conn *c, write_req *r);
void conn_release_req(rill_conn *c, write_req *r);
void conn_after_progress(rill_conn *c);
write_req *conn_new_req(rill_conn *c, const char *data, size_t len, size_t taken);
inline write_req *conn_req_of(list_node *n) { return n ? RILL_CONTAINER_OF(n, write_req, link) : nullptr; }

// conn_write_uring.cpp: writes as io_uring sends, batched per loop
// iteration (a connection with uring_send set).
int conn_uring_write(rill_conn *c, const char *data, size_t len);
// Sends the queue's head if none is in flight (`idle`: the caller knows
// none is, so a head that failed meanwhile can go).
void conn_uring_kick(rill_conn *c, bool idle);
// A send completed (or a poll stood in): false when the connection fell
// back to writing itself.
bool conn_uring_on_writable(rill_conn *c);
// Before the queue is dropped: takes a completed send's bytes into
// account; true when a send is still in flight (its head must stay).
bool conn_uring_settle(rill_conn *c);
void conn_uring_send_cancel(rill_conn *c);
// A copy's buffer back to the cache (`cap` as the cache gave it).
void conn_uring_copy_free(rill_conn *c, char *p, size_t cap);
// Drops the queue: ref writes complete with `err`, and on_write_error
// reports `report` (0: say nothing).
void conn_fail_queue(rill_conn *c, int err, int report);
void conn_report_writes(rill_conn *c);

// deadline.cpp
void conn_deadline_update(rill_conn *c);
// Go checks the read deadline before it reads (G16): true when it has
// passed, and then on_read has heard RILL_ETIMEOUT instead of any data.
// Inline, because every read asks and most connections have no deadline.
bool conn_read_deadline_check(rill_conn *c);
inline bool conn_read_deadline_expired(rill_conn *c) {
  return c->has(conn_flag::has_read_deadline) && conn_read_deadline_check(c);
}

}  // namespace rill::detail

#endif
