// The client's session cache: one session (ticket) per server name, so
// that a later dial to the same name resumes, as Go's ClientSessionCache
// keyed by server name does. Small and linear: a client talks to few
// names, and a lookup is one per dial, never per message.
#include <cstring>
#include <new>

#include "core/alloc.h"
#include "tls/tls_impl.h"

namespace rill::detail {
namespace {

session_entry *find(rill_tls_config *cfg, const char *name) {
  for (size_t i = 0; cfg->sessions && i < cfg->session_cap; i++) {
    session_entry &e = cfg->sessions[i];
    if (e.name && std::strcmp(e.name, name) == 0)
      return &e;
  }
  return nullptr;
}

// A free slot, else the least recently used one, emptied.
session_entry *slot_for(rill_tls_config *cfg) {
  session_entry *oldest = nullptr;
  for (size_t i = 0; i < cfg->session_cap; i++) {
    session_entry &e = cfg->sessions[i];
    if (!e.name)
      return &e;
    if (!oldest || e.used < oldest->used)
      oldest = &e;
  }
  mem_free(oldest->name);
  SSL_SESSION_free(oldest->session);
  *oldest = session_entry{};
  return oldest;
}

}  // namespace

void session_attach(rill_tls_config *cfg, SSL *ssl, const char *name) {
  if (!cfg->session_cap)
    return;
  session_entry *e = find(cfg, name);
  if (!e)
    return;
  if (!SSL_SESSION_is_resumable(e->session)) {
    mem_free(e->name);
    SSL_SESSION_free(e->session);
    *e = session_entry{};
    return;
  }
  e->used = ++cfg->session_clock;
  SSL_set_session(ssl, e->session);
}

// OpenSSL's new-session callback: 1 keeps the reference it hands over.
int session_on_new(SSL *ssl, SSL_SESSION *session) {
  auto *t = static_cast<tls_conn *>(SSL_get_ex_data(ssl, ssl_ex_index()));
  if (!t)
    return 0;
  rill_tls_config *cfg = t->config;
  if (!cfg->session_cap)
    return 0;
  if (!cfg->sessions) {
    cfg->sessions = static_cast<session_entry *>(mem_alloc(cfg->session_cap * sizeof(session_entry)));
    if (!cfg->sessions)
      return 0;
    for (size_t i = 0; i < cfg->session_cap; i++)
      new (&cfg->sessions[i]) session_entry{};
  }
  const char *name = t->name ? t->name : "";
  session_entry *e = find(cfg, name);
  if (e) {
    SSL_SESSION_free(e->session);
  } else {
    e = slot_for(cfg);
    e->name = tls_strdup(name);
    if (!e->name)
      return 0;
  }
  e->session = session;
  e->used = ++cfg->session_clock;
  return 1;
}

void session_cache_free(rill_tls_config *cfg) {
  for (size_t i = 0; cfg->sessions && i < cfg->session_cap; i++) {
    mem_free(cfg->sessions[i].name);
    SSL_SESSION_free(cfg->sessions[i].session);
  }
  mem_free(cfg->sessions);
  cfg->sessions = nullptr;
}

}  // namespace rill::detail
