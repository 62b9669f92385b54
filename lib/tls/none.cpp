// Built without OpenSSL (CMake RILL_WITH_TLS=OFF, or OpenSSL not found):
// every TLS entry point is here and says so with RILL_ENOTSUP, so programs
// link the same either way and learn at run time.
#include "rill/tls.h"

extern "C" {
int rill_tls_config_new(int, rill_tls_config **) { return RILL_ENOTSUP; }
void rill_tls_config_ref(rill_tls_config *) {}
void rill_tls_config_unref(rill_tls_config *) {}
int rill_tls_config_set_ca_file(rill_tls_config *, const char *) { return RILL_ENOTSUP; }
int rill_tls_config_set_ca_dir(rill_tls_config *, const char *) { return RILL_ENOTSUP; }
int rill_tls_config_set_cert_key_files(rill_tls_config *, const char *, const char *) { return RILL_ENOTSUP; }
int rill_tls_config_reload(rill_tls_config *) { return RILL_ENOTSUP; }
int rill_tls_config_set_alpn(rill_tls_config *, const char *const *, size_t) { return RILL_ENOTSUP; }
int rill_tls_config_set_server_name(rill_tls_config *, const char *) { return RILL_ENOTSUP; }
int rill_tls_config_set_insecure_skip_verify(rill_tls_config *, int) { return RILL_ENOTSUP; }
int rill_tls_config_set_min_version(rill_tls_config *, int) { return RILL_ENOTSUP; }
int rill_tls_config_set_client_auth(rill_tls_config *, int) { return RILL_ENOTSUP; }
int rill_tls_config_set_sni_callback(rill_tls_config *, rill_tls_sni_cb, void *) { return RILL_ENOTSUP; }
int rill_tls_config_set_session_cache(rill_tls_config *, size_t) { return RILL_ENOTSUP; }
int rill_tls_config_set_handshake_timeout(rill_tls_config *, uint64_t) { return RILL_ENOTSUP; }
int rill_tls_dial(rill_base *, const char *, const char *, const rill_socket_config *, rill_tls_config *, rill_tls_dial_cb, void *, rill_tls_dialer **) { return RILL_ENOTSUP; }
int rill_tls_dialer_cancel(rill_tls_dialer *) { return RILL_ENOTSUP; }
int rill_tls_dialer_format_error(const rill_tls_dialer *, int, char *, size_t) { return RILL_ENOTSUP; }
int rill_tls_listen(rill_base *, const char *, const char *, const rill_socket_config *, rill_tls_config *, rill_tls_accept_cb, void *, rill_tls_listener **) { return RILL_ENOTSUP; }
int rill_tls_listener_set_error_hook(rill_tls_listener *, rill_tls_handshake_error_cb, void *) { return RILL_ENOTSUP; }
rill_listener * rill_tls_listener_listener(rill_tls_listener *) { return nullptr; }
void rill_tls_listener_free(rill_tls_listener *) {}
int rill_tls_conn_version(const rill_conn *) { return RILL_ENOTSUP; }
int rill_tls_conn_alpn(const rill_conn *, char *, size_t) { return RILL_ENOTSUP; }
int rill_tls_conn_resumed(const rill_conn *) { return RILL_ENOTSUP; }
int rill_tls_conn_peer_subject(const rill_conn *, char *, size_t) { return RILL_ENOTSUP; }
int rill_tls_conn_server_name(const rill_conn *, char *, size_t) { return RILL_ENOTSUP; }

}  // extern "C"
