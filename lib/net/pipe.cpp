// rill_pipe: two connections joined, each one's input written to the other
// (include/rill/pipe.h has the contract).
//
// Two engines move the bytes, chosen once at start:
//
//  - copy: the connections' own read and write paths. on_read hands the
//    bytes to rill_conn_write() on the other side (straight to the kernel
//    when it has room, queued otherwise); reading pauses while the writer's
//    queue is above its high-water mark and resumes on its low-water
//    report. EOF becomes rill_conn_close_write() on the other side, whose
//    drain report says when the FIN is out.
//  - splice (Linux): a kernel pipe per direction, and splice(2) from the
//    source socket into it and from it into the destination, so the bytes
//    never reach user space. The pipe takes the connections' readiness over
//    (conn_io_hook) and keeps the connections' counters and end-of-stream
//    flags true, so a connection handed back (keep_open) looks as if it had
//    done the reading and writing itself. Back-pressure is the kernel pipe:
//    full, the source is not read.
//
// splice into a socket has no MSG_NOSIGNAL: a peer gone makes the kernel
// raise SIGPIPE in the calling thread (a Unix socket at once, TCP once the
// reset was reported). rill promises never a SIGPIPE and never touches the
// process's dispositions, so the write is made with SIGPIPE blocked in this
// thread, and a SIGPIPE it raised is taken back with sigtimedwait() before
// the mask is restored. That costs two cheap system calls per splice into a
// socket, each of which moves up to a kernel pipe's worth of bytes.
//
// Lifetime (core/lifetime.h): the pipe is held by its owner until on_done
// has returned, by each connection it is attached to until it lets go of
// it (the connection's on_close, or the hand-back of keep_open), by its
// queued report, and across every dispatch into it. The end of the pipe is
// decided once (end_pipe), which detaches or closes the connections; the
// report goes through the pending queue when both are gone.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/alloc.h"
#include "net/net_impl.h"
#include "rill/pipe.h"
#include "rill/timer.h"

using namespace rill::detail;

namespace {

// One direction: bytes read from `from` go to `to`.
struct pipe_dir {
  rill_conn *from = nullptr;
  rill_conn *to = nullptr;
  uint64_t to_written_at_start = 0;
  uint64_t moved = 0;       // final count, once `to` is let go
  bool counted = false;     // `moved` is final
  bool eof = false;         // `from` reported EOF
  bool done = false;        // EOF passed on: `to` shut its write side
  bool paused = false;      // copy: reading `from` paused by back-pressure
  // splice
  int kernel_pipe[2] = {-1, -1};  // read end, write end
  size_t capacity = 0;
  size_t fill = 0;          // bytes in the kernel pipe
  bool in_blocked = false;  // splice in met EAGAIN with bytes in the pipe
};

}  // namespace

struct rill_pipe {
  rill_base *base;
  life lifetime;
  rill_conn *conn[2] = {nullptr, nullptr};  // a, b while attached
  rill_conn *handed[2] = {nullptr, nullptr};  // keep_open: given back in on_done
  pipe_dir dir[2];  // [0]: a to b, [1]: b to a
  conn_io_hook hook[2];
  bool spliced = false;
  bool keep_open = false;
  bool ended = false;
  bool report_queued = false;
  int status = 0;
  int side = RILL_PIPE_SIDE_NONE;
  const char *op = nullptr;
  char *message = nullptr;  // allocated when an error is met
  rill_pipe_cb on_done;
  void *arg;
  pending_node pending;
  rill_timer *idle_timer = nullptr;
  uint64_t idle_timeout = 0;
  uint64_t last_active = 0;
};

namespace {

void close_kernel_pipes(rill_pipe *p) {
  for (pipe_dir &d : p->dir)
    for (int &fd : d.kernel_pipe)
      if (fd >= 0) {
        socket_close(fd);
        fd = -1;
      }
}

void pipe_release(rill_pipe *p) {
  if (!life_release(p->lifetime))
    return;
  close_kernel_pipes(p);
  rill_timer_free(p->idle_timer);
  mem_free(p->message);
  destroy(p);
}

using pipe_held = held<rill_pipe, pipe_release>;

int side_of(const rill_pipe *p, const rill_conn *c) { return c == p->conn[0] ? 0 : 1; }

void touch(rill_pipe *p) {
  if (p->idle_timeout)
    p->last_active = rill_base_now(p->base);
}

uint64_t dir_bytes(const pipe_dir &d) {
  return d.counted ? d.moved : d.to->written - d.to_written_at_start;
}

// Fixes the count of the direction writing into `c`, which goes now.
void count_final(rill_pipe *p, int s) {
  pipe_dir &d = p->dir[1 - s];
  if (!d.counted) {
    d.moved = d.to->written - d.to_written_at_start;
    d.counted = true;
  }
}

void run_report(pending_node *node);

// Queues on_done once the pipe has ended and let go of both connections.
void maybe_report(rill_pipe *p) {
  if (!p->ended || p->conn[0] || p->conn[1] || p->report_queued)
    return;
  p->report_queued = true;
  life_hold(p->lifetime);
  p->pending.run = run_report;
  pending_push(p->base, &p->pending);
}

// Lets go of connection `s`: it no longer reports to the pipe.
void detach(rill_pipe *p, int s) {
  rill_conn *c = p->conn[s];
  count_final(p, s);
  if (c->rare)
    conn_set_io_hook(c, nullptr);
  c->set(conn_flag::piped, false);
  p->conn[s] = nullptr;
  pipe_release(p);  // the connection's reference (the caller holds another)
}

void set_message(rill_pipe *p, int err, rill_conn *c, const char *op) {
  constexpr size_t size = 192;
  p->message = static_cast<char *>(mem_alloc(size));
  if (!p->message)
    return;  // on_done gets "" then
  if (c && op)
    rill_conn_format_error(c, op, err, p->message, size);
  else
    std::snprintf(p->message, size, "%s", rill_strerror(err));
}

// Decides the end, once: status 0 (both directions done) or the first
// error. Closes the connections or hands them back; on_done follows when
// both are gone. Never runs a user callback itself.
void end_pipe(rill_pipe *p, int status, int side, const char *op) {
  if (p->ended)
    return;
  pipe_held hold(p);
  p->ended = true;
  p->status = status;
  p->side = side;
  p->op = op;
  if (status)
    set_message(p, status, side >= 0 ? p->conn[side] : nullptr, op);
  rill_timer_free(p->idle_timer);  // may be inside its own callback: allowed
  p->idle_timer = nullptr;
  for (int s = 0; s < 2; s++) {
    rill_conn *c = p->conn[s];
    if (c && c->rare)
      conn_set_io_hook(c, nullptr);  // back to its own paths, for the close or the user
  }
  close_kernel_pipes(p);  // bytes still in them are lost with the stream
  for (int s = 0; s < 2; s++) {
    rill_conn *c = p->conn[s];
    // One closed under the pipe lets go in its on_close, which is coming.
    if (!c || !c->lifetime.open())
      continue;  // back to its own paths, for the close or the user
    if (p->keep_open) {
      p->handed[s] = c;
      rill_conn_start(c, nullptr, nullptr);  // no events, reading stopped
      detach(p, s);
    } else if (status == 0) {
      rill_conn_close(c);  // both ways flushed: FIN, then on_close
    } else if (side == s || side == RILL_PIPE_SIDE_NONE) {
      rill_conn_close_now(c);
    } else {
      rill_conn_abort(c);  // tell its peer the stream was cut short
    }
  }
  maybe_report(p);
}

void fail(rill_pipe *p, int err, int side, const char *op) { end_pipe(p, err, side, op); }

// Direction `i` has read EOF: once every byte is out, shut the other
// side's write. Both directions done is the clean end.
void dir_check_done(rill_pipe *p, int i) {
  pipe_dir &d = p->dir[i];
  if (!d.eof || d.done || p->ended)
    return;
  if (!d.to->queue_empty() || d.fill)
    return;  // copy: the drain report comes back here; splice: the pump
  int err = rill_conn_close_write(d.to);
  if (err) {
    fail(p, err, 1 - i, "write");
    return;
  }
  if (d.to->has(conn_flag::write_shut)) {
    d.done = true;
    if (p->dir[1 - i].done)
      end_pipe(p, 0, RILL_PIPE_SIDE_NONE, nullptr);
  }
}

// ---- copy engine: the connections' own callbacks ---------------------------

size_t on_read(rill_conn *c, const char *data, size_t len, int status, void *arg) {
  auto *p = static_cast<rill_pipe *>(arg);
  pipe_held hold(p);
  int i = side_of(p, c);
  pipe_dir &d = p->dir[i];
  if (p->ended)
    return len;
  if (len) {  // status 0, or bytes still held at the end (none: all are used)
    touch(p);
    int err = rill_conn_write(d.to, data, len);
    if (err) {
      fail(p, err, 1 - i, "write");
      return len;
    }
    if (d.to->has(conn_flag::above_high) && !d.paused && status == 0) {
      d.paused = true;  // the other side's queue is full: hold this peer back
      rill_conn_read_stop(c);
    }
  }
  if (status == RILL_EOF) {
    d.eof = true;
    dir_check_done(p, i);
  } else if (status < 0) {
    fail(p, status, i, "read");
  }
  return len;
}

void on_low_water(rill_conn *c, size_t, void *arg) {
  auto *p = static_cast<rill_pipe *>(arg);
  pipe_dir &d = p->dir[1 - side_of(p, c)];
  if (d.paused && !p->ended) {
    d.paused = false;
    rill_conn_read_start(d.from);
  }
}

void on_drain(rill_conn *c, void *arg) {
  auto *p = static_cast<rill_pipe *>(arg);
  pipe_held hold(p);
  dir_check_done(p, 1 - side_of(p, c));
}

void on_write_error(rill_conn *c, int err, size_t, void *arg) {
  auto *p = static_cast<rill_pipe *>(arg);
  pipe_held hold(p);
  fail(p, err, side_of(p, c), "write");
}

void on_close(rill_conn *c, void *arg) {
  auto *p = static_cast<rill_pipe *>(arg);
  pipe_held hold(p);
  int s = side_of(p, c);
  if (!p->ended)
    fail(p, RILL_ECLOSED, s, nullptr);  // closed under the pipe by its user
  if (p->conn[s] == c)
    detach(p, s);
  maybe_report(p);
}

const rill_conn_events pipe_events = {on_read, on_drain, nullptr, on_low_water, on_write_error,
                                      on_close};

// ---- splice engine ----------------------------------------------------------

#ifdef __linux__

ssize_t splice_in(int sock, int pipe_w, size_t len) {
  ssize_t n;
  do {
    n = splice(sock, nullptr, pipe_w, nullptr, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
  } while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : n;
}

// See the opening comment: no SIGPIPE may escape.
ssize_t splice_out(int pipe_r, int sock, size_t len) {
  sigset_t sigpipe, old;
  sigemptyset(&sigpipe);
  sigaddset(&sigpipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &sigpipe, &old);
  ssize_t n;
  do {
    n = splice(pipe_r, nullptr, sock, nullptr, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
  } while (n < 0 && errno == EINTR);
  int err = n < 0 ? -errno : 0;
  // Blocked by the user already, a SIGPIPE is theirs to collect; else it
  // is the one this splice raised.
  if (err == -EPIPE && !sigismember(&old, SIGPIPE)) {
    sigset_t pending;
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
      timespec zero{};
      while (sigtimedwait(&sigpipe, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return err ? err : n;
}

bool is_again(ssize_t n) { return n == -EAGAIN || n == -EWOULDBLOCK; }

// Moves what direction `i` can move now, a bounded number of rounds so a
// fast pair cannot hold the loop (readiness is level-triggered: it comes
// back). False once the pipe ended.
bool pump(rill_pipe *p, int i) {
  pipe_dir &d = p->dir[i];
  for (int round = 0; round < 8 && !d.done; round++) {
    bool progress = false;
    if (d.fill) {
      ssize_t n = splice_out(d.kernel_pipe[0], d.to->fd, d.fill);
      if (n > 0) {
        d.fill -= static_cast<size_t>(n);
        d.to->written += static_cast<uint64_t>(n);
        d.in_blocked = false;
        progress = true;
        touch(p);
      } else if (!is_again(n)) {
        int err = n ? static_cast<int>(n) : -EPIPE;
        if (err == -EPIPE || err == -ECONNRESET)
          d.to->write_error = err;  // as the write path would have kept it
        fail(p, err, 1 - i, "write");
        return false;
      }
    }
    if (!d.eof && !d.in_blocked && d.fill < d.capacity) {
      ssize_t n = splice_in(d.from->fd, d.kernel_pipe[1], d.capacity - d.fill);
      if (n > 0) {
        d.fill += static_cast<size_t>(n);
        d.from->read_total += static_cast<uint64_t>(n);
        progress = true;
        touch(p);
      } else if (n == 0) {
        d.eof = true;
        d.from->set(conn_flag::read_finished, true);
        progress = true;
      } else if (is_again(n)) {
        // With bytes in the pipe this may be the pipe out of slots rather
        // than the socket empty: wait for the out side before reading on,
        // else a level-triggered READ would spin.
        d.in_blocked = d.fill > 0;
      } else {
        d.from->set(conn_flag::read_finished, true);
        fail(p, static_cast<int>(n), i, "read");
        return false;
      }
    }
    if (d.eof && !d.fill) {
      dir_check_done(p, i);
      return !p->ended;
    }
    if (!progress)
      break;
  }
  return true;
}

// What each connection waits for, from where its two directions stand.
void splice_update_interest(rill_pipe *p) {
  for (int s = 0; s < 2; s++) {
    rill_conn *c = p->conn[s];
    if (!c || !c->io_hook())
      continue;
    const pipe_dir &out = p->dir[s];     // c is its source
    const pipe_dir &in = p->dir[1 - s];  // c is its destination
    unsigned want = 0;
    if (!out.eof && !out.done && !out.in_blocked && out.fill < out.capacity)
      want |= RILL_READ;
    if (in.fill)
      want |= RILL_WRITE;
    p->hook[s].want = want;
    conn_update_io(c);
  }
}

void splice_on_io(rill_conn *c, unsigned events, void *arg) {
  auto *p = static_cast<rill_pipe *>(arg);
  pipe_held hold(p);
  int s = side_of(p, c);
  if ((events & RILL_READ) && !pump(p, s))
    return;
  if ((events & RILL_WRITE) && !pump(p, 1 - s))
    return;
  if (!p->ended)
    splice_update_interest(p);
}

// Both kernel pipes, or false (the pipe copies instead).
bool splice_setup(rill_pipe *p) {
  for (pipe_dir &d : p->dir) {
    if (pipe2(d.kernel_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
      return false;
    int size = fcntl(d.kernel_pipe[0], F_GETPIPE_SZ);
    d.capacity = size > 0 ? static_cast<size_t>(size) : 64 * 1024;
  }
  return true;
}

#endif  // __linux__

bool may_splice(const rill_conn *a, const rill_conn *b) {
#ifdef __linux__
  // On io_uring only a socket with no receive running or queued (it then
  // stays on readiness); never one with a transport (TLS records).
  for (const rill_conn *c : {a, b})
    if (c->held_len() || !c->queue_empty() || c->has(conn_flag::shut_write_wanted) ||
        !conn_uring_quiet(c) || c->transport())
      return false;
  return true;
#else
  (void)a;
  (void)b;
  return false;
#endif
}

// ---- idle timeout and the report ---------------------------------------------

void on_idle_timer(rill_timer *t, void *arg) {
  auto *p = static_cast<rill_pipe *>(arg);
  pipe_held hold(p);
  if (p->ended)
    return;
  uint64_t now = rill_base_now(p->base);
  uint64_t due = p->last_active + p->idle_timeout;
  if (now >= due)
    fail(p, RILL_ETIMEOUT, RILL_PIPE_SIDE_NONE, nullptr);
  else
    rill_timer_start(t, due - now, 0);  // bytes moved meanwhile
}

void run_report(pending_node *node) {
  rill_pipe *p = RILL_CONTAINER_OF(node, rill_pipe, pending);
  pipe_held hold(p);
  pipe_release(p);  // the queued report's reference; `hold` keeps p
  p->lifetime.state = life_state::closed;
  rill_pipe_result r{};
  r.status = p->status;
  r.side = p->side;
  r.op = p->op;
  r.message = p->message ? p->message : "";
  r.a_to_b = p->dir[0].moved;
  r.b_to_a = p->dir[1].moved;
  r.a = p->handed[0];
  r.b = p->handed[1];
  p->on_done(p, &r, p->arg);
  pipe_release(p);  // the owner's reference
}

int check_conn(const rill_conn *c) {
  if (!c)
    return RILL_EINVAL;
  if (!c->lifetime.open())
    return RILL_ECLOSED;
  if (c->has(conn_flag::piped))
    return RILL_EINVAL;
  if (c->has(conn_flag::write_shut) || c->has(conn_flag::shut_write_wanted) || c->write_error)
    return -EPIPE;
  return 0;
}

}  // namespace

extern "C" {

int rill_pipe_start(rill_conn *a, rill_conn *b, const rill_pipe_options *options,
                    rill_pipe_cb on_done, void *arg, rill_pipe **out) {
  if (!a || !b || a == b || !on_done || a->base != b->base)
    return RILL_EINVAL;
  int err = check_conn(a);
  if (!err)
    err = check_conn(b);
  if (err)
    return err;
  // The splice hooks live in the connections' conn_rare: made now, while
  // failing is still simple.
  if (!conn_rare_get(a) || !conn_rare_get(b))
    return RILL_ENOMEM;
  rill_pipe *p = make<rill_pipe>();
  if (!p)
    return RILL_ENOMEM;
  p->base = a->base;
  p->on_done = on_done;
  p->arg = arg;
  p->keep_open = options && options->keep_open;
  p->idle_timeout = options ? options->idle_timeout : 0;
  if (p->idle_timeout) {
    err = rill_timer_new(p->base, on_idle_timer, p, &p->idle_timer);
    if (err) {
      destroy(p);
      return err;
    }
  }
  p->conn[0] = a;
  p->conn[1] = b;
  for (int i = 0; i < 2; i++) {
    pipe_dir &d = p->dir[i];
    d.from = p->conn[i];
    d.to = p->conn[1 - i];
    d.to_written_at_start = d.to->written;
    d.eof = d.from->has(conn_flag::read_finished);  // EOF (or an error) reported before
  }
#ifdef __linux__
  if ((!options || options->splice >= 0) && may_splice(a, b)) {
    p->spliced = splice_setup(p);
  }
#endif
  // From here on nothing fails: the pipe owns both connections.
  for (int s = 0; s < 2; s++) {
    rill_conn *c = p->conn[s];
    life_hold(p->lifetime);  // the connection's reference
    c->set(conn_flag::piped, true);
    rill_conn_set_deadline(c, RILL_DEADLINE_BOTH, 0);
    rill_conn_start(c, &pipe_events, p);
    if (p->spliced) {
      conn_uring_detach(c);  // splice(2) takes the bytes from the socket itself
      p->hook[s] = conn_io_hook{nullptr, p, 0};
#ifdef __linux__
      p->hook[s].on_io = splice_on_io;
#endif
      conn_set_io_hook(c, &p->hook[s]);  // conn_rare made before the pipe (rill_pipe)
    } else {
      rill_conn_read_start(c);  // bytes held unused from before go first
    }
  }
  touch(p);
  if (p->idle_timer)
    rill_timer_start(p->idle_timer, p->idle_timeout, 0);
  for (int i = 0; i < 2; i++)
    dir_check_done(p, i);  // a direction whose EOF came before the pipe
#ifdef __linux__
  if (p->spliced && !p->ended)
    splice_update_interest(p);
#endif
  if (!p->spliced)
    close_kernel_pipes(p);  // those a failed setup made
  if (out)
    *out = p;
  return 0;
}

int rill_pipe_cancel(rill_pipe *pipe) {
  if (!pipe)
    return RILL_EINVAL;
  if (pipe->lifetime.state == life_state::closed)
    return RILL_ECLOSED;
  fail(pipe, RILL_ECANCELED, RILL_PIPE_SIDE_NONE, nullptr);
  return 0;
}

int rill_pipe_bytes(const rill_pipe *pipe, uint64_t *a_to_b, uint64_t *b_to_a) {
  if (!pipe)
    return RILL_EINVAL;
  if (a_to_b)
    *a_to_b = dir_bytes(pipe->dir[0]);
  if (b_to_a)
    *b_to_a = dir_bytes(pipe->dir[1]);
  return 0;
}

int rill_pipe_spliced(const rill_pipe *pipe) {
  if (!pipe)
    return RILL_EINVAL;
  return pipe->spliced ? 1 : 0;
}

}  // extern "C"
