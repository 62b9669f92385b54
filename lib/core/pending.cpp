#include "core/pending.h"

#include "core/base_impl.h"

namespace rill::detail {

void pending_push(rill_base *base, pending_node *node) noexcept {
  if (node->queued)
    return;
  node->queued = true;
  node->next = nullptr;
  if (base->pending_tail)
    base->pending_tail->next = node;
  else
    base->pending_head = node;
  base->pending_tail = node;
}

void pending_cancel(rill_base *base, pending_node *node) noexcept {
  if (!node->queued)
    return;
  pending_node *prev = nullptr;
  for (pending_node *n = base->pending_head; n; prev = n, n = n->next) {
    if (n != node)
      continue;
    if (prev)
      prev->next = n->next;
    else
      base->pending_head = n->next;
    if (base->pending_tail == n)
      base->pending_tail = prev;
    break;
  }
  node->queued = false;
}

bool pending_empty(const rill_base *base) noexcept { return base->pending_head == nullptr; }

void pending_run(rill_base *base) noexcept {
  while (pending_node *node = base->pending_head) {
    base->pending_head = node->next;
    if (!base->pending_head)
      base->pending_tail = nullptr;
    node->queued = false;
    base->stats.events++;
    node->run(node);  // may free the object holding the node
  }
}

}  // namespace rill::detail
