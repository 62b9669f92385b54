#include "core/handle.h"

#include "core/base_impl.h"

namespace rill::detail {

void handle_set_active(handle *h, bool active) noexcept {
  if (h->active == active)
    return;
  h->active = active;
  if (!h->internal) {
    if (active)
      h->base->active_count++;
    else
      h->base->active_count--;
  }
}

void handle_retire(handle *h) noexcept {
  rill_base *base = h->base;
  h->dead = true;
  if (!h->internal)
    base->handle_count--;
  // Out of memory for the graveyard, the slot stays dead in the pool until
  // the base is freed: a small leak rather than a use after free.
  if (base->running)
    base->graveyard.push(h);
  else
    handle_release(h);
}

void handle_release(handle *h) noexcept {
  rill_base *base = h->base;
  switch (h->kind) {
    case handle_kind::io:
      static_cast<rill_io *>(h)->~rill_io();
      break;
    case handle_kind::timer:
      static_cast<rill_timer *>(h)->~rill_timer();
      break;
    case handle_kind::signal:
      static_cast<rill_signal *>(h)->~rill_signal();
      break;
  }
  base->pool.give(h);
}

void handles_release_retired(rill_base *base) noexcept {
  for (size_t i = 0; i < base->graveyard.size(); i++)
    handle_release(base->graveyard[i]);
  base->graveyard.clear();
}

}  // namespace rill::detail
