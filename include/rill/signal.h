/** @file
 * rill — signal watchers.
 *
 * Delivers signals (SIGINT, SIGTERM, SIGHUP, ...) as ordinary callbacks on
 * the base's thread, so a daemon can shut down cleanly.
 *
 * The model (libuv's). Signals are never blocked: rill installs one
 * process-wide handler (sigaction, SA_RESTART) for each signal that some
 * watcher in the process watches. It is installed when the first watcher of
 * that signal starts, on any base, and the disposition that was there before
 * (SIG_DFL, SIG_IGN or the program's own handler) is saved and put back when
 * the last watcher of that signal stops, on whatever base. While rill's
 * handler is installed the previous one does not run, and a disposition the
 * program sets in the meantime is overwritten by that restore.
 *  - Several bases may watch the same signal, and several watchers on one
 *    base: every started watcher of the signal runs, each on its own base.
 *  - Threads: the kernel may run the handler on any thread that does not
 *    block the signal. The handler only records the signal and writes to a
 *    descriptor of each watching base (async-signal-safe, no locks); the
 *    callbacks run on the bases' threads. A signal that every thread blocks
 *    waits until one unblocks it.
 *  - exec: since rill blocks nothing, a child started with fork+exec (or
 *    posix_spawn) inherits the program's own signal mask, and exec resets
 *    caught signals to their default action; so `kill -TERM` on a spawned
 *    program works as if rill were not there. A signal that was SIG_IGN
 *    before rill watched it is, in such a child, back to the default.
 *  - fork: the handler stays installed in the child. Call rill_base_reinit()
 *    (rill/base.h) in the child: its watchers then receive the child's
 *    signals only; the parent's keep receiving the parent's.
 *  - Stack switches: nothing depends on the signal mask, so a fiber switch
 *    that saves and restores a mask (the portable ucontext switch) cannot
 *    unblock or block a watched signal behind rill's back.
 *  - Coalescing: deliveries are merged until the base reads them. A burst of
 *    N signals runs each watcher at least once and at most N times; a
 *    callback does not say how many arrived.
 *  - Interrupted system calls: with SA_RESTART most are restarted, but some
 *    (sleep, poll, select and friends) still fail with EINTR in other
 *    threads or code, as with any handler. */
#ifndef RILL_SIGNAL_H
#define RILL_SIGNAL_H

#include "rill/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A signal watcher (opaque): see the top of this file. */
typedef struct rill_signal rill_signal;

/** Runs on the base's thread for each delivery of the watched `signum`. */
typedef void (*rill_signal_cb)(rill_signal *sig, int signum, void *arg);

/** Creates a stopped watcher. Returns 0, RILL_EINVAL for a NULL base,
 * callback or out, or RILL_ENOMEM. */
RILL_API int rill_signal_new(rill_base *base, rill_signal_cb cb, void *arg, rill_signal **out);

/** Starts watching `signum`. RILL_EINVAL for a signal that cannot be caught
 * (SIGKILL, SIGSTOP) or is out of range (signal numbers up to 64 are
 * accepted), RILL_ENOMEM, or the -errno of a failed sigaction() or of the
 * base's first signal descriptor (RILL_EMFILE, say). Restarting with another
 * number switches signals. Other bases watching the same signal are no
 * obstacle: each gets it. */
RILL_API int rill_signal_start(rill_signal *sig, int signum);

/** Stops watching; the watcher can be started again. */
RILL_API int rill_signal_stop(rill_signal *sig);

/** The signal being watched, 0 when stopped. */
RILL_API int rill_signal_signum(const rill_signal *sig);

/** Stops and frees the watcher. NULL, and a pointer that is not a live
 * watcher, are no-ops. */
RILL_API void rill_signal_free(rill_signal *sig);

#ifdef __cplusplus
}
#endif

#endif /* RILL_SIGNAL_H */
