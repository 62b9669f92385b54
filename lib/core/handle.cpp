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

void handle_close(handle *h) noexcept {
  h->lifetime.state = life_state::closed;
  if (!h->internal)
    h->base->handle_count--;
  handle_release(h);
}

void handle_release(handle *h) noexcept {
  if (!life_release(h->lifetime))
    return;
  rill_base *base = h->base;
  handle_kind kind = h->kind;
  switch (kind) {
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
  pool_of(base, kind).give(h);
}

}  // namespace rill::detail
