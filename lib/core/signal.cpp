// Signal watchers.
//
// Linux: one signalfd per base carries every signal the base watches; the
// signals are blocked in the thread that starts the first watcher so they
// queue for the descriptor instead of running their default action.
// Elsewhere: a handler writes the signal number into the base's self-pipe.
//
// The kernel delivers a signal to one reader, so a process-wide table says
// which base owns each signal; a second base asking for it gets RILL_EBUSY
// instead of silently losing deliveries.
#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <pthread.h>

#include "core/alloc.h"
#include "core/base_impl.h"

#ifdef __linux__
#include <sys/signalfd.h>
#define RILL_USE_SIGNALFD 1
#endif

using namespace rill::detail;

namespace rill::detail {

constexpr int max_signal = 65;  // signal numbers are 1 ... 64 on Linux

struct signal_state {
  int read_fd = -1;
  int write_fd = -1;  // self-pipe only
  rill_io *io = nullptr;
  int watchers[max_signal] = {};       // started watchers per signal
  bool was_blocked[max_signal] = {};   // the thread's mask before we blocked it
  vec<rill_signal *> started;          // every started watcher
  vec<rill_signal *> snapshot;         // reused while dispatching
  sigset_t mask;
};

}  // namespace rill::detail

namespace {

std::mutex owners_mutex;
rill_base *owners[max_signal];

#ifndef RILL_USE_SIGNALFD
volatile sig_atomic_t pipe_for_signal[max_signal];

void on_signal(int signum) {
  int saved = errno;
  unsigned char byte = static_cast<unsigned char>(signum);
  int fd = pipe_for_signal[signum];
  if (fd > 0)
    (void)write(fd, &byte, 1);
  errno = saved;
}
#endif

// Holds every watcher of a snapshot until the delivery ends, by return or
// by an exception from a callback.
class snapshot_hold {
 public:
  explicit snapshot_hold(vec<rill_signal *> &snapshot) noexcept : snapshot_(snapshot) {
    for (size_t i = 0; i < snapshot_.size(); i++)
      life_hold(snapshot_[i]->lifetime);
  }
  snapshot_hold(const snapshot_hold &) = delete;
  snapshot_hold &operator=(const snapshot_hold &) = delete;
  ~snapshot_hold() {
    for (size_t i = 0; i < snapshot_.size(); i++)
      handle_release(snapshot_[i]);
    snapshot_.clear();
  }

 private:
  vec<rill_signal *> &snapshot_;
};

void deliver(rill_base *base, int signum) {
  signal_state *st = base->signals;
  // Callbacks may stop or free any watcher, so walk a snapshot, holding
  // each watcher in it; freed ones stay in memory until the end and are
  // skipped.
  st->snapshot.clear();
  for (size_t i = 0; i < st->started.size(); i++)
    if (st->started[i]->signum == signum)
      st->snapshot.push(st->started[i]);
  snapshot_hold hold(st->snapshot);
  for (size_t i = 0; i < st->snapshot.size(); i++) {
    rill_signal *s = st->snapshot[i];
    if (!s->lifetime.open() || !s->active || s->signum != signum)
      continue;
    base->stats.events++;
    s->cb(s, signum, s->arg);
  }
}

void on_readable(rill_io *, int fd, unsigned, void *arg) {
  auto *base = static_cast<rill_base *>(arg);
#ifdef RILL_USE_SIGNALFD
  signalfd_siginfo info[16];
  ssize_t n;
  while ((n = read(fd, info, sizeof info)) > 0) {
    for (size_t i = 0; i < static_cast<size_t>(n) / sizeof info[0]; i++)
      deliver(base, static_cast<int>(info[i].ssi_signo));
  }
#else
  unsigned char buf[64];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    for (ssize_t i = 0; i < n; i++)
      deliver(base, buf[i]);
#endif
}

int open_state(rill_base *base) {
  if (base->signals)
    return 0;
  signal_state *st = make<signal_state>();
  if (!st)
    return RILL_ENOMEM;
  sigemptyset(&st->mask);
#ifdef RILL_USE_SIGNALFD
  st->read_fd = signalfd(-1, &st->mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (st->read_fd < 0) {
    int err = -errno;
    destroy(st);
    return err;
  }
#else
  int fds[2];
  if (pipe(fds) < 0) {
    int err = -errno;
    destroy(st);
    return err;
  }
  for (int fd : fds) {
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  st->read_fd = fds[0];
  st->write_fd = fds[1];
#endif
  int err = io_create(base, st->read_fd, on_readable, base, true, &st->io);
  if (!err)
    err = rill_io_start(st->io, RILL_READ);
  if (err) {
    rill_io_free(st->io);
    close(st->read_fd);
    if (st->write_fd >= 0)
      close(st->write_fd);
    destroy(st);
    return err;
  }
  base->signals = st;
  return 0;
}

// The first watcher of `signum` on this base: claim it process-wide and
// route it to the base.
int claim(rill_base *base, int signum) {
  signal_state *st = base->signals;
  std::lock_guard<std::mutex> lock(owners_mutex);
  if (owners[signum] && owners[signum] != base)
    return RILL_EBUSY;
#ifdef RILL_USE_SIGNALFD
  sigset_t one, old;
  sigemptyset(&one);
  sigaddset(&one, signum);
  pthread_sigmask(SIG_BLOCK, &one, &old);
  st->was_blocked[signum] = sigismember(&old, signum) == 1;
  sigaddset(&st->mask, signum);
  if (signalfd(st->read_fd, &st->mask, 0) < 0) {
    int err = -errno;
    sigdelset(&st->mask, signum);
    if (!st->was_blocked[signum])
      pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
    return err;
  }
#else
  pipe_for_signal[signum] = st->write_fd;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigfillset(&sa.sa_mask);
  if (sigaction(signum, &sa, nullptr) < 0) {
    pipe_for_signal[signum] = 0;
    return -errno;
  }
#endif
  owners[signum] = base;
  return 0;
}

// The last watcher of `signum` on this base stopped: give the signal back.
void release(rill_base *base, int signum) {
  signal_state *st = base->signals;
  std::lock_guard<std::mutex> lock(owners_mutex);
#ifdef RILL_USE_SIGNALFD
  sigdelset(&st->mask, signum);
  signalfd(st->read_fd, &st->mask, 0);
  if (!st->was_blocked[signum]) {
    // Unblocking with an instance still pending would run its default
    // action (often: terminate), so consume what is pending first.
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signum);
    timespec zero{0, 0};
    while (sigtimedwait(&one, nullptr, &zero) == signum) {
    }
    pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
  }
#else
  signal(signum, SIG_DFL);
  pipe_for_signal[signum] = 0;
#endif
  owners[signum] = nullptr;
}

int stop(rill_signal *sig) {
  if (!sig->active)
    return 0;
  rill_base *base = sig->base;
  signal_state *st = base->signals;
  handle_set_active(sig, false);
  for (size_t i = 0; i < st->started.size(); i++)
    if (st->started[i] == sig) {
      st->started[i] = st->started.back();
      st->started.pop_back();
      break;
    }
  if (--st->watchers[sig->signum] == 0)
    release(base, sig->signum);
  sig->signum = 0;
  return 0;
}

}  // namespace

namespace rill::detail {

void signals_destroy(rill_base *base) noexcept {
  signal_state *st = base->signals;
  if (!st)
    return;
  rill_io_free(st->io);
  close(st->read_fd);
  if (st->write_fd >= 0)
    close(st->write_fd);
  destroy(st);
  base->signals = nullptr;
}

}  // namespace rill::detail

extern "C" {

int rill_signal_new(rill_base *base, rill_signal_cb cb, void *arg, rill_signal **out) {
  if (!base || !cb || !out)
    return RILL_EINVAL;
  rill_signal *sig = handle_new<rill_signal>(base, false, cb, arg);
  if (!sig)
    return RILL_ENOMEM;
  *out = sig;
  return 0;
}

int rill_signal_start(rill_signal *sig, int signum) {
  if (signum <= 0 || signum >= max_signal || signum >= NSIG || signum == SIGKILL ||
      signum == SIGSTOP)
    return RILL_EINVAL;
  if (int err = handle_check(sig, handle_kind::signal))
    return err;
  if (sig->active && sig->signum == signum)
    return 0;
  rill_base *base = sig->base;
  int err = open_state(base);
  if (err)
    return err;
  if (!base->signals->started.reserve(base->signals->started.size() + 1) ||
      !base->signals->snapshot.reserve(base->signals->started.size() + 1))
    return RILL_ENOMEM;
  if (base->signals->watchers[signum] == 0) {
    err = claim(base, signum);
    if (err)
      return err;
  }
  stop(sig);
  base->signals->started.push(sig);
  base->signals->watchers[signum]++;
  sig->signum = signum;
  handle_set_active(sig, true);
  return 0;
}

int rill_signal_stop(rill_signal *sig) {
  if (int err = handle_check(sig, handle_kind::signal))
    return err;
  return stop(sig);
}

int rill_signal_signum(const rill_signal *sig) {
  return handle_check(sig, handle_kind::signal) == 0 && sig->active ? sig->signum : 0;
}

void rill_signal_free(rill_signal *sig) {
  if (handle_check(sig, handle_kind::signal) != 0)
    return;
  stop(sig);
  handle_close(sig);
}

}  // extern "C"
