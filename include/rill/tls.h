/** @file
 * rill — TLS under the connection API (OpenSSL), as Go's crypto/tls.
 *
 * A TLS connection is a rill_conn: on_read sees plaintext, and writes
 * (rill_conn_write, rill_conn_write_ref, rill_conn_try_write), watermarks,
 * deadlines and the closes behave as for TCP. A byte counts as written
 * (rill_conn_bytes_written, a ref write's completion, on_drain) once the
 * record that carries it reached the kernel. rill_conn_close_write() sends
 * close_notify, then FIN; rill_conn_close() sends close_notify behind the
 * data, waiting for the kernel to take it as for the queue;
 * rill_conn_close_now() sends it only if the kernel takes it at once;
 * rill_conn_abort() resets without one. A peer's close_notify
 * reads as RILL_EOF; a stream that ends without one reads as
 * RILL_ETLS_TRUNCATED ("unexpected EOF"), as in Go.
 *
 * Verification is on by default: a client checks the server's chain
 * against the system trust store (or rill_tls_config_set_ca_file()) and its
 * name against the host dialed (rill_tls_dial), which is also sent as SNI.
 * TLS 1.3 is preferred, TLS 1.2 the minimum unless raised.
 *
 * rill built without TLS (CMake RILL_WITH_TLS=OFF) keeps these functions:
 * each returns RILL_ENOTSUP (NULL or nothing where it returns no code).
 *
 * Lifetimes: a config is reference-counted; a dial or a listener holds a
 * reference to the config it was given, so the caller may drop its own at
 * once. A config may be shared by many dials and listeners of one thread;
 * rill_tls_config_reload() and the setters must not run while another
 * thread uses it. */
#ifndef RILL_TLS_H
#define RILL_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "rill/base.h"
#include "rill/net.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What a TLS endpoint needs: trust, certificates, protocols. */
typedef struct rill_tls_config rill_tls_config;
/** A TLS dial in flight: see rill_tls_dial(). */
typedef struct rill_tls_dialer rill_tls_dialer;
/** A TLS listener: see rill_tls_listen(). */
typedef struct rill_tls_listener rill_tls_listener;

/** Roles for rill_tls_config_new(). @{ */
#define RILL_TLS_CLIENT 1 /**< dials: verifies the server */
#define RILL_TLS_SERVER 2 /**< listens: presents a certificate */
/** @} */

/** Protocol versions (rill_tls_config_set_min_version(),
 * rill_tls_conn_version()), the numbers on the wire. @{ */
#define RILL_TLS_VERSION_12 0x0303 /**< TLS 1.2 */
#define RILL_TLS_VERSION_13 0x0304 /**< TLS 1.3 */
/** @} */

/** What a server asks of clients' certificates (Go's ClientAuthType). @{ */
#define RILL_TLS_NO_CLIENT_CERT 0           /**< asks for none (default) */
#define RILL_TLS_REQUEST_CLIENT_CERT 1      /**< asks, accepts none, does not verify */
#define RILL_TLS_VERIFY_CLIENT_CERT_IF_GIVEN 2 /**< verifies one if given */
#define RILL_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT 3 /**< requires one and verifies it */
/** @} */

/** A new configuration for `role` (RILL_TLS_CLIENT or RILL_TLS_SERVER)
 * with one reference. A client trusts the system store until a CA file or
 * directory is set. RILL_EINVAL for another role or a NULL `out`;
 * RILL_ENOMEM. */
RILL_API int rill_tls_config_new(int role, rill_tls_config **out);

/** Takes one more reference. */
RILL_API void rill_tls_config_ref(rill_tls_config *config);

/** Drops a reference; the last one frees the configuration. NULL: no-op. */
RILL_API void rill_tls_config_unref(rill_tls_config *config);

/** Trusts the PEM certificates in `file` instead of the system store (a
 * client's servers, a server's clients). RILL_ETLS_CONFIG when the file
 * cannot be read or holds no certificate. */
RILL_API int rill_tls_config_set_ca_file(rill_tls_config *config, const char *file);

/** As rill_tls_config_set_ca_file(), for a directory hashed by
 * `openssl rehash`. */
RILL_API int rill_tls_config_set_ca_dir(rill_tls_config *config, const char *dir);

/** The certificate chain (PEM, leaf first) and its private key (PEM), read
 * now and again by rill_tls_config_reload(). Required for a server; a
 * client presents it when asked. RILL_ETLS_CONFIG when a file cannot be
 * read or the key does not match the certificate. */
RILL_API int rill_tls_config_set_cert_key_files(rill_tls_config *config, const char *cert_file,
                                                const char *key_file);

/** Re-reads the certificate and key files so that a daemon renews its
 * certificate without a restart (on SIGHUP, say). Handshakes that start
 * afterwards use the new pair; connections already made keep theirs. On
 * failure (RILL_ETLS_CONFIG) the old pair stays in use. RILL_EINVAL when no
 * files were set. */
RILL_API int rill_tls_config_reload(rill_tls_config *config);

/** The application protocols, most preferred first ("h2", "http/1.1"):
 * a client offers them, a server picks the first of its own the client
 * offers (none in common fails the handshake, as Go's server does).
 * `count` 0 clears. RILL_EINVAL for a name empty or over 255 bytes. */
RILL_API int rill_tls_config_set_alpn(rill_tls_config *config, const char *const *protocols,
                                      size_t count);

/** Client: the name to verify and send as SNI instead of the host dialed
 * (needed when dialing an address by number). NULL clears. */
RILL_API int rill_tls_config_set_server_name(rill_tls_config *config, const char *name);

/** Client: skip every check of the server's certificate (Go's
 * InsecureSkipVerify). The connection is then open to a man in the
 * middle; for tests only. */
RILL_API int rill_tls_config_set_insecure_skip_verify(rill_tls_config *config, int on);

/** The lowest version accepted (RILL_TLS_VERSION_12, the default, or
 * RILL_TLS_VERSION_13). */
RILL_API int rill_tls_config_set_min_version(rill_tls_config *config, int version);

/** Server: what it asks of clients' certificates (RILL_TLS_*_CLIENT_CERT),
 * verified against the CA file or directory (else the system store). */
RILL_API int rill_tls_config_set_client_auth(rill_tls_config *config, int mode);

/** Server: picks the configuration whose certificate answers a client
 * that sent `server_name` (never NULL; "" without SNI). Return NULL to keep
 * the listener's own. The returned config must be a server config, must
 * outlive the call, and lends its certificate, key and client
 * verification; ALPN stays the listener's. */
typedef rill_tls_config *(*rill_tls_sni_cb)(const char *server_name, void *arg);

/** Server: sets the SNI selection callback (NULL: none). */
RILL_API int rill_tls_config_set_sni_callback(rill_tls_config *config, rill_tls_sni_cb cb,
                                              void *arg);

/** Client: keeps up to `capacity` sessions (tickets), one per server name,
 * so that a later dial to the same name resumes (an abbreviated handshake).
 * Default 64; 0 turns resumption off. */
RILL_API int rill_tls_config_set_session_cache(rill_tls_config *config, size_t capacity);

/** Server: the longest a handshake may take, in ns, from accept on
 * (default 10 s); a client that does not finish in time is dropped before
 * on_accept (a slow handshake must not hold the listener's resources). */
RILL_API int rill_tls_config_set_handshake_timeout(rill_tls_config *config, uint64_t timeout);

/** Exactly once per rill_tls_dial(): a connection that finished its
 * handshake (status 0; call rill_conn_start() on it), or an error: a dial
 * error (rill_dial_cb's), or a TLS one (RILL_ETLS_*). The dialer handle is
 * gone when this returns; rill_tls_dialer_format_error() may be called
 * inside it. */
typedef void (*rill_tls_dial_cb)(rill_tls_dialer *dialer, rill_conn *conn, int status, void *arg);

/** Dials `address` as rill_dial() does, then makes the TLS handshake as a
 * client of `config` (RILL_TLS_CLIENT). The host of `address` (unless the
 * config names one) is sent as SNI and checked against the certificate.
 * `options->timeout` covers the handshake too. Errors met at once are
 * returned as rill_dial() returns them (RILL_EINVAL for a server config)
 * and no callback follows. *out (may be NULL) gets a handle for
 * rill_tls_dialer_cancel(), valid until the callback returns. */
RILL_API int rill_tls_dial(rill_base *base, const char *network, const char *address,
                           const rill_socket_config *options, rill_tls_config *config,
                           rill_tls_dial_cb on_done, void *arg, rill_tls_dialer **out);

/** Cancels a TLS dial whose callback has not run: it then runs with
 * RILL_ECANCELED from the loop. RILL_ECLOSED from inside its own callback. */
RILL_API int rill_tls_dialer_cancel(rill_tls_dialer *dialer);

/** Formats the dial's error as Go's tls.Dial does: the dial's text for a
 * connect failure ("dial tcp 127.0.0.1:1: connect: connection refused"),
 * the handshake's for a TLS one ("tls: failed to verify certificate: x509:
 * certificate is valid for localhost, not wrong.test"). Returns as
 * rill_format_op_error() does. */
RILL_API int rill_tls_dialer_format_error(const rill_tls_dialer *dialer, int err, char *buf,
                                          size_t size);

/** A connection whose server handshake finished (status 0), or an accept
 * error (status < 0, conn NULL) after which the listener keeps running, as
 * rill_accept_cb. Handshake failures never come here. */
typedef void (*rill_tls_accept_cb)(rill_tls_listener *listener, rill_conn *conn, int status,
                                   void *arg);

/** Optional: a handshake failed (`err` RILL_ETLS_*, RILL_ETIMEOUT for the
 * handshake timeout, a read error); `text` words it as Go's server logs
 * it. The connection is already gone. */
typedef void (*rill_tls_handshake_error_cb)(rill_tls_listener *listener, int err, const char *text,
                                            void *arg);

/** Listens as rill_listen() does and makes the server handshake with each
 * connection (`config`: RILL_TLS_SERVER, with a certificate) before handing
 * it to `on_accept`. RILL_EINVAL for a client config or one without a
 * certificate. */
RILL_API int rill_tls_listen(rill_base *base, const char *network, const char *address,
                             const rill_socket_config *options, rill_tls_config *config,
                             rill_tls_accept_cb on_accept, void *arg, rill_tls_listener **out);

/** Sets the handshake error hook (NULL: failures are dropped silently). */
RILL_API int rill_tls_listener_set_error_hook(rill_tls_listener *listener,
                                              rill_tls_handshake_error_cb cb, void *arg);

/** The TCP listener under it, for rill_listener_addr(), _port(), _stop()
 * and _start() (never rill_listener_free()). */
RILL_API rill_listener *rill_tls_listener_listener(rill_tls_listener *listener);

/** Stops accepting, closes the socket, and drops the connections still in
 * their handshake (no callback for them). The handle is gone when this
 * returns, or when its own on_accept returns. */
RILL_API void rill_tls_listener_free(rill_tls_listener *listener);

/** The negotiated protocol version (RILL_TLS_VERSION_13 ...), or
 * RILL_EINVAL for a NULL or plain connection. */
RILL_API int rill_tls_conn_version(const rill_conn *conn);

/** The application protocol agreed by ALPN into `buf`: its length (0 for
 * none), RILL_EINVAL for a NULL or plain connection or a `buf` too small. */
RILL_API int rill_tls_conn_alpn(const rill_conn *conn, char *buf, size_t size);

/** 1 when the handshake resumed an earlier session, 0 when it was full,
 * RILL_EINVAL for a NULL or plain connection. */
RILL_API int rill_tls_conn_resumed(const rill_conn *conn);

/** The peer certificate's subject ("CN=localhost,O=rill"), its length: 0
 * when the peer sent none; RILL_EINVAL as rill_tls_conn_alpn(). */
RILL_API int rill_tls_conn_peer_subject(const rill_conn *conn, char *buf, size_t size);

/** The SNI name the client sent (server side) or the name verified
 * (client side): its length, 0 for none; RILL_EINVAL as rill_tls_conn_alpn(). */
RILL_API int rill_tls_conn_server_name(const rill_conn *conn, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* RILL_TLS_H */
