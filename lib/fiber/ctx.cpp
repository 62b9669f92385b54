// Contexts (Go's context.WithCancel / WithDeadline) and the sleep they
// interrupt.
//
// A context ends once (ctx_end): it records its error, closes its done
// channel (waking every select on it) and runs its hooks, which end its
// children and cancel the dials made under it (net_dial.cpp). The done
// channel lives inside the context, so a context is one allocation, and its
// deadline is one timer handle on its base.
//
// Lifetime (core/lifetime.h): held by its user until rill_ctx_free(), and
// by every fiber inside rill_ctx_sleep() or rill_net_dial_ctx() on it, so a
// free from another fiber never pulls the memory from under a parked call.
// A context has no callbacks and no close report: the free ends it at once.
#include <cstdint>

#include "fiber/ctx_impl.h"

struct rill_ctx {
  rill::detail::life lifetime;
  rill_chan done;
  int err = 0;
  bool user_released = false;
  bool has_deadline = false;
  uint64_t deadline = 0;
  rill_timer *timer = nullptr;
  rill::detail::list hooks;        // children, dials: ended with this one
  rill::detail::ctx_hook in_parent{};  // this one among its parent's hooks
};

namespace rill::detail {
namespace {

void ctx_end(rill_ctx *ctx, int err) {
  if (ctx->err)
    return;
  ctx->err = err;
  // Freeing a timer from inside its own callback is allowed (rill/timer.h).
  rill_timer_free(ctx->timer);
  ctx->timer = nullptr;
  chan_close(&ctx->done);
  while (list_node *n = ctx->hooks.pop_front()) {
    ctx_hook *h = RILL_CONTAINER_OF(n, ctx_hook, node);
    h->fn(h, err);
  }
}

void end_child(ctx_hook *hook, int err) {
  ctx_end(RILL_CONTAINER_OF(hook, rill_ctx, in_parent), err);
}

void on_deadline(rill_timer *, void *arg) { ctx_end(static_cast<rill_ctx *>(arg), RILL_ECTX_DEADLINE); }

int check(const rill_ctx *ctx) {
  if (!ctx)
    return RILL_EINVAL;
  return ctx_owned_here(ctx) ? 0 : RILL_EWRONGTHREAD;
}

// A context under `parent` (checked by the caller; may be null), not yet
// given a deadline.
int create(rill_ctx *parent, rill_ctx **out) {
  auto *ctx = make<rill_ctx>();
  if (!ctx)
    return RILL_ENOMEM;
  chan_init(&ctx->done, 0);
  ctx->done.of_ctx = true;
  ctx->in_parent.fn = end_child;
  if (parent) {
    if (int err = ctx_hook_add(parent, &ctx->in_parent))
      ctx_end(ctx, err);  // a child of an ended context starts ended
  }
  *out = ctx;
  return 0;
}

void free_ctx(rill_ctx *ctx) {
  ctx_hook_remove(&ctx->in_parent);
  destroy(ctx);
}

}  // namespace

int ctx_hook_add(rill_ctx *ctx, ctx_hook *hook) {
  if (ctx->err)
    return ctx->err;
  ctx->hooks.push_back(&hook->node);
  return 0;
}

void ctx_hold(rill_ctx *ctx) { life_hold(ctx->lifetime); }

void ctx_release(rill_ctx *ctx) {
  if (life_release(ctx->lifetime))
    free_ctx(ctx);
}

bool ctx_owned_here(const rill_ctx *ctx) { return owned_here(ctx->done.owner); }

int ctx_error(const rill_ctx *ctx) { return ctx->err; }

}  // namespace rill::detail

using namespace rill::detail;

extern "C" {

int rill_ctx_new(rill_ctx *parent, rill_ctx **out) {
  if (!out)
    return RILL_EINVAL;
  *out = nullptr;
  if (parent)
    if (int err = check(parent))
      return err;
  return create(parent, out);
}

int rill_ctx_new_deadline(rill_base *base, rill_ctx *parent, uint64_t deadline, rill_ctx **out) {
  if (!base || !out)
    return RILL_EINVAL;
  *out = nullptr;
  if (parent)
    if (int err = check(parent))
      return err;
  rill_ctx *ctx = nullptr;
  if (int err = create(parent, &ctx))
    return err;
  ctx->has_deadline = true;
  ctx->deadline = deadline;
  uint64_t now = rill_time_now();
  if (!ctx->err && deadline <= now) {
    ctx_end(ctx, RILL_ECTX_DEADLINE);
  } else if (!ctx->err) {
    if (int err = rill_timer_new(base, on_deadline, ctx, &ctx->timer)) {
      free_ctx(ctx);
      return err;
    }
    rill_timer_start(ctx->timer, deadline - now, 0);
  }
  *out = ctx;
  return 0;
}

int rill_ctx_new_timeout(rill_base *base, rill_ctx *parent, uint64_t timeout, rill_ctx **out) {
  if (!base || !out)
    return RILL_EINVAL;
  // G29: a timeout runs from the real time of the call.
  uint64_t now = rill_time_now();
  uint64_t deadline = timeout > UINT64_MAX - now ? UINT64_MAX : now + timeout;
  return rill_ctx_new_deadline(base, parent, deadline, out);
}

int rill_ctx_cancel(rill_ctx *ctx) {
  if (int err = check(ctx))
    return err;
  ctx_end(ctx, RILL_ECTX_CANCELED);
  return 0;
}

rill_chan *rill_ctx_done(rill_ctx *ctx) { return ctx ? &ctx->done : nullptr; }

int rill_ctx_err(const rill_ctx *ctx) {
  if (int err = check(ctx))
    return err;
  return ctx->err;
}

int rill_ctx_deadline(const rill_ctx *ctx, uint64_t *deadline) {
  if (check(ctx) || !ctx->has_deadline)
    return 0;
  if (deadline)
    *deadline = ctx->deadline;
  return 1;
}

int rill_ctx_free(rill_ctx *ctx) {
  if (!ctx)
    return 0;
  if (int err = check(ctx))
    return err;
  if (ctx->user_released)
    return RILL_ECLOSED;
  ctx_end(ctx, RILL_ECTX_CANCELED);
  ctx->user_released = true;
  ctx_release(ctx);
  return 0;
}

int rill_ctx_sleep(rill_ctx *ctx, uint64_t duration) {
  if (!ctx)
    return rill_sleep(duration);
  if (int err = check(ctx))
    return err;
  if (!rill_fiber_current())
    return RILL_ENOTFIBER;
  if (ctx->err)
    return ctx->err;
  rill_select_case c = {&ctx->done, RILL_SELECT_RECV, nullptr, 0};
  ctx_hold(ctx);  // rill_ctx_free() from another fiber meanwhile frees nothing
  int r = rill_select(&c, 1, duration);
  int err = r == RILL_ETIMEOUT ? 0 : r < 0 ? r : ctx->err;
  ctx_release(ctx);
  return err;
}

}  // extern "C"
