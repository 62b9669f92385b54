// lib/tls's internal types, shared by its files.
//
// How TLS sits under a rill_conn: the connection keeps its socket, its read
// and write paths, its queue, deadlines and lifetime; lib/tls only replaces
// the three socket calls those paths make (conn_transport in
// net/net_impl.h). OpenSSL reads and writes the socket through a BIO of
// ours (conn.cpp): records go from OpenSSL's own buffer straight to send(),
// and only the tail of a record the kernel did not take is copied aside
// ("out", at most one record). The plaintext a write handed over is
// reported taken once its record is wholly in the kernel, so the write
// queue, on_drain and a graceful close wait for TLS as they wait for TCP.
//
// Before the handshake finishes the connection belongs to lib/tls alone:
// its readiness goes to the handshake (conn_io_hook, as pipe.cpp uses it),
// and the dial or the listener hands it to the user only once it is done.
//
// Lifetime (core/lifetime.h): the tls_conn lives inside the connection's
// lifetime; it is freed with the connection (conn_transport::destroy). A
// config is refcounted; each tls_conn holds a reference.
#ifndef RILL_TLS_IMPL_H
#define RILL_TLS_IMPL_H

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <cstddef>
#include <cstdint>

#include "net/net_impl.h"
#include "rill/timer.h"
#include "rill/tls.h"

namespace rill::detail {

struct session_entry {
  char *name = nullptr;
  SSL_SESSION *session = nullptr;
  uint64_t used = 0;  // for evicting the least recently used
};

}  // namespace rill::detail

struct rill_tls_config {
  int refs = 1;
  int role = 0;
  SSL_CTX *ctx = nullptr;
  char *cert_file = nullptr;
  char *key_file = nullptr;
  char *server_name = nullptr;
  unsigned char *alpn = nullptr;  // wire form: length-prefixed names
  size_t alpn_len = 0;
  bool trust_set = false;  // a CA file/dir replaced the system store
  bool insecure = false;
  int client_auth = RILL_TLS_NO_CLIENT_CERT;
  rill_tls_sni_cb sni_cb = nullptr;
  void *sni_arg = nullptr;
  uint64_t handshake_timeout = 10 * RILL_SEC;
  // Client sessions by server name (session.cpp).
  rill::detail::session_entry *sessions = nullptr;
  size_t session_cap = 64;
  uint64_t session_clock = 0;
};

namespace rill::detail {

struct tls_conn;
// The handshake's end: status 0, or the error (the connection is then the
// owner's to close).
using tls_done_fn = void (*)(tls_conn *t, int status, void *arg);

struct tls_conn {
  rill_conn *c = nullptr;
  SSL *ssl = nullptr;
  rill_tls_config *config = nullptr;
  // Ciphertext the kernel did not take yet (at most about one record).
  char *out = nullptr;
  size_t out_off = 0, out_len = 0, out_cap = 0;
  // `out` holds a TLS 1.3 server's session ticket, kept to go out with the
  // first reply (conn.cpp, "The session ticket"): not yet pending for the
  // write path. Any flush of `out` ends it.
  bool ticket_held = false;
  pending_node ticket_flush{};  // sends a held ticket no reply took (conn.cpp)
  // The FIN rill_conn_close_write asked for, sent once `out` is flushed.
  bool fin_wanted = false;
  bool fin_sent = false;
  int sys_err = 0;        // errno of the BIO's last failed recv/send
  bool eof = false;       // recv() gave 0
  // The last SSL_read met the socket's EAGAIN: what OpenSSL holds (part of
  // a record) waits for bytes the socket's readiness announces.
  bool starved = false;
  int read_err = 0;       // a read error met after bytes were returned
  bool seen_first = false;  // for "not TLS": the first byte read
  bool not_tls = false;
  bool server = false;
  bool handshaken = false;
  bool said_goodbye = false;  // close_notify sent
  // One timer, made by the first use, for two jobs that never overlap:
  // the handshake's deadline while `done` is set, then the kick that reads
  // what OpenSSL holds (conn.cpp). One allocation per connection, not two.
  rill_timer *timer = nullptr;
  bool refused_renegotiation = false;  // sent no_renegotiation: the read fails
  conn_io_hook hook{};
  tls_done_fn done = nullptr;
  void *done_arg = nullptr;
  char *name = nullptr;  // the name verified (client) or sent by SNI (server)
  char verify_text[256] = "";  // "x509: certificate is valid for ..."
};

inline tls_conn *tls_of(const rill_conn *c) {
  return c && c->transport() ? static_cast<tls_conn *>(c->rare->transport_state) : nullptr;
}

// Before an OpenSSL call whose failure SSL_get_error (or tls_map_error)
// interprets: both read the thread's error queue, where an error another
// connection or the application left would be taken for this call's.
// ERR_clear_error() costs about 800 instructions whatever the queue holds
// (it resets every slot), a tenth of a 64-byte echo's; ERR_peek_error() a
// few dozen, and the queue is empty on nearly every call. SSL_get_error
// tells an error only by ERR_peek_error() being non-zero, so a queue it
// finds empty needs no clearing.
inline void tls_clear_stale_errors() {
  if (ERR_peek_error())
    ERR_clear_error();
}

// conn.cpp: the BIO and the transport.
extern const conn_transport tls_transport;
BIO_METHOD *tls_bio_method();  // nullptr when out of memory
int tls_flush_out(tls_conn *t);  // 1 flushed, 0 wait for writable, or -errno
// A ticket held back (ticket_held) as the handshake ended: arms the kick
// that reads the request OpenSSL holds, after which the pending queue sends
// the ticket unless a reply took it along.
void tls_hold_ticket(tls_conn *t);
bool tls_out_pending(const tls_conn *t);
void tls_conn_free(tls_conn *t);
int tls_timer_make(tls_conn *t);  // t->timer, made if missing: 0 or an error

// handshake.cpp: starts the handshake on `c` (deadline 0: none, else an
// absolute time on the rill_time_now() clock). `name`: the client's server
// name to send and verify. done runs once, from the loop.
int tls_handshake_start(rill_conn *c, rill_tls_config *cfg, bool server, const char *name,
                        uint64_t deadline, tls_done_fn done, void *arg);
// Gives the connection up: the handshake stops, no done follows.
void tls_handshake_abandon(tls_conn *t);
// The timer fired during the handshake: its deadline passed.
void tls_handshake_expired(tls_conn *t);

// config.cpp
int config_prepare(rill_tls_config *cfg);  // trust store, before first use
int config_ex_index();                      // SSL_CTX ex-data slot for the config
int ssl_ex_index();                         // SSL ex-data slot for the tls_conn

// session.cpp: the client's session cache.
void session_attach(rill_tls_config *cfg, SSL *ssl, const char *name);
int session_on_new(SSL *ssl, SSL_SESSION *session);
void session_cache_free(rill_tls_config *cfg);

// errors.cpp: an OpenSSL failure as a rill code.
int tls_map_error(tls_conn *t, int ssl_ret);
// The handshake error as Go words it ("tls: failed to verify certificate: ...").
int tls_format_error(const tls_conn *t, int err, char *buf, size_t size);
char *tls_strdup(const char *s);

}  // namespace rill::detail

#endif
