#include "core/handle.h"

#include "core/alloc.h"
#include "core/base_impl.h"

namespace rill::detail {
namespace {

void release(handle *h) noexcept {
  switch (h->kind) {
    case handle_kind::io:
      destroy(static_cast<rill_io *>(h));
      break;
    case handle_kind::timer:
      destroy(static_cast<rill_timer *>(h));
      break;
    case handle_kind::signal:
      destroy(static_cast<rill_signal *>(h));
      break;
  }
}

}  // namespace

void handle_attach(rill_base *base, handle *h) noexcept {
  h->base = base;
  if (h->internal)
    return;
  h->next = base->handles;
  if (base->handles)
    base->handles->prev = h;
  base->handles = h;
  base->handle_count++;
}

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
  if (!h->internal) {
    if (h->prev)
      h->prev->next = h->next;
    else
      base->handles = h->next;
    if (h->next)
      h->next->prev = h->prev;
    base->handle_count--;
  }
  if (base->running) {
    h->prev = nullptr;
    h->next = base->graveyard;
    base->graveyard = h;
  } else {
    release(h);
  }
}

void handles_release_retired(rill_base *base) noexcept {
  while (handle *h = base->graveyard) {
    base->graveyard = h->next;
    release(h);
  }
}

}  // namespace rill::detail
