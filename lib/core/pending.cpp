#include "core/pending.h"

#include "core/base_impl.h"

namespace rill::detail {

namespace {

// One pass's snapshot. Whatever it still holds when the pass ends (only
// when a run threw) goes back to the front of the queue, so nothing queued
// is lost or reordered by an exception.
class pass {
 public:
  explicit pass(rill_base *base) noexcept : base_(base) { batch_.splice_back(base->pending); }
  pass(const pass &) = delete;
  pass &operator=(const pass &) = delete;
  ~pass() { base_->pending.splice_front(batch_); }

  pending_node *next() noexcept {
    list_node *n = batch_.pop_front();
    return n ? RILL_CONTAINER_OF(n, pending_node, link) : nullptr;
  }

 private:
  rill_base *base_;
  list batch_;
};

}  // namespace

void pending_push(rill_base *base, pending_node *node) noexcept {
  if (!list_linked(&node->link))
    base->pending.push_back(&node->link);
}

// The node may sit on the queue or in a pass's snapshot; either way it is
// unlinked from the node alone.
void pending_cancel(rill_base *, pending_node *node) noexcept { list::remove(&node->link); }

bool pending_empty(const rill_base *base) noexcept { return base->pending.empty(); }

void pending_run(rill_base *base) {
  for (int i = 0; i < pending_passes && !base->pending.empty(); i++) {
    pass snapshot(base);
    while (pending_node *node = snapshot.next()) {
      base->stats.events++;
      RILL_STALL_BEGIN(base);
      void (*run)(pending_node *) = node->run;
      node->run(node);  // may free the object holding the node
      RILL_STALL_END(base, RILL_STALL_REPORT, stall_fn(run), nullptr, 0);
    }
  }
}

}  // namespace rill::detail
