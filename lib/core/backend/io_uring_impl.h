// The io_uring backend's state, shared by io_uring.cpp (the ring, polls,
// the readiness contract) and io_uring_stream.cpp (multishot receive and
// accept, the buffer ring). Nothing here leaves lib/core/backend.
#ifndef RILL_CORE_BACKEND_IO_URING_IMPL_H
#define RILL_CORE_BACKEND_IO_URING_IMPL_H

#include <linux/io_uring.h>
#include <cstddef>
#include <cstdint>

#include "core/backend/backend.h"
#include "core/vec.h"

namespace rill::detail::uring {

struct ring {
  int fd = -1;
  bool enabled = true;  // false until the first enter of an R_DISABLED ring
  uint32_t features = 0;
  void *sq_map = nullptr;
  size_t sq_map_size = 0;
  void *cq_map = nullptr;  // the same as sq_map with IORING_FEAT_SINGLE_MMAP
  size_t cq_map_size = 0;
  io_uring_sqe *sqes = nullptr;
  size_t sqes_size = 0;
  unsigned *sq_head = nullptr;
  unsigned *sq_tail = nullptr;
  unsigned sq_mask = 0;
  unsigned sq_entries = 0;
  unsigned sq_local_tail = 0;  // SQEs written; published to *sq_tail at enter
  unsigned *cq_head = nullptr;
  unsigned *cq_tail = nullptr;
  unsigned cq_mask = 0;
  io_uring_cqe *cqes = nullptr;
};

// user_data: the descriptor in the low 32 bits, then a 29-bit sequence,
// then what the request is.
// (kind_stream: a receive, kind_accept: an accept, kind_send: a send).
enum : uint64_t { kind_poll = 0, kind_stream = 1, kind_cancel = 2, kind_accept = 3, kind_send = 4 };
constexpr uint32_t seq_mask = 0x1fffffffu;
constexpr uint64_t make_user_data(uint64_t kind, int fd, uint32_t seq) {
  return (kind << 61) | (static_cast<uint64_t>(seq & seq_mask) << 32) | static_cast<uint32_t>(fd);
}
inline uint64_t user_data_kind(uint64_t ud) { return ud >> 61; }
inline uint32_t user_data_seq(uint64_t ud) { return static_cast<uint32_t>(ud >> 32) & seq_mask; }

struct fd_state {
  uint64_t tag;
  uint32_t seq;       // of the poll armed last; older completions are stale
  uint32_t op_seq;    // of the stream operation armed last
  uint32_t report_epoch;  // the wait that reported the queue last
  uint32_t head, tail;    // queued entries: index + 1 into uring_state::entries, 0: none
  int32_t send_res;   // the completed send's result, while send_done
  uint8_t want;       // RILL_READ | RILL_WRITE the base asked for
  uint8_t armed;      // the mask of the poll in flight
  stream_mode mode;
  // Bits, so that the send state costs an idle descriptor nothing (40 bytes).
  bool in_flight : 1;
  bool dirty : 1;         // listed in uring_state::dirty
  bool op_in_flight : 1;  // a multishot receive or accept
  bool op_cancelling : 1; // its cancellation is queued
  bool op_ended : 1;      // EOF or an error is queued: never armed again
  bool starved : 1;       // back on readiness for now (ENOBUFS, a refused accept)
  bool in_backlog : 1;    // listed in uring_state::backlog
  bool lost : 1;          // an entry could not be queued: the stream fails
  bool paused : 1;        // the owner wants no input (want_read)
  bool peer_gone : 1;     // the peer's FIN or reset was seen: read(2) drains the rest
  bool send_in_flight : 1;   // one IORING_OP_SEND at a time (io_uring_send.cpp)
  bool send_cancelling : 1;  // its cancellation is queued
  bool send_done : 1;        // completed; send_res waits for the owner
};
static_assert(sizeof(fd_state) <= 40, "fd_state is per descriptor: keep it small");

// What a stream operation delivered: bytes in a buffer of the ring, EOF,
// an error, or an accepted descriptor.
struct entry {
  int32_t res;
  uint32_t next;  // index + 1, 0: last
  uint32_t off;   // bytes of the buffer already taken
  uint16_t bid;
  bool has_buf;
};

// The provided-buffer ring (group 0) and the buffers behind it, in memory
// of the process's own: it outlives a ring traded for another thread.
struct buf_ring {
  io_uring_buf *slots = nullptr;  // the ring shared with the kernel
  size_t slots_size = 0;
  char *bufs = nullptr;
  size_t bufs_size = 0;
  unsigned count = 0;  // a power of two
  unsigned size = 0;
  uint16_t tail = 0;
  unsigned out = 0;         // buffers queued in entries or parked, not the kernel's
  vec<uint8_t> taken;       // per buffer: 1 while out of the kernel's hands, 2 when
                            // only sends still hold it (pins)
  vec<uint16_t> pins;       // per buffer: sends in flight from it (io_uring_send.cpp)
  vec<uint16_t> parked;     // dropped while maybe still shown: back at the next wait
  bool registered = false;
  bool failed = false;      // registration refused: receives stay on readiness
};

struct uring_state {
  ring r;
  size_t next_attempt = 0;  // index into setup_attempts for a rebuilt ring
  vec<fd_state> fds;
  vec<int> dirty;  // descriptors whose poll or operation must be armed or replaced
  // Streams (io_uring_stream.cpp).
  bool recv_ok = false;    // the kernel has multishot receive and buffer rings
  bool accept_ok = false;  // the kernel has multishot accept
  buf_ring br;
  vec<entry> entries;
  uint32_t free_entry = 0;  // index + 1 of the first free entry
  vec<int> backlog;         // descriptors with queued entries
  vec<int> starved;         // descriptors back on readiness for want of buffers
  uint32_t epoch = 0;       // bumped by every wait
  bool cancel_queued = false;  // set_mode(none) queued a cancellation not yet submitted
  bool send_ok = false;        // connections send through the ring (RILL_IO_URING_SENDS)
  bool send_alone = false;     // the last wait reported one event: send_alone() may say yes once
};

// io_uring.cpp
io_uring_sqe *get_sqe(ring &r);
int ring_enter(ring &r, unsigned min_complete, unsigned flags, __kernel_timespec *timeout);
void mark_dirty(uring_state *st, int fd);
// Makes room in st->fds and st->dirty for fd; false when out of memory.
bool fd_reserve(uring_state *st, int fd);
void submit_now(void *state);  // backend_stream_ops::submit

// io_uring_stream.cpp
void streams_probe(uring_state *st);
// Whether fd's RILL_READ interest is served by its stream operation now.
bool read_by_op(const uring_state *st, const fd_state &s);
// Queues the operation's arming or cancellation as fd's interest wants;
// false when the submission queue had no room.
bool streams_arm(uring_state *st, int fd, fd_state &s);
// Ends fd's operation now (the descriptor is about to be closed).
bool streams_cancel(uring_state *st, int fd, fd_state &s);
// Before a wait: buffers back to the kernel, starved descriptors re-armed,
// the buffer ring registered. True when a queue is ready to report (the
// wait must not block).
bool streams_before_wait(uring_state *st);
void streams_complete(uring_state *st, const io_uring_cqe &cqe);
int streams_report(uring_state *st, backend_event *out, int capacity);
// The ring was traded (another thread) or is new (fork): register the
// buffers again; queued entries of a traded ring stay valid.
void streams_ring_lost(uring_state *st, bool keep_queues);
void streams_destroy(uring_state *st);
// Note a backlog entry for fd (a queue or a send completion to report).
void backlog_add(uring_state *st, int fd, fd_state &s);
// Keeps a buffer out of the kernel's hands while a send reads it.
bool buffer_pin(uring_state *st, const char *data, size_t len, uint16_t *bid);
void buffer_unpin(uring_state *st, uint16_t bid);

// io_uring_send.cpp
void sends_probe(uring_state *st);
void sends_complete(uring_state *st, const io_uring_cqe &cqe);
// backend_stream_ops' send half.
bool sends_enabled(void *state);
int send_queue(void *state, int fd, const void *data, size_t len);
int send_reap(void *state, int fd, int *res);
void send_cancel(void *state, int fd);
bool send_alone(void *state);
bool send_pin(void *state, const void *data, size_t len, uint16_t *bid);
void send_unpin(void *state, uint16_t bid);

}  // namespace rill::detail::uring

#endif
