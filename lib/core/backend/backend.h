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
//    the watcher and reports it.
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

#include <cstdint>

namespace rill::detail {

struct backend_event {
  uint64_t tag;
  unsigned events;  // RILL_READ | RILL_WRITE
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
