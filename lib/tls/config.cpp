// rill_tls_config: one SSL_CTX and what rill keeps beside it (the file
// names for a reload, the ALPN list, the SNI callback).
//
// Defaults are Go's: TLS 1.2 at least and 1.3 preferred, renegotiation
// refused, one session ticket per handshake, verification on for clients.
// The system trust store is loaded on first use, and only when no CA file
// or directory replaced it (Go's RootCAs replaces, never adds).
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <cstring>

#include "core/alloc.h"
#include "tls/tls_impl.h"

using namespace rill::detail;

namespace rill::detail {

char *tls_strdup(const char *s) {
  size_t n = std::strlen(s) + 1;
  char *p = static_cast<char *>(mem_alloc(n));
  if (p)
    std::memcpy(p, s, n);
  return p;
}

namespace {

int ex_index(int *slot, bool ctx) {
  int i = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (i >= 0)
    return i;
  int made = ctx ? SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr)
                 : SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  int expected = -1;
  if (!__atomic_compare_exchange_n(slot, &expected, made, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    return expected;  // another thread won; its slot serves as well
  return made;
}

int config_slot = -1;
int ssl_slot = -1;

rill_tls_config *config_of(SSL_CTX *ctx) {
  return static_cast<rill_tls_config *>(SSL_CTX_get_ex_data(ctx, config_ex_index()));
}

// Server ALPN: the first of our protocols the client offers (Go picks by
// the server's preference too); none in common refuses the handshake.
int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *out_len, const unsigned char *in,
            unsigned int in_len, void *) {
  rill_tls_config *cfg = config_of(SSL_get_SSL_CTX(ssl));
  // After an SNI switch the context is the chosen config's; ALPN stays the
  // listener's, which the tls_conn holds.
  auto *t = static_cast<tls_conn *>(SSL_get_ex_data(ssl, ssl_ex_index()));
  if (t)
    cfg = t->config;
  if (!cfg || !cfg->alpn_len)
    return SSL_TLSEXT_ERR_NOACK;
  for (size_t i = 0; i < cfg->alpn_len; i += 1 + cfg->alpn[i]) {
    for (unsigned j = 0; j < in_len; j += 1u + in[j]) {
      if (in[j] == cfg->alpn[i] && j + 1u + in[j] <= in_len &&
          std::memcmp(in + j + 1, cfg->alpn + i + 1, in[j]) == 0) {
        *out = in + j + 1;
        *out_len = in[j];
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

int verify_mode(int client_auth) {
  switch (client_auth) {
    case RILL_TLS_REQUEST_CLIENT_CERT:
      return SSL_VERIFY_PEER;
    case RILL_TLS_VERIFY_CLIENT_CERT_IF_GIVEN:
      return SSL_VERIFY_PEER;
    case RILL_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT:
      return SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    default:
      return SSL_VERIFY_NONE;
  }
}

// RILL_TLS_REQUEST_CLIENT_CERT asks but does not verify (Go's RequestClientCert).
int accept_any(int, X509_STORE_CTX *) { return 1; }

void apply_client_auth(SSL *ssl, const rill_tls_config *cfg) {
  SSL_set_verify(ssl, verify_mode(cfg->client_auth),
                 cfg->client_auth == RILL_TLS_REQUEST_CLIENT_CERT ? accept_any : nullptr);
}

// Server SNI: the user's callback may lend another config's certificate.
int on_server_name(SSL *ssl, int *, void *) {
  rill_tls_config *cfg = config_of(SSL_get_SSL_CTX(ssl));
  auto *t = static_cast<tls_conn *>(SSL_get_ex_data(ssl, ssl_ex_index()));
  const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (t && name && !t->name)
    t->name = tls_strdup(name);
  if (!cfg || !cfg->sni_cb)
    return SSL_TLSEXT_ERR_OK;
  rill_tls_config *chosen = cfg->sni_cb(name ? name : "", cfg->sni_arg);
  if (!chosen || chosen == cfg)
    return SSL_TLSEXT_ERR_OK;
  if (chosen->role != RILL_TLS_SERVER || !chosen->cert_file)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  if (!SSL_set_SSL_CTX(ssl, chosen->ctx))
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  apply_client_auth(ssl, chosen);
  return SSL_TLSEXT_ERR_OK;
}

// Loads the pair into temporaries first, so that a failed reload leaves
// the context as it was.
int load_pair(rill_tls_config *cfg, const char *cert_file, const char *key_file) {
  int err = RILL_ETLS_CONFIG;
  X509 *leaf = nullptr;
  STACK_OF(X509) *chain = sk_X509_new_null();
  EVP_PKEY *key = nullptr;
  BIO *in = BIO_new_file(cert_file, "r");
  if (in && chain) {
    leaf = PEM_read_bio_X509(in, nullptr, nullptr, nullptr);
    while (X509 *extra = PEM_read_bio_X509(in, nullptr, nullptr, nullptr)) {
      if (!sk_X509_push(chain, extra))
        X509_free(extra);
    }
  }
  BIO_free(in);
  in = leaf ? BIO_new_file(key_file, "r") : nullptr;
  if (in)
    key = PEM_read_bio_PrivateKey(in, nullptr, nullptr, nullptr);
  BIO_free(in);
  if (leaf && key && X509_check_private_key(leaf, key) == 1 &&
      SSL_CTX_use_cert_and_key(cfg->ctx, leaf, key, chain, 1) == 1)
    err = 0;
  X509_free(leaf);
  EVP_PKEY_free(key);
  sk_X509_pop_free(chain, X509_free);
  ERR_clear_error();
  return err;
}

}  // namespace

int config_ex_index() { return ex_index(&config_slot, true); }
int ssl_ex_index() { return ex_index(&ssl_slot, false); }

int config_prepare(rill_tls_config *cfg) {
  if (cfg->trust_set)
    return 0;
  // The system store: for a client's servers, and for a server's clients
  // when it verifies them.
  if (cfg->role == RILL_TLS_CLIENT || cfg->client_auth >= RILL_TLS_VERIFY_CLIENT_CERT_IF_GIVEN) {
    SSL_CTX_set_default_verify_paths(cfg->ctx);
    ERR_clear_error();
  }
  cfg->trust_set = true;
  return 0;
}

}  // namespace rill::detail

extern "C" {

int rill_tls_config_new(int role, rill_tls_config **out) {
  if (!out || (role != RILL_TLS_CLIENT && role != RILL_TLS_SERVER))
    return RILL_EINVAL;
  *out = nullptr;
  int slot = config_ex_index();
  if (slot < 0 || ssl_ex_index() < 0)
    return RILL_ENOMEM;
  auto *cfg = make<rill_tls_config>();
  if (!cfg)
    return RILL_ENOMEM;
  cfg->role = role;
  cfg->ctx = SSL_CTX_new(role == RILL_TLS_CLIENT ? TLS_client_method() : TLS_server_method());
  if (!cfg->ctx || !SSL_CTX_set_ex_data(cfg->ctx, slot, cfg)) {
    rill_tls_config_unref(cfg);
    return RILL_ENOMEM;
  }
  SSL_CTX *ctx = cfg->ctx;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (role == RILL_TLS_CLIENT) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, session_on_new);
  } else {
    SSL_CTX_set_num_tickets(ctx, 1);
    // Resumption checks a session's context; a server that verifies
    // clients refuses to resume without one.
    static const unsigned char sid_ctx[] = "rill";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, nullptr);
    SSL_CTX_set_tlsext_servername_callback(ctx, on_server_name);
  }
  *out = cfg;
  return 0;
}

void rill_tls_config_ref(rill_tls_config *config) {
  if (config)
    config->refs++;
}

void rill_tls_config_unref(rill_tls_config *config) {
  if (!config || --config->refs > 0)
    return;
  session_cache_free(config);
  SSL_CTX_free(config->ctx);
  mem_free(config->cert_file);
  mem_free(config->key_file);
  mem_free(config->server_name);
  mem_free(config->alpn);
  destroy(config);
}

static int set_store(rill_tls_config *config, const char *file, const char *dir) {
  if (!config || (!file && !dir))
    return RILL_EINVAL;
  X509_STORE *store = X509_STORE_new();
  if (!store)
    return RILL_ENOMEM;
  if (X509_STORE_load_locations(store, file, dir) != 1) {
    X509_STORE_free(store);
    ERR_clear_error();
    return RILL_ETLS_CONFIG;
  }
  SSL_CTX_set_cert_store(config->ctx, store);  // replaces (and frees) the old one
  config->trust_set = true;
  return 0;
}

int rill_tls_config_set_ca_file(rill_tls_config *config, const char *file) {
  return file ? set_store(config, file, nullptr) : RILL_EINVAL;
}

int rill_tls_config_set_ca_dir(rill_tls_config *config, const char *dir) {
  return dir ? set_store(config, nullptr, dir) : RILL_EINVAL;
}

int rill_tls_config_set_cert_key_files(rill_tls_config *config, const char *cert_file,
                                       const char *key_file) {
  if (!config || !cert_file || !key_file)
    return RILL_EINVAL;
  char *cert = tls_strdup(cert_file);
  char *key = tls_strdup(key_file);
  if (!cert || !key) {
    mem_free(cert);
    mem_free(key);
    return RILL_ENOMEM;
  }
  int err = load_pair(config, cert, key);
  if (err) {
    mem_free(cert);
    mem_free(key);
    return err;
  }
  mem_free(config->cert_file);
  mem_free(config->key_file);
  config->cert_file = cert;
  config->key_file = key;
  return 0;
}

int rill_tls_config_reload(rill_tls_config *config) {
  if (!config || !config->cert_file)
    return RILL_EINVAL;
  return load_pair(config, config->cert_file, config->key_file);
}

int rill_tls_config_set_alpn(rill_tls_config *config, const char *const *protocols, size_t count) {
  if (!config || (count && !protocols))
    return RILL_EINVAL;
  size_t len = 0;
  for (size_t i = 0; i < count; i++) {
    size_t n = protocols[i] ? std::strlen(protocols[i]) : 0;
    if (n == 0 || n > 255)
      return RILL_EINVAL;
    len += 1 + n;
  }
  unsigned char *wire = count ? static_cast<unsigned char *>(mem_alloc(len)) : nullptr;
  if (count && !wire)
    return RILL_ENOMEM;
  for (size_t i = 0, at = 0; i < count; i++) {
    size_t n = std::strlen(protocols[i]);
    wire[at++] = static_cast<unsigned char>(n);
    std::memcpy(wire + at, protocols[i], n);
    at += n;
  }
  if (config->role == RILL_TLS_CLIENT &&
      SSL_CTX_set_alpn_protos(config->ctx, wire, static_cast<unsigned>(len)) != 0) {
    mem_free(wire);
    return RILL_ENOMEM;
  }
  mem_free(config->alpn);
  config->alpn = wire;
  config->alpn_len = len;
  return 0;
}

int rill_tls_config_set_server_name(rill_tls_config *config, const char *name) {
  if (!config)
    return RILL_EINVAL;
  char *copy = name ? tls_strdup(name) : nullptr;
  if (name && !copy)
    return RILL_ENOMEM;
  mem_free(config->server_name);
  config->server_name = copy;
  return 0;
}

int rill_tls_config_set_insecure_skip_verify(rill_tls_config *config, int on) {
  if (!config)
    return RILL_EINVAL;
  config->insecure = on != 0;
  return 0;
}

int rill_tls_config_set_min_version(rill_tls_config *config, int version) {
  if (!config || (version != RILL_TLS_VERSION_12 && version != RILL_TLS_VERSION_13))
    return RILL_EINVAL;
  SSL_CTX_set_min_proto_version(config->ctx, version);
  return 0;
}

int rill_tls_config_set_client_auth(rill_tls_config *config, int mode) {
  if (!config || mode < RILL_TLS_NO_CLIENT_CERT || mode > RILL_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT)
    return RILL_EINVAL;
  config->client_auth = mode;
  if (config->role == RILL_TLS_SERVER)
    SSL_CTX_set_verify(config->ctx, verify_mode(mode),
                       mode == RILL_TLS_REQUEST_CLIENT_CERT ? accept_any : nullptr);
  return 0;
}

int rill_tls_config_set_sni_callback(rill_tls_config *config, rill_tls_sni_cb cb, void *arg) {
  if (!config || config->role != RILL_TLS_SERVER)
    return RILL_EINVAL;
  config->sni_cb = cb;
  config->sni_arg = arg;
  return 0;
}

int rill_tls_config_set_session_cache(rill_tls_config *config, size_t capacity) {
  if (!config)
    return RILL_EINVAL;
  session_cache_free(config);
  config->session_cap = capacity;
  return 0;
}

int rill_tls_config_set_handshake_timeout(rill_tls_config *config, uint64_t timeout) {
  if (!config)
    return RILL_EINVAL;
  config->handshake_timeout = timeout;
  return 0;
}

}  // extern "C"
