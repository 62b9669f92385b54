// Blocking dial for fibers: the callback API's rill_dial() or
// rill_tls_dial(), with the fiber parked until its one completion.
//
// A dial under a context (Go's DialContext, G33) hooks the context
// (ctx_impl.h): when the context ends first, the hook cancels the dialer
// with rill_dialer_cancel(), and the dial's one completion says so. The
// callback API decides the race (G10): once the cancel is in, a connection
// made but not yet reported is closed and never seen; a completion that
// came first is kept, and the hook then finds no dialer to cancel. Either
// way the fiber hears exactly one outcome, and a connection it gets was
// never touched by the cancel (Go issue 16523).
#include <cstdio>
#include <cstring>

#include "fiber/ctx_impl.h"
#include "fiber/net_impl.h"
#include "rill/tls.h"

namespace rill::detail {
namespace {

struct dial_wait {
  rill_fiber *fiber;
  rill_conn *conn = nullptr;
  char *errbuf;
  size_t errbuf_size;
  // Until the completion: one of them, as the dial is plain or TLS.
  rill_dialer *dialer = nullptr;
  rill_tls_dialer *tls_dialer = nullptr;
  int ctx_err = 0;                // the context's error, once it ended
  bool tls_dialer_used = false;  // a TLS dial: words a handshake's end its own way
  ctx_hook hook{};
};

// Go reports a dial its context ended as "operation was canceled", or as
// "i/o timeout" when the context's deadline passed (net.mapErr).
int dial_error_of(int ctx_err) { return ctx_err == RILL_ECTX_DEADLINE ? RILL_ETIMEOUT : RILL_ECANCELED; }

// The one completion, plain or TLS: `format` words its error.
template <class Dialer>
void dial_done(dial_wait *w, Dialer *d, rill_conn *conn, int status,
               int (*format)(const Dialer *, int, char *, size_t)) {
  w->conn = conn;
  w->dialer = nullptr;
  w->tls_dialer = nullptr;
  bool in_handshake = false;
  if (status == RILL_ECANCELED && w->ctx_err) {
    // tls.Dialer.DialContext reports a context that ended in the handshake
    // as ctx.Err() itself, and one that ended in the connect as the net
    // dial's error. A TLS dialer words only the latter "dial ...".
    char text[16] = "";
    in_handshake = w->tls_dialer_used && format(d, status, text, sizeof text) >= 0 &&
                   std::strncmp(text, "dial ", 5) != 0;
    status = dial_error_of(w->ctx_err);
  }
  if (status && w->errbuf && w->errbuf_size) {
    if (in_handshake)
      std::snprintf(w->errbuf, w->errbuf_size, "%s", rill_strerror(w->ctx_err));
    else
      format(d, status, w->errbuf, w->errbuf_size);
  }
  fiber_unpark(w->fiber, status);
}

void on_dial(rill_dialer *d, rill_conn *conn, int status, void *arg) {
  dial_done(static_cast<dial_wait *>(arg), d, conn, status, rill_dialer_format_error);
}

void on_tls_dial(rill_tls_dialer *d, rill_conn *conn, int status, void *arg) {
  dial_done(static_cast<dial_wait *>(arg), d, conn, status, rill_tls_dialer_format_error);
}

void on_ctx_end(ctx_hook *hook, int err) {
  auto *w = RILL_CONTAINER_OF(hook, dial_wait, hook);
  w->ctx_err = err;
  if (w->dialer)
    rill_dialer_cancel(w->dialer);
  if (w->tls_dialer)
    rill_tls_dialer_cancel(w->tls_dialer);
}

void format_now(char *errbuf, size_t errbuf_size, const char *network, const char *address, int err) {
  if (errbuf && errbuf_size)
    rill_format_net_error("dial", network ? network : "", address ? address : "", err, errbuf, errbuf_size);
}

// The dial every entry point shares; `ctx` may be null, and so may `tls`
// (a plain dial).
int dial(rill_ctx *ctx, const char *network, const char *address, const rill_socket_config *options,
         rill_tls_config *tls, rill_net_conn **out, char *errbuf, size_t errbuf_size) {
  rill_base *base = rill_fiber_base();
  if (!base)
    return RILL_ENOTFIBER;
  if (!out)
    return RILL_EINVAL;
  if (errbuf && errbuf_size)
    errbuf[0] = '\0';
  if (ctx && ctx_error(ctx)) {
    int err = dial_error_of(ctx_error(ctx));
    format_now(errbuf, errbuf_size, network, address, err);
    return err;
  }
  dial_wait w{rill_fiber_current(), nullptr, errbuf, errbuf_size};
  w.tls_dialer_used = tls != nullptr;
  int err = tls ? rill_tls_dial(base, network, address, options, tls, on_tls_dial, &w, &w.tls_dialer)
                : rill_dial(base, network, address, options, on_dial, &w, &w.dialer);
  if (err) {
    format_now(errbuf, errbuf_size, network, address, err);
    return err;
  }
  if (ctx) {
    w.hook.fn = on_ctx_end;
    ctx_hold(ctx);  // a free from another fiber meanwhile ends it, frees nothing
    ctx_hook_add(ctx, &w.hook);
  }
  err = fiber_park();
  if (ctx) {
    ctx_hook_remove(&w.hook);
    ctx_release(ctx);
  }
  if (err)
    return err;
  *out = net_conn_wrap(w.conn);
  if (!*out) {
    rill_conn_abort(w.conn);
    return RILL_ENOMEM;
  }
  return 0;
}

}  // namespace
}  // namespace rill::detail

using namespace rill::detail;

extern "C" {

int rill_net_dial(const char *network, const char *address, const rill_socket_config *options,
                  rill_net_conn **out, char *errbuf, size_t errbuf_size) {
  return dial(nullptr, network, address, options, nullptr, out, errbuf, errbuf_size);
}

int rill_net_dial_ctx(rill_ctx *ctx, const char *network, const char *address,
                      const rill_socket_config *options,
                      rill_net_conn **out, char *errbuf, size_t errbuf_size) {
  if (ctx && !ctx_owned_here(ctx))
    return RILL_EWRONGTHREAD;
  return dial(ctx, network, address, options, nullptr, out, errbuf, errbuf_size);
}

int rill_net_tls_dial(const char *network, const char *address, const rill_socket_config *options,
                      rill_tls_config *config, rill_net_conn **out, char *errbuf,
                      size_t errbuf_size) {
  if (!config)
    return RILL_EINVAL;
  return dial(nullptr, network, address, options, config, out, errbuf, errbuf_size);
}

int rill_net_tls_dial_ctx(rill_ctx *ctx, const char *network, const char *address,
                          const rill_socket_config *options, rill_tls_config *config,
                          rill_net_conn **out, char *errbuf, size_t errbuf_size) {
  if (!config)
    return RILL_EINVAL;
  if (ctx && !ctx_owned_here(ctx))
    return RILL_EWRONGTHREAD;
  return dial(ctx, network, address, options, config, out, errbuf, errbuf_size);
}

}  // extern "C"
