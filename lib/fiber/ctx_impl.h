// Contexts (rill/chan.h): what other facade files need to end their work
// with a context, such as a dial (net_dial.cpp).
#ifndef RILL_FIBER_CTX_IMPL_H
#define RILL_FIBER_CTX_IMPL_H

#include "fiber/chan_impl.h"

namespace rill::detail {

// Run once when a context ends (or at once by ctx_hook_add() if it has
// ended), inside the call that ended it: rill_ctx_cancel(), the deadline's
// timer, a parent's end, rill_ctx_free(). `err` is the context's error. A
// hook is unlinked before it runs, and must not free the context.
struct ctx_hook {
  list_node node;
  void (*fn)(ctx_hook *hook, int err);
};

// Links `hook` to `ctx`. Returns 0, or the context's error if it has
// ended already (the hook is then neither linked nor run).
int ctx_hook_add(rill_ctx *ctx, ctx_hook *hook);
// Unlinks a hook that has not run; one that ran is left alone.
inline void ctx_hook_remove(ctx_hook *hook) { list::remove(&hook->node); }

// A fiber keeps the context's memory across a park with these (the owner
// may free it meanwhile: core/lifetime.h).
void ctx_hold(rill_ctx *ctx);
void ctx_release(rill_ctx *ctx);

// The thread check every entry point makes.
bool ctx_owned_here(const rill_ctx *ctx);
int ctx_error(const rill_ctx *ctx);

}  // namespace rill::detail

#endif
