/** @file
 * rill — raw descriptor watchers.
 *
 * A rill_io watches one descriptor for readability and/or writability. The
 * semantics are level-triggered: while the descriptor stays ready and the
 * watcher stays started, the callback runs again on every iteration. A
 * watcher stays started until rill_io_stop() or rill_io_free(). Interest
 * changes are batched and reach the kernel once, just before the loop waits,
 * so a stop followed by a start in the same iteration costs no system call.
 *
 * A descriptor may have at most one watcher on a base. Free the watcher
 * before closing its descriptor.
 *
 * Every function taking a watcher returns RILL_EINVAL for NULL or a pointer
 * that is not a live watcher (freed, or another type of handle: see "Stale
 * handles" in rill/base.h), and RILL_ECLOSED for a watcher freed inside its
 * own callback that is still running. */
#ifndef RILL_IO_H
#define RILL_IO_H

#include "rill/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A descriptor watcher (opaque): see the top of this file. */
typedef struct rill_io rill_io;

/** Interest and readiness: rill_io_start()'s `events`, the callback's. */
enum {
  RILL_READ = 1,
  RILL_WRITE = 2
};

/** `events` is what is ready, within the interest: RILL_READ and/or
 * RILL_WRITE. An error or hang-up on the descriptor reports every direction
 * in the interest as ready, so the next read or write sees the condition. */
typedef void (*rill_io_cb)(rill_io *io, int fd, unsigned events, void *arg);

/** Creates a stopped watcher on `fd`. RILL_EBADF for a negative or closed
 * descriptor, -EPERM for a regular file or directory on a backend that
 * cannot watch them (epoll), RILL_EEXIST if the base already has a watcher on
 * `fd`, RILL_EINVAL for a NULL base, callback or out. If the kernel later
 * refuses the registration (the descriptor was closed under the watcher),
 * the watcher is stopped and its callback runs once with its whole interest,
 * so its own read or write meets the error. */
RILL_API int rill_io_new(rill_base *base, int fd, rill_io_cb cb, void *arg, rill_io **out);

/** Starts watching for `events` (RILL_READ | RILL_WRITE, not 0), replacing
 * the interest if already started. */
RILL_API int rill_io_start(rill_io *io, unsigned events);

/** Stops watching; the watcher can be started again. Stopping a stopped
 * watcher is fine. */
RILL_API int rill_io_stop(rill_io *io);

/** The interest while started, 0 while stopped. */
RILL_API unsigned rill_io_events(const rill_io *io);

/** The watched descriptor, or RILL_EINVAL / RILL_ECLOSED as above. */
RILL_API int rill_io_fd(const rill_io *io);

/** Stops and frees the watcher (the descriptor is not closed). NULL, and a
 * pointer that is not a live watcher, are no-ops. The handle must not be
 * used afterwards. */
RILL_API void rill_io_free(rill_io *io);

#ifdef __cplusplus
}
#endif

#endif /* RILL_IO_H */
