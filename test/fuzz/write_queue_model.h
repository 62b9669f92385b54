// The reference model of fuzz_write_queue.cpp: what the harness knows about
// one connection's write queue, the bookkeeping that keeps it in step with
// what rill reports, the connection's callbacks (each checks what it is
// told against the model) and the peer's reads. The fuzz target's file
// holds the operations and the script that drives them.
#ifndef RILL_FUZZ_WRITE_QUEUE_MODEL_H
#define RILL_FUZZ_WRITE_QUEUE_MODEL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <deque>
#include <string>
#include <vector>

#include "rill.h"

namespace wq {

constexpr size_t max_ops = 64;
constexpr size_t max_total = 256 * 1024;
constexpr size_t no_ref = SIZE_MAX;

[[noreturn]] void fail(const char *what);

inline void check(bool ok, const char *what) {
  if (!ok)
    fail(what);
}

// RILL_FUZZ_VERBOSE=1 traces every step, to read what an input does.
bool verbose();

#define TRACE(...)                                \
  do {                                            \
    if (wq::verbose()) {                          \
      fprintf(stderr, "fuzz_write_queue: ");      \
      fprintf(stderr, __VA_ARGS__);               \
      fputc('\n', stderr);                        \
    }                                             \
  } while (0)

// Reads the script; past its end every byte is 0.
struct script {
  const uint8_t *data;
  size_t size;
  size_t pos = 0;
  uint8_t byte() { return pos < size ? data[pos++] : 0; }
  bool done() const { return pos >= size; }
};

enum class drop_cause { none, cancel, in_loop };

// The errors a dropped write may report, fixed when the model sees the drop.
enum : unsigned { err_cancel = 1, err_timeout = 2, err_peer_gone = 4 };

// A queue dropped in the loop, which on_write_error must report.
struct drop {
  size_t unsent;
  unsigned errors;
};

struct ref_write {
  size_t len;
  size_t taken = 0;       // bytes the model says the kernel took
  bool resolved = false;  // left the model's queue (sent whole, or dropped)
  drop_cause dropped = drop_cause::none;
  unsigned errors = 0;    // when dropped: the errors it may complete with
  bool completed = false;
  char *buf;              // the caller's bytes, freed by the completion
  std::string expect;     // what buf must still hold
};

// A write the model still queues: bytes (copy writes) or a ref write.
struct segment {
  std::string bytes;
  size_t off = 0;
  size_t ref = no_ref;
};

enum class conn_state { open, closing, closed };

struct model {
  rill_base *base = nullptr;
  rill_conn *conn = nullptr;  // nullptr once on_close has run
  int peer = -1;
  bool in_api = false;
  uint64_t rng;

  std::string kernel;         // bytes the kernel took, in order
  std::deque<segment> queue;  // accepted, not yet taken
  size_t queued = 0;          // bytes in `queue`
  std::string received;       // what the peer read
  size_t total = 0;           // bytes accepted

  std::vector<ref_write> refs;
  size_t last_completed = no_ref;
  std::deque<drop> unreported;  // in-loop drops on_write_error owes

  conn_state state = conn_state::open;
  bool on_close_seen = false;
  bool shut_write = false;
  bool peer_closed = false;
  bool peer_eof = false;
  uint64_t deadline = 0;
  bool timed_out = false;     // an in-loop drop while a deadline was set
  bool write_failed = false;  // an in-loop drop after the peer closed

  // An operation to run inside the next callback (action and two argument
  // bytes), to call the API from where rill dispatches.
  uint8_t armed[3] = {0, 0, 0};
  bool is_armed = false;
};

// Guards an API call: a callback that runs inside it is a bug.
struct api_call {
  explicit api_call(model &m) : m_(m) { m_.in_api = true; }
  ~api_call() { m_.in_api = false; }
  model &m_;
};

// Bytes for the next write, the same for every run of one input.
std::string make_bytes(model &m, size_t len);

// Moves what the kernel took since the last look from the model's queue to
// its kernel stream, and notices a dropped queue. Valid while the
// connection lives; `cause` says what may have dropped the queue.
void sync(model &m, drop_cause cause = drop_cause::in_loop);

// Adds an accepted write to the model's queue.
void accept_bytes(model &m, std::string bytes, size_t ref);

// Whether a write made between the clock readings `before` and `after`
// (rill_time_now()) may fail with `rc`, and (*may_succeed) whether it may
// also succeed: a deadline that fell between them may go either way.
bool write_error_allowed(const model &m, int rc, uint64_t before, uint64_t after, bool *may_succeed);

// The peer reads at most `max` bytes (SIZE_MAX: until EAGAIN or EOF).
void peer_read(model &m, size_t max);

// The connection's callbacks; `arg` is the model (a ref_arg for ref writes).
struct ref_arg {
  model *m;
  size_t index;
};
void on_ref_done(rill_conn *conn, int status, size_t written, void *arg);
void on_write_error(rill_conn *conn, int err, size_t unsent, void *arg);
void on_drain(rill_conn *conn, void *arg);
void on_close(rill_conn *conn, void *arg);

// Runs the operation armed to run inside the next callback, if any (the
// fuzz target's file defines it).
void run_armed(model &m);

}  // namespace wq

#endif
