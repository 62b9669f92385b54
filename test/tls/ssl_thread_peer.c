/* A blocking OpenSSL client on a thread (ssl_thread_peer.h); nothing
 * when rill was built without TLS (its tests then check nothing of it). */
#ifdef RILL_TEST_HAVE_TLS
#include "ssl_thread_peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "test_util.h"

int sp_get(const int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void sp_put(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

int sp_wait_for(const int *p, int want) {
  uint64_t end = tu_now_ms() + SP_GUARD_MS;
  while (sp_get(p) < want) {
    if (tu_now_ms() > end)
      return -1;
    tu_sleep_ms(1);
  }
  return 0;
}

int sp_bio_flush(int fd, BIO *out) {
  char buf[1 << 16];
  size_t len = 0;
  int n;
  while ((n = BIO_read(out, buf + len, (int)(sizeof buf - len))) > 0)
    len += (size_t)n;
  return len == 0 || send(fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

int sp_bio_feed(int fd, BIO *in) {
  char buf[1 << 16];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  return n > 0 && BIO_write(in, buf, (int)n) == (int)n ? 0 : -1;
}

int sp_connect(int port, const char *path, int rcvbuf) {
  int fd = socket(path ? AF_UNIX : AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  if (rcvbuf)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct timeval tv = {SP_GUARD_MS / 1000, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int r;
  if (path) {
    struct sockaddr_un u;
    memset(&u, 0, sizeof u);
    u.sun_family = AF_UNIX;
    snprintf(u.sun_path, sizeof u.sun_path, "%s", path);
    r = connect(fd, (struct sockaddr *)&u, sizeof u);
  } else {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r = connect(fd, (struct sockaddr *)&a, sizeof a);
  }
  if (r < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

SSL_CTX *sp_client_ctx(void) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (ctx)
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  return ctx;
}

void *sp_read_stream(void *arg) {
  sp_reader *r = arg;
  SSL_CTX *ctx = sp_client_ctx();
  SSL *ssl = ctx ? SSL_new(ctx) : NULL;
  int fd = ssl ? sp_connect(r->port, r->path, r->rcvbuf) : -1;
  if (fd < 0)
    goto out;
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1)
    goto out;
  r->handshaken = 1;
  if (sp_wait_for(r->go, 1) < 0 || r->hang_up)
    goto out;
  for (;;) {
    size_t n = 0;
    size_t room = r->cap - r->got;
    if (!room || SSL_read_ex(ssl, r->buf + r->got, room > 65536 ? 65536 : room, &n) != 1) {
      r->clean = room && SSL_get_error(ssl, 0) == SSL_ERROR_ZERO_RETURN;
      break;
    }
    r->got += n;
  }
  /* After close_notify, or after whatever cut the stream short: the FIN
   * reads as 0 (no more bytes come; a guard's timeout reads as -1). */
  char byte;
  ssize_t got;
  while ((got = recv(fd, &byte, 1, 0)) > 0) {
  }
  r->fin = got == 0;
out:
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  if (fd >= 0)
    close(fd);
  sp_put(&r->done, 1);
  return NULL;
}

#endif /* RILL_TEST_HAVE_TLS */
