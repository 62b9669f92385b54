// The contract between the base and a kernel poller.
//
// A backend watches descriptors for readiness and waits for it. It knows
// nothing about handles, timers or sockets: the base hands it an interest
// change per descriptor (old mask -> new mask, RILL_READ | RILL_WRITE) together
// with a 64-bit tag, and the backend hands tags back with what became ready.
// The base puts the descriptor and a generation number in the tag, so a
// readiness report that outlived its watcher is recognised and dropped.
//
// Rules every backend follows:
//  - change() is called only when the mask really changes, batched just
//    before wait(); old == 0 means "not registered", new == 0 "unregister".
//    A backend may be told to unregister a descriptor that was already closed
//    (ENOENT/EBADF from the kernel are then not errors).
//  - wait() blocks for at most timeout_ns (-1: no limit, 0: just poll) and
//    returns the number of events written, 0 on timeout or interruption
//    (EINTR is not an error: the base re-reads the clock and goes round), or
//    a negative errno.
//  - Error and hang-up conditions are reported as readiness in every
//    direction the descriptor was registered for.
//  - Level-triggered: a descriptor that stays ready is reported again.
//  - A failed change() leaves the kernel's interest as it was; the base stops
//    the watcher and reports it. A backend that submits changes later
//    reports a refusal with a wait, in backend_event::refused; the base
//    then takes those directions out of what it counts as registered, and
//    stops and reports the watcher the same way.
//  - reinit() is called in a child process after fork(), before anything
//    else. It gives the state kernel objects of its own and forgets every
//    registration (the base then registers its watchers again, from old ==
//    0). It must never change an inherited kernel object's registrations:
//    an epoll set is shared with the parent through the open file
//    description, and EPOLL_CTL_DEL there would silence the parent's
//    watchers. Closing the inherited descriptor is fine where the child has
//    one (closing a descriptor removes nothing while the parent holds the
//    same description).
#ifndef RILL_CORE_BACKEND_H
#define RILL_CORE_BACKEND_H

#include <cstddef>
#include <cstdint>

namespace rill::detail {

// In backend_event::events beside the directions: `refused` is set. A bit
// no watcher asks for, so the base's dispatch tests it only on the path of
// events it did not want.
constexpr unsigned backend_refused = 0x100;

struct backend_event {
  uint64_t tag;
  unsigned events;  // RILL_READ | RILL_WRITE, or backend_refused
  // Directions whose registration the kernel refused after change() had
  // said 0 (kqueue hands its changes over in batches, and learns of a
  // refusal later): the kernel does not hold them.
  unsigned refused = 0;
};

struct backend_ops {
  const char *name;
  bool watches_files;  // can watch regular files (epoll cannot)
  // Returns the backend's private state through *state, or a negative errno.
  int (*init)(void **state);
  void (*destroy)(void *state);
  int (*change)(void *state, int fd, unsigned old_events, unsigned new_events, uint64_t tag);
  int (*wait)(void *state, int64_t timeout_ns, backend_event *out, int capacity);
  // 0 or a negative errno. On failure the state is left without a kernel
  // object (later changes and waits fail, destroy() works), never with the
  // inherited one.
  int (*reinit)(void *state);
};

extern const backend_ops epoll_backend;
extern const backend_ops kqueue_backend;
extern const backend_ops poll_backend;
extern const backend_ops io_uring_backend;

// Completions for stream sockets, beside the readiness contract (only the
// io_uring backend has them; backend_streams() says nullptr elsewhere).
//
// A descriptor put in a stream mode keeps its watcher and its interest as
// before, but RILL_READ then means "keep a multishot operation running":
// a receive into the base's buffer ring (stream_mode::recv) or an accept
// (stream_mode::accept). What it delivers is queued per descriptor, and the
// descriptor is reported RILL_READ while its queue is not empty (level-
// triggered, as readiness is). The owner takes the queue's head with peek()
// and consume(). Interest without RILL_READ cancels the operation; what
// was delivered meanwhile stays queued, in order.
//
// Where the operation cannot run (no buffers left: ENOBUFS; a refused
// accept), the descriptor goes back to readiness for a while: peek() then
// says stream_readiness once the queue is empty, and the owner makes its
// own read or accept, which is in order because no operation is in flight.
enum class stream_mode : uint8_t { none, recv, accept };

// peek() results besides data (> 0), EOF (0, recv) or an accepted
// descriptor (>= 0, accept) and a negative errno (the operation's end).
constexpr int stream_empty = -0x7fff0000;      // nothing yet: wait for the next report
constexpr int stream_readiness = -0x7fff0001;  // nothing queued: make the syscall yourself

struct backend_stream_ops {
  // Puts fd in `mode`; false when the kernel lacks what it needs (the
  // descriptor then stays on readiness). stream_mode::none drops the queue
  // (buffers go back to the ring, accepted descriptors are closed) and
  // ends the operation: call it before the descriptor is closed.
  bool (*set_mode)(void *state, int fd, stream_mode mode);
  // The owner's wish for input, which may differ from the interest the
  // base leaves with the kernel (a stopped watcher is unregistered lazily):
  // without it the operation is cancelled with the next wait.
  void (*want_read)(void *state, int fd, bool on);
  // The queue's head. For recv, *data and the result give the bytes.
  int (*peek)(void *state, int fd, const char **data);
  // Takes n bytes of the head (recv) or the head itself (n == 0: an entry
  // that is not data, or an accepted descriptor now owned by the caller).
  // A buffer fully taken goes back to the ring.
  void (*consume)(void *state, int fd, size_t n);

  // Sends (io_uring_send.cpp). A descriptor in recv mode may have one
  // IORING_OP_SEND in flight, queued now and submitted with the next wait,
  // so that every send a loop iteration makes goes in its one enter. Its
  // completion is reported as RILL_WRITE (level-triggered, while the
  // interest has RILL_WRITE) until send_reap() takes it; RILL_WRITE asks for
  // no poll meanwhile. `data` must stay valid until then.
  // Whether descriptors of this base send through the ring at all.
  bool (*sends)(void *state);
  // 0, or -EBUSY (one is in flight or not yet reaped), -ENOTSUP (not in
  // recv mode: after fork, say; send yourself), -ENOMEM (no room to queue).
  int (*send)(void *state, int fd, const void *data, size_t len);
  // send_idle, send_busy, or send_reaped with the result in *res.
  int (*send_reap)(void *state, int fd, int *res);
  // Cancels the send in flight with the next wait; it completes as usual.
  void (*send_cancel)(void *state, int fd);
  // Whether the owner should send(2) a write itself, once: true when a send
  // queued now would go alone in the next enter (the last wait reported at
  // most one event, no send went into the ring since, no other write of
  // this iteration went this way), where a system call costs less than a
  // send through the ring and its completion. What send(2) does not take
  // goes through the ring as usual.
  bool (*send_alone)(void *state);
  // Pins the base's receive buffer holding [data, data + len) while a send
  // reads it (the echo case: no copy); false when it is no such buffer.
  bool (*pin)(void *state, const void *data, size_t len, uint16_t *bid);
  void (*unpin)(void *state, uint16_t bid);
  // Submits what is queued now: a send made outside a loop iteration (the
  // base is not running), and what the last iteration's callbacks queued
  // when rill_base_run() returns, go to the kernel at once, as a write(2)
  // would have.
  void (*submit)(void *state);
};
enum { send_idle = 0, send_busy = 1, send_reaped = 2 };

#ifdef RILL_HAVE_IO_URING
extern const backend_stream_ops io_uring_streams;
#endif

inline const backend_stream_ops *backend_streams(const backend_ops *ops) {
#ifdef RILL_HAVE_IO_URING
  if (ops == &io_uring_backend)
    return &io_uring_streams;
#endif
  (void)ops;
  return nullptr;
}

// The error a backend took off socket `fd` while reporting it (a negative
// errno), once, or 0. libkqueue fills an EV_EOF event's fflags by reading
// SO_ERROR, which clears it: a connect's completion that finds no error and
// no peer asks here before taking the wake-up for a spurious one.
#ifdef RILL_HAVE_KQUEUE
int kqueue_taken_socket_error(void *state, int fd);
#endif

inline int backend_taken_socket_error(const backend_ops *ops, void *state, int fd) {
#ifdef RILL_HAVE_KQUEUE
  if (ops == &kqueue_backend)
    return -kqueue_taken_socket_error(state, fd);
#endif
  (void)ops, (void)state, (void)fd;
  return 0;
}

// The backend named `name` if it is built in, else nullptr. NULL or "" gives
// the best one. "io_uring" is a wish rather than a demand: where it is not
// built in, the best one.
const backend_ops *backend_find(const char *name);

// Initialises *ops into *state. A backend the kernel may refuse at run time
// (io_uring: seccomp, kernel.io_uring_disabled, an old kernel) falls back to
// the best one, and *ops then names the backend really in use.
int backend_init(const backend_ops **ops, void **state);

}  // namespace rill::detail

#endif
