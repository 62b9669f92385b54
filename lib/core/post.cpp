// Functions posted from other threads.
//
// Posters append under a mutex and only the poster that finds the queue empty
// writes to the wake-up descriptor, so a burst of posts costs one system call.
// The base first consumes the wake-up, then swaps the queue out under the
// lock: a post that lands between the two is either in the swapped batch or
// finds the queue empty and wakes the base again, never lost.
//
// A batch runs from base->posts_next on. If a posted function throws, the
// rest of its batch stays there and runs first on the next wake-up (which
// the unwinding arranges), so every post still runs exactly once and in
// order.
#include "core/base_impl.h"

using namespace rill::detail;

namespace {

bool run_one_batch(rill_base *base);

// One batch per wake-up keeps a post storm from starving io: posts made by
// the batch wake the base again.
void on_wakeup(rill_io *, int fd, unsigned, void *arg) {
  auto *base = static_cast<rill_base *>(arg);
  wakeup_consume(fd);
  // The rest of a batch cut short by a throwing post goes first; then the
  // posts that arrived meanwhile, whose wake-up this one may have eaten.
  if (!base->posts_running.empty())
    run_one_batch(base);
  run_one_batch(base);
}

// Ends a batch: cleared when it ran to the end, else (a post threw) kept
// for the next wake-up, which it asks for.
class batch_end {
 public:
  explicit batch_end(rill_base *base) noexcept : base_(base) {}
  batch_end(const batch_end &) = delete;
  batch_end &operator=(const batch_end &) = delete;
  ~batch_end() {
    if (base_->posts_next < base_->posts_running.size()) {
      base_wake(base_);
      return;
    }
    base_->posts_running.clear();
    base_->posts_next = 0;
  }

 private:
  rill_base *base_;
};

bool run_one_batch(rill_base *base) {
  vec<post_item> &batch = base->posts_running;
  if (batch.empty()) {
    mutex_lock lock(base->post_mutex);
    batch.swap(base->posts_incoming);
  }
  if (batch.empty())
    return false;
  batch_end end(base);
  while (base->posts_next < batch.size()) {
    post_item item = batch[base->posts_next++];
    base->stats.events++;
    RILL_STALL_BEGIN(base);
    item.fn(base, item.arg);
    RILL_STALL_END(base, RILL_STALL_POST, stall_fn(item.fn), item.arg, 0);
  }
  return true;
}

}  // namespace

namespace rill::detail {

int posts_init(rill_base *base) noexcept {
  int err = wakeup_open(&base->wake_read_fd, &base->wake_write_fd);
  if (err)
    return err;
  err = io_create(base, base->wake_read_fd, on_wakeup, base, true, &base->wake_io);
  if (err)
    return err;
  return rill_io_start(base->wake_io, RILL_READ);
}

void posts_destroy(rill_base *base) noexcept {
  rill_io_free(base->wake_io);
  base->wake_io = nullptr;
  wakeup_close(base->wake_read_fd, base->wake_write_fd);
  base->wake_read_fd = base->wake_write_fd = -1;
}

int posts_reinit(rill_base *base) noexcept {
  // The inherited descriptor is shared with the parent: a post in one
  // process could be consumed by the other's wait and never wake its own.
  int read_fd, write_fd;
  int err = wakeup_open(&read_fd, &write_fd);
  if (err)
    return err;
  rill_io *io = nullptr;
  err = io_create(base, read_fd, on_wakeup, base, true, &io);
  if (!err)
    err = rill_io_start(io, RILL_READ);
  if (err) {
    rill_io_free(io);
    wakeup_close(read_fd, write_fd);
    return err;
  }
  rill_io_free(base->wake_io);
  wakeup_close(base->wake_read_fd, base->wake_write_fd);
  base->wake_io = io;
  base->wake_read_fd = read_fd;
  base->wake_write_fd = write_fd;
  // Functions posted before the fork and not yet run are in the child's
  // copy of the queue too; run them here as well.
  base_wake(base);
  return 0;
}

void posts_drain(rill_base *base) {
  while (run_one_batch(base)) {
  }
}

void base_wake(rill_base *base) noexcept { wakeup_signal(base->wake_write_fd); }

}  // namespace rill::detail

extern "C" int rill_base_post(rill_base *base, rill_post_cb fn, void *arg) {
  if (!base || !fn)
    return RILL_EINVAL;
  bool was_empty;
  {
    mutex_lock lock(base->post_mutex);
    was_empty = base->posts_incoming.empty();
    if (!base->posts_incoming.push(post_item{fn, arg}))
      return RILL_ENOMEM;
  }
  if (was_empty)
    base_wake(base);
  return 0;
}
