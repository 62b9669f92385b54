/* rill — signal watchers.
 *
 * Delivers signals (SIGINT, SIGTERM, SIGHUP, ...) as ordinary callbacks on
 * the base, so a daemon can shut down cleanly. Linux uses signalfd: starting
 * the first watcher for a signal blocks it in the calling thread, and the
 * last stop restores the previous mask. Start signal watchers before creating
 * threads (threads inherit the mask), or block the signals in every thread,
 * otherwise another thread may take the signal's default action. Elsewhere a
 * handler writes to a self-pipe.
 *
 * A signal is watched by at most one base in the process at a time (the
 * kernel hands each signal to one reader); several watchers on that base may
 * watch it and all run. Signals that arrive several times before the loop
 * reads them may be merged into one callback. */
#ifndef RILL_SIGNAL_H
#define RILL_SIGNAL_H

#include "rill/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rill_signal rill_signal;

typedef void (*rill_signal_cb)(rill_signal *sig, int signum, void *arg);

RILL_API int rill_signal_new(rill_base *base, rill_signal_cb cb, void *arg, rill_signal **out);

/* Starts watching `signum`. RILL_EINVAL for a signal that cannot be caught
 * (SIGKILL, SIGSTOP) or is out of range, RILL_EBUSY if another base watches
 * it. Restarting with another number switches signals. */
RILL_API int rill_signal_start(rill_signal *sig, int signum);

RILL_API int rill_signal_stop(rill_signal *sig);

/* The signal being watched, 0 when stopped. */
RILL_API int rill_signal_signum(const rill_signal *sig);

RILL_API void rill_signal_free(rill_signal *sig);

#ifdef __cplusplus
}
#endif

#endif /* RILL_SIGNAL_H */
