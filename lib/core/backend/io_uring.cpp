// The io_uring backend (Linux 5.11 and later): readiness through poll
// requests on a ring, behind the same contract as epoll (backend.h).
//
// Each watched descriptor has at most one single-shot IORING_OP_POLL_ADD in
// flight. When it completes, the descriptor is reported and a new poll is
// queued for the next wait, which makes the reports level-triggered: a
// descriptor that is still ready completes its new poll at once. Interest
// changes and re-arms become SQEs that go to the kernel in the same
// io_uring_enter that waits, so a busy loop makes one system call per
// iteration. A stopped watcher needs no removal at all when its poll has
// already completed, which is when the base drops unwanted interest.
//
// The ring is driven through the kernel's interface directly (setup, two
// mmaps, enter, register), not through liburing: the backend needs a few
// dozen lines of it, and users who link librill.a then need no -luring.
//
// Quirks it works around:
//  - A poll request holds a reference to the file. A descriptor closed
//    while its poll is in flight stays open in the kernel (a socket sends
//    no FIN) until the poll is removed. So an unregistration removes the
//    poll at once, in its own enter, rather than with the next wait: the
//    caller is usually about to close the descriptor.
//  - Completions are matched by user_data, which carries the descriptor
//    and a per-descriptor arm sequence. A completion of a poll that was
//    removed or replaced (its removal raced with readiness, or it ended
//    with -ECANCELED) has an old sequence and is dropped.
//  - IORING_SETUP_SINGLE_ISSUER and DEFER_TASKRUN (6.1) make the kernel
//    cheaper but tie the ring to one task, which then alone may submit or
//    wait (-EEXIST otherwise). A rill base may be created on one thread and
//    run on another, so the ring starts disabled (R_DISABLED) and is
//    enabled by the first enter, which makes that task its owner. A base
//    later driven from yet another thread meets -EEXIST: it then trades
//    the ring for one without those flags and arms every poll again.
//  - With DEFER_TASKRUN, completions (a removed poll's too, which is what
//    drops its file reference) are only processed inside an enter that asks
//    for events; every enter here asks for them.
//  - After fork() the ring is shared with the parent through the mapped
//    memory and the file. reinit() unmaps and closes it without writing a
//    single SQE, then builds a ring of the child's own.
//  - Kernels without IORING_FEAT_EXT_ARG (before 5.11) cannot take a
//    timeout with the wait: init() refuses them (-ENOSYS), and the base
//    falls back to epoll as it does when io_uring is refused outright
//    (seccomp's EPERM, ENOSYS, kernel.io_uring_disabled).
#include <linux/io_uring.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "core/alloc.h"
#include "core/backend/backend.h"
#include "core/backend/io_uring_impl.h"
#include "core/vec.h"
#include "rill/io.h"

namespace rill::detail {
namespace uring {
namespace {

constexpr unsigned sq_entries_wanted = 256;
// Every watched descriptor may complete in one iteration; past this the
// kernel keeps the overflow (IORING_FEAT_NODROP) until the ring has room.
constexpr unsigned cq_entries_wanted = 4096;
// user_data of removal requests: its descriptor half is no descriptor.
constexpr uint64_t removal_user_data = make_user_data(kind_cancel, -1, 0);

// Setup flags tried in turn while the kernel says EINVAL (it does not
// know one of them). The first entry, owned by one thread, is tried only
// at creation; a ring rebuilt for a second thread starts after it.
// SUBMIT_ALL (5.18) keeps submitting past an entry that fails at once (a
// poll on a descriptor closed meanwhile) instead of leaving the rest to
// the next enter.
#ifdef IORING_SETUP_SUBMIT_ALL
constexpr unsigned submit_all = IORING_SETUP_SUBMIT_ALL;
#else
constexpr unsigned submit_all = 0;
#endif
constexpr unsigned setup_attempts[] = {
#if defined(IORING_SETUP_SINGLE_ISSUER) && defined(IORING_SETUP_DEFER_TASKRUN)
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED | submit_all,
#endif
#ifdef IORING_SETUP_COOP_TASKRUN
    IORING_SETUP_COOP_TASKRUN | submit_all,
#endif
    0,
};
constexpr size_t owning_attempts =
#if defined(IORING_SETUP_SINGLE_ISSUER) && defined(IORING_SETUP_DEFER_TASKRUN)
    1;
#else
    0;
#endif

void *map_ring(int fd, size_t size, off_t offset) {
  void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, offset);
  return p == MAP_FAILED ? nullptr : p;
}

// Unmaps and closes without a word to the kernel: after fork() the ring
// is the parent's too.
void ring_close(ring &r) {
  if (r.sqes)
    munmap(r.sqes, r.sqes_size);
  if (r.cq_map && r.cq_map != r.sq_map)
    munmap(r.cq_map, r.cq_map_size);
  if (r.sq_map)
    munmap(r.sq_map, r.sq_map_size);
  if (r.fd >= 0)
    close(r.fd);
  r = ring{};
}

template <typename T>
T *at(void *base, unsigned offset) {
  return reinterpret_cast<T *>(static_cast<char *>(base) + offset);
}

int ring_setup(ring &r, unsigned flags) {
  io_uring_params p{};
  p.flags = flags | IORING_SETUP_CQSIZE;
  p.cq_entries = cq_entries_wanted;
  int fd = static_cast<int>(syscall(SYS_io_uring_setup, sq_entries_wanted, &p));
  if (fd < 0)
    return -errno;
  r.fd = fd;
  r.enabled = !(flags & IORING_SETUP_R_DISABLED);
  r.features = p.features;
  if (!(p.features & IORING_FEAT_EXT_ARG) || !(p.features & IORING_FEAT_NODROP)) {
    ring_close(r);
    return -ENOSYS;
  }
  r.sq_map_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  r.cq_map_size = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
  bool single_map = p.features & IORING_FEAT_SINGLE_MMAP;
  if (single_map) {
    if (r.cq_map_size > r.sq_map_size)
      r.sq_map_size = r.cq_map_size;
    r.cq_map_size = r.sq_map_size;
  }
  r.sq_map = map_ring(fd, r.sq_map_size, IORING_OFF_SQ_RING);
  if (r.sq_map)
    r.cq_map = single_map ? r.sq_map : map_ring(fd, r.cq_map_size, IORING_OFF_CQ_RING);
  r.sqes_size = p.sq_entries * sizeof(io_uring_sqe);
  if (r.cq_map)
    r.sqes = static_cast<io_uring_sqe *>(map_ring(fd, r.sqes_size, IORING_OFF_SQES));
  if (!r.sqes) {
    int err = -errno;
    ring_close(r);
    return err;
  }
  r.sq_head = at<unsigned>(r.sq_map, p.sq_off.head);
  r.sq_tail = at<unsigned>(r.sq_map, p.sq_off.tail);
  r.sq_mask = *at<unsigned>(r.sq_map, p.sq_off.ring_mask);
  r.sq_entries = *at<unsigned>(r.sq_map, p.sq_off.ring_entries);
  r.sq_local_tail = *r.sq_tail;
  // SQE i always sits in slot i: the indirection array is the identity.
  unsigned *array = at<unsigned>(r.sq_map, p.sq_off.array);
  for (unsigned i = 0; i < r.sq_entries; i++)
    array[i] = i;
  r.cq_head = at<unsigned>(r.cq_map, p.cq_off.head);
  r.cq_tail = at<unsigned>(r.cq_map, p.cq_off.tail);
  r.cq_mask = *at<unsigned>(r.cq_map, p.cq_off.ring_mask);
  r.cqes = at<io_uring_cqe>(r.cq_map, p.cq_off.cqes);
  return 0;
}

// Tries the setup flags from setup_attempts[first] on.
int ring_open(uring_state *st, size_t first) {
  int err = -EINVAL;
  for (size_t i = first; i < sizeof setup_attempts / sizeof setup_attempts[0]; i++) {
    err = ring_setup(st->r, setup_attempts[i]);
    if (err != -EINVAL) {
      st->next_attempt = i < owning_attempts ? owning_attempts : i;
      return err;
    }
  }
  return err;
}

}  // namespace

// Publishes the SQEs written and enters: submits them, and with
// IORING_ENTER_GETEVENTS processes completions and waits for min_complete
// of them, at most *timeout when one is given. The number submitted or a
// negative errno.
int ring_enter(ring &r, unsigned min_complete, unsigned flags, __kernel_timespec *timeout) {
  if (!r.enabled) {
    if (syscall(SYS_io_uring_register, r.fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) < 0)
      return -errno;
    r.enabled = true;
  }
  __atomic_store_n(r.sq_tail, r.sq_local_tail, __ATOMIC_RELEASE);
  unsigned to_submit = r.sq_local_tail - __atomic_load_n(r.sq_head, __ATOMIC_ACQUIRE);
  io_uring_getevents_arg arg{};
  void *argp = nullptr;
  size_t argsz = 0;
  if (timeout) {
    arg.sigmask_sz = _NSIG / 8;
    arg.ts = reinterpret_cast<uint64_t>(timeout);
    flags |= IORING_ENTER_EXT_ARG;
    argp = &arg;
    argsz = sizeof arg;
  }
  long n = syscall(SYS_io_uring_enter, r.fd, to_submit, min_complete, flags, argp, argsz);
  return n < 0 ? -errno : static_cast<int>(n);
}

// A zeroed SQE, or nullptr when the submission queue is full even after
// handing what it holds to the kernel.
io_uring_sqe *get_sqe(ring &r) {
  for (int attempt = 0; attempt < 2; attempt++) {
    unsigned head = __atomic_load_n(r.sq_head, __ATOMIC_ACQUIRE);
    if (r.sq_local_tail - head < r.sq_entries) {
      io_uring_sqe *sqe = &r.sqes[r.sq_local_tail & r.sq_mask];
      r.sq_local_tail++;
      std::memset(sqe, 0, sizeof *sqe);
      return sqe;
    }
    if (attempt == 0 && ring_enter(r, 0, 0, nullptr) < 0)
      return nullptr;
  }
  return nullptr;
}

void mark_dirty(uring_state *st, int fd) {
  fd_state &s = st->fds[fd];
  if (s.dirty)
    return;
  s.dirty = true;
  st->dirty.push(fd);  // never fails: fd_reserve() made a place for every descriptor
}

bool fd_reserve(uring_state *st, int fd) {
  size_t need = static_cast<size_t>(fd) + 1;
  return need <= st->fds.size() || (st->fds.resize_zeroed(need) && st->dirty.reserve(need));
}

namespace {

uint64_t poll_user_data(int fd, uint32_t seq) { return make_user_data(kind_poll, fd, seq); }

// Beside RILL_READ and RILL_WRITE in a poll's mask: the peer's FIN or
// reset only (POLLRDHUP; POLLERR and POLLHUP come anyway).
constexpr uint8_t want_peer_gone = 0x80;

// The poll's mask: what is wanted and not served by a stream operation.
// A running receive is watched for the peer's end: a multishot receive
// armed on a socket that holds many bytes and a reset already (a pipe's
// side paused while its peer resets) reads the bytes, then waits for a
// wakeup the reset gave before it was armed: the reset is never reported
// (Linux 6.18; test_io_uring_stream). The poll sees the end (POLLRDHUP,
// POLLHUP, POLLERR stay set), the receive is cancelled and read(2) takes
// the rest, in order, and the reset or EOF behind it.
uint8_t poll_want(const uring_state *st, const fd_state &s) {
  unsigned want = s.want;
  if (read_by_op(st, s))
    want = (want & ~RILL_READ) | (s.mode == stream_mode::recv ? want_peer_gone : 0u);
  if (s.send_in_flight || s.send_done)
    want &= ~RILL_WRITE;  // the send's completion is the report
  return static_cast<uint8_t>(want);
}

uint32_t to_poll_mask(unsigned events) {
  uint32_t mask = (events & RILL_READ ? POLLIN : 0u) | (events & RILL_WRITE ? POLLOUT : 0u) |
                  (events & want_peer_gone ? POLLRDHUP : 0u);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  mask = (mask << 16) | (mask >> 16);  // the kernel swaps the halves of poll32_events there
#endif
  return mask;
}

bool queue_poll(ring &r, int fd, fd_state &s, uint8_t want) {
  io_uring_sqe *sqe = get_sqe(r);
  if (!sqe)
    return false;
  s.seq++;
  sqe->opcode = IORING_OP_POLL_ADD;
  sqe->fd = fd;
  sqe->poll32_events = to_poll_mask(want);
  sqe->user_data = poll_user_data(fd, s.seq);
  s.armed = want;
  s.in_flight = true;
  return true;
}

bool queue_removal(ring &r, int fd, fd_state &s) {
  io_uring_sqe *sqe = get_sqe(r);
  if (!sqe)
    return false;
  sqe->opcode = IORING_OP_POLL_REMOVE;
  sqe->fd = -1;
  sqe->addr = poll_user_data(fd, s.seq);
  sqe->user_data = removal_user_data;
  s.in_flight = false;
  return true;
}

// A ring of the shared kind instead of one owned by another thread: every
// poll and operation of the old ring ends with it, so every wanted one is
// armed again. What the operations queued stays: their buffers are ours.
int rebuild_shared(uring_state *st) {
  // Completions the old ring already posted may carry received bytes or
  // accepted descriptors: queued before it goes.
  ring &r = st->r;
  for (unsigned head = *r.cq_head, tail = __atomic_load_n(r.cq_tail, __ATOMIC_ACQUIRE); head != tail; head++) {
    const io_uring_cqe &cqe = r.cqes[head & r.cq_mask];
    uint64_t kind = user_data_kind(cqe.user_data);
    if (kind == kind_stream || kind == kind_accept)
      streams_complete(st, cqe);
    else if (kind == kind_send)
      sends_complete(st, cqe);
  }
  ring_close(st->r);
  st->dirty.clear();
  for (size_t fd = 0; fd < st->fds.size(); fd++) {
    fd_state &s = st->fds[fd];
    s.in_flight = false;
    s.dirty = false;
    s.op_in_flight = false;
    s.op_cancelling = false;
    s.op_seq++;
    // A send without a completion posted sent nothing: with DEFER_TASKRUN
    // its retry runs only in this thread's enters, and the old ring's end
    // cancels it. Its owner sends again (a poll stands in until then).
    s.send_in_flight = false;
    s.send_cancelling = false;
    if (s.want)
      mark_dirty(st, static_cast<int>(fd));
  }
  int err = ring_open(st, st->next_attempt);
  streams_ring_lost(st, true);
  return err;
}

int init(void **out) {
  auto *st = make<uring_state>();
  if (!st)
    return -ENOMEM;
  int err = ring_open(st, 0);
  if (err) {
    destroy(st);
    return err;
  }
  streams_probe(st);
  sends_probe(st);
  *out = st;
  return 0;
}

void destroy_state(void *state) {
  auto *st = static_cast<uring_state *>(state);
  streams_destroy(st);
  ring_close(st->r);
  destroy(st);
}

int change(void *state, int fd, unsigned, unsigned new_events, uint64_t tag) {
  auto *st = static_cast<uring_state *>(state);
  if (st->r.fd < 0)
    return -EBADF;
  if (!fd_reserve(st, fd))
    return -ENOMEM;
  fd_state &s = st->fds[fd];
  if ((new_events & RILL_READ) && !(s.want & RILL_READ) && s.mode == stream_mode::accept)
    s.starved = false;  // a refused accept is tried again when the owner asks again
  s.want = static_cast<uint8_t>(new_events);
  s.tag = tag;
  if (new_events) {
    mark_dirty(st, fd);
    return 0;
  }
  if (!s.in_flight && !(s.op_in_flight && !s.op_cancelling) && !st->cancel_queued)
    return 0;
  // Removed now, not with the next wait: a poll or an operation keeps the
  // file open.
  if (s.in_flight && !queue_removal(st->r, fd, s))
    return -EBUSY;
  if (!streams_cancel(st, fd, s))
    return -EBUSY;
  st->cancel_queued = false;
  int n = ring_enter(st->r, 0, IORING_ENTER_GETEVENTS, nullptr);
  if (n == -EEXIST)
    return rebuild_shared(st);
  return 0;
}

// Queues what the dirty descriptors need: their poll replaced when the
// interest changed, armed when none is in flight, and their stream
// operation armed or cancelled. A descriptor whose SQE finds no room
// stays dirty for the next wait.
void arm_dirty(uring_state *st) {
  size_t kept = 0;
  for (size_t i = 0; i < st->dirty.size(); i++) {
    int fd = st->dirty[i];
    fd_state &s = st->fds[fd];
    uint8_t want = poll_want(st, s);
    bool queued = true;
    if (s.in_flight && s.armed != want)
      queued = queue_removal(st->r, fd, s);
    if (queued && !s.in_flight && want)
      queued = queue_poll(st->r, fd, s, want);
    if (queued && s.mode != stream_mode::none)
      queued = streams_arm(st, fd, s);
    if (queued)
      s.dirty = false;
    else
      st->dirty[kept++] = fd;
  }
  while (st->dirty.size() > kept)
    st->dirty.pop_back();
}

unsigned to_rill(int res, unsigned armed) {
  if (res < 0)
    return armed;  // -EBADF and the like: let the owner's own call find out
  unsigned ready = 0;
  if (res & (POLLIN | POLLERR | POLLHUP | POLLRDHUP))
    ready |= RILL_READ;
  if (res & (POLLOUT | POLLERR | POLLHUP))
    ready |= RILL_WRITE;
  return ready;
}

int harvest(uring_state *st, backend_event *out, int capacity) {
  ring &r = st->r;
  unsigned head = *r.cq_head;
  unsigned tail = __atomic_load_n(r.cq_tail, __ATOMIC_ACQUIRE);
  int count = 0;
  for (; head != tail && count < capacity; head++) {
    const io_uring_cqe &cqe = r.cqes[head & r.cq_mask];
    uint64_t kind = user_data_kind(cqe.user_data);
    if (kind == kind_stream || kind == kind_accept) {
      streams_complete(st, cqe);  // reported below, from the queues
      continue;
    }
    if (kind == kind_send) {
      sends_complete(st, cqe);  // reported below too
      continue;
    }
    uint32_t fd = static_cast<uint32_t>(cqe.user_data);
    if (kind != kind_poll || fd >= st->fds.size())
      continue;  // a removal's or a cancellation's own completion
    fd_state &s = st->fds[fd];
    if (!s.in_flight || (s.seq & seq_mask) != user_data_seq(cqe.user_data))
      continue;  // a poll that was removed or replaced
    s.in_flight = false;
    unsigned armed = s.armed & (RILL_READ | RILL_WRITE);
    if ((s.armed & want_peer_gone) && (cqe.res < 0 || (cqe.res & (POLLRDHUP | POLLERR | POLLHUP)))) {
      s.peer_gone = true;  // the receive is cancelled, read(2) takes over (poll_want)
      armed |= RILL_READ;
    }
    unsigned ready = to_rill(cqe.res, armed);
    if (s.want)
      mark_dirty(st, static_cast<int>(fd));
    if (ready)
      out[count++] = backend_event{s.tag, ready};
  }
  __atomic_store_n(r.cq_head, head, __ATOMIC_RELEASE);
  return count + streams_report(st, out + count, capacity - count);
}

int wait(void *state, int64_t timeout_ns, backend_event *out, int capacity) {
  auto *st = static_cast<uring_state *>(state);
  st->send_alone = false;  // until this wait says otherwise, on every path
  if (st->r.fd < 0)
    return -EBADF;
  if (streams_before_wait(st))
    timeout_ns = 0;  // queued entries to report: no sleeping
  arm_dirty(st);
  __kernel_timespec ts{};
  __kernel_timespec *timeout = nullptr;
  if (timeout_ns > 0) {
    ts.tv_sec = timeout_ns / 1000000000;
    ts.tv_nsec = timeout_ns % 1000000000;
    timeout = &ts;
  }
  // Completions already waiting make the kernel return at once.
  st->cancel_queued = false;
  int n = ring_enter(st->r, timeout_ns == 0 ? 0 : 1, IORING_ENTER_GETEVENTS, timeout);
  if (n == -EEXIST) {
    int err = rebuild_shared(st);
    return err ? err : 0;  // nothing collected; the base goes round
  }
  // ETIME: the timeout passed; EINTR: a signal; EBUSY and EAGAIN: the
  // kernel wants completions reaped before it takes more submissions.
  if (n < 0 && n != -ETIME && n != -EINTR && n != -EBUSY && n != -EAGAIN)
    return n;
  int reported = harvest(st, out, capacity);
  // One event: its callback's write would be the only send of the
  // iteration, with nothing to share an enter with (io_uring_send.cpp).
  st->send_alone = st->send_ok && reported <= 1;
  return reported;
}

}  // namespace

// Submits what is queued (sends made outside a loop iteration, whose wait
// would otherwise take them only at the next rill_base_run()).
void submit_now(void *state) {
  auto *st = static_cast<uring_state *>(state);
  ring &r = st->r;
  if (r.fd < 0 || r.sq_local_tail == __atomic_load_n(r.sq_head, __ATOMIC_ACQUIRE))
    return;
  if (ring_enter(r, 0, 0, nullptr) == -EEXIST)
    rebuild_shared(st);
}

namespace {

// After fork: the child forgets every registration and gets a ring of its
// own. The inherited ring is only unmapped and closed (see the top).
int reinit(void *state) {
  auto *st = static_cast<uring_state *>(state);
  ring_close(st->r);
  st->dirty.clear();
  streams_ring_lost(st, false);  // drops the queues while fds[] still knows them
  for (size_t fd = 0; fd < st->fds.size(); fd++)
    st->fds[fd] = fd_state{};
  return ring_open(st, 0);
}

}  // namespace
}  // namespace uring

using uring::change;
using uring::destroy_state;
using uring::init;
using uring::reinit;
using uring::wait;

const backend_ops io_uring_backend = {"io_uring", true, init, destroy_state, change, wait, reinit};

}  // namespace rill::detail
