/* tls_peer.h — what the C TLS echo servers (raw_tls_epoll_server.c,
 * libevent_tls_server.c) share, so that only the event and TLS plumbing
 * differs between them: the command line and the SSL_CTX.
 *
 *   <server> --cert FILE --key FILE [--listen ADDR] [--quiet]
 *
 * This command line is the contract run_tls.sh relies on: every TLS echo
 * server it runs (Go's, rill's once they exist) takes these flags. FILE is
 * PEM; the certificate file may hold the chain. The listening socket and
 * TCP_NODELAY come from ../echo_peer.h, as for the plain echo servers.
 *
 * The SSL_CTX: TLS 1.3 only, TLS_AES_128_GCM_SHA256 only, X25519 only (what
 * tls_loadgen offers anyway), stateless session tickets (OpenSSL's TLS 1.3
 * default), one ticket per handshake (as Go sends; OpenSSL's default is two),
 * an EOF without close_notify read as a clean end. Read-ahead (one read() per
 * socket wake-up, not two per record) is the raw server's own: libevent
 * 2.1's bufferevent_openssl stalls with it, as it does not look for records
 * OpenSSL has buffered when the handshake ends (the client's first message
 * arrives with its Finished and is never read). */
#ifndef RILL_BENCH_TLS_PEER_H
#define RILL_BENCH_TLS_PEER_H

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "../echo_peer.h"

struct tls_options {
  const char *address;
  const char *cert;
  const char *key;
  int quiet;
};

static inline struct tls_options tls_parse_args(int argc, char **argv) {
  struct tls_options o = {"127.0.0.1:7000", NULL, NULL, 0};
  int i;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
      o.address = argv[++i];
    else if (strcmp(argv[i], "--cert") == 0 && i + 1 < argc)
      o.cert = argv[++i];
    else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
      o.key = argv[++i];
    else if (strcmp(argv[i], "--quiet") == 0)
      o.quiet = 1;
    else
      break;
  }
  if (i < argc || !o.cert || !o.key) {
    fprintf(stderr, "usage: %s --cert FILE --key FILE [--listen ADDR] [--quiet]\n", argv[0]);
    exit(2);
  }
  return o;
}

/* The server context described above; exits on failure. */
static inline SSL_CTX *tls_server_ctx(const char *name, const struct tls_options *o) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
      !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
      !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") || !SSL_CTX_set1_groups_list(ctx, "X25519") ||
      SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1 ||
      !SSL_CTX_set_num_tickets(ctx, 1)) {
    fprintf(stderr, "%s: cannot set up TLS with %s and %s:\n", name, o->cert, o->key);
    ERR_print_errors_fp(stderr);
    exit(1);
  }
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  return ctx;
}

#endif
