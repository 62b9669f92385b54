/* The fake DNS server (fake_dns.h). One thread polls a UDP socket, a TCP
 * listener, the TCP connections and a stop pipe; delayed responses wait in a
 * list whose earliest due time bounds the poll timeout. The wire format is
 * written by hand (RFC 1035): a 12-byte header, the question echoed as
 * received, then answer records with the question's name compressed to a
 * pointer at offset 12 where it is the owner. */
#define _GNU_SOURCE 1

#include "fake_dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_NAME 256   /* a dotted name, NUL included */
#define MAX_MSG 65535  /* a TCP message's length field */
#define MAX_CONNS 64

enum { RCODE_OK = 0, RCODE_FORMERR = 1, RCODE_SERVFAIL = 2, RCODE_NXDOMAIN = 3, RCODE_REFUSED = 5 };

struct rule {
  fake_dns_rule r;  /* strings owned */
  unsigned matched; /* queries matched so far (for drop_first) */
};

struct delayed {
  uint64_t due_ns;
  int tcp;
  unsigned conn_gen; /* TCP: the connection it belongs to */
  int conn_fd;
  struct sockaddr_storage peer; /* UDP */
  socklen_t peer_len;
  size_t len;
  unsigned char *msg;
};

struct conn {
  int fd; /* -1: free slot */
  unsigned gen;
  size_t have;
  unsigned char buf[2 + MAX_MSG];
};

struct fake_dns {
  int udp_fd;
  int tcp_fd;
  int stop_pipe[2];
  int port;
  char server[32];
  pthread_t thread;
  int thread_started;

  pthread_mutex_t mu; /* rules, counters, name log, delayed count */
  struct rule *rules;
  size_t nrules, rules_cap;
  unsigned q_udp, q_tcp, responses;
  char **names; /* every question's name, for fake_dns_queries_for */
  size_t nnames, names_cap;
  unsigned char *raw; /* raw mode's response, or NULL (rules answer) */
  size_t raw_len;
  int raw_flags;

  /* The thread's own state (no lock). */
  struct delayed *delayed;
  size_t ndelayed, delayed_cap;
  unsigned ndelayed_shared; /* under mu, for fake_dns_delayed */
  unsigned nconns_shared;   /* under mu, for fake_dns_wait_idle */
  struct conn *conns;       /* MAX_CONNS */
  unsigned next_gen;
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static char *dup_str(const char *s) {
  if (!s)
    return NULL;
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d)
    memcpy(d, s, n);
  return d;
}

static int set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
    return -errno;
  return 0;
}

/* ---- names ------------------------------------------------------------ */

/* Length without one trailing dot. */
static size_t name_len(const char *n) {
  size_t l = strlen(n);
  if (l && n[l - 1] == '.')
    l--;
  return l;
}

/* `pattern` ("a.test" or "*.test") against a dotted question name. */
static int name_matches(const char *pattern, const char *name) {
  size_t lp = name_len(pattern), ln = name_len(name);
  if (lp >= 2 && pattern[0] == '*' && pattern[1] == '.') {
    size_t ls = lp - 1; /* ".suffix" */
    return ln > ls && strncasecmp(name + ln - ls, pattern + 1, ls) == 0;
  }
  return lp == ln && strncasecmp(pattern, name, ln) == 0;
}

/* Parses the question name at `off` into dotted text; returns the offset
 * after it, or 0 if malformed or compressed. */
static size_t parse_name(const unsigned char *msg, size_t len, size_t off, char *out) {
  size_t o = 0;
  for (;;) {
    if (off >= len)
      return 0;
    unsigned l = msg[off++];
    if (l == 0)
      break;
    if (l & 0xC0)
      return 0; /* a pointer (or reserved bits): not in a question we accept */
    if (off + l > len || o + l + 2 > MAX_NAME)
      return 0;
    if (o)
      out[o++] = '.';
    memcpy(out + o, msg + off, l);
    o += l;
    off += l;
  }
  if (o == 0)
    out[o++] = '.'; /* the root */
  out[o] = '\0';
  return off;
}

/* ---- building messages ------------------------------------------------ */

struct builder {
  unsigned char *buf;
  size_t len, cap;
  int overflow;
};

static void put(struct builder *b, const void *data, size_t n) {
  if (b->len + n > b->cap) {
    b->overflow = 1;
    return;
  }
  memcpy(b->buf + b->len, data, n);
  b->len += n;
}

static void put16(struct builder *b, unsigned v) {
  unsigned char x[2] = {(unsigned char)(v >> 8), (unsigned char)v};
  put(b, x, 2);
}

static void put32(struct builder *b, uint32_t v) {
  put16(b, v >> 16);
  put16(b, v & 0xFFFF);
}

/* A dotted name as labels, uncompressed. */
static void put_name(struct builder *b, const char *name) {
  const char *p = name;
  while (*p && !(p[0] == '.' && p[1] == '\0')) {
    const char *dot = strchr(p, '.');
    size_t l = dot ? (size_t)(dot - p) : strlen(p);
    if (l == 0 || l > 63) {
      b->overflow = 1;
      return;
    }
    unsigned char lb = (unsigned char)l;
    put(b, &lb, 1);
    put(b, p, l);
    p += l;
    if (*p == '.')
      p++;
  }
  unsigned char zero = 0;
  put(b, &zero, 1);
}

/* The owner of a record: a pointer to the question's name when it is the
 * question's name, else the name written out. */
static void put_owner(struct builder *b, const char *owner, const char *qname) {
  if (strcasecmp(owner, qname) == 0)
    put16(b, 0xC000 | 12);
  else
    put_name(b, owner);
}

/* Splits `list` at commas into `items` (pointers into `copy`). */
static size_t split_list(const char *list, char *copy, size_t copy_size, char **items, size_t max) {
  size_t n = 0;
  if (!list || !*list)
    return 0;
  snprintf(copy, copy_size, "%s", list);
  char *save = NULL;
  for (char *t = strtok_r(copy, ", ", &save); t && n < max; t = strtok_r(NULL, ", ", &save))
    items[n++] = t;
  return n;
}

/* Builds the response to the query in msg[0..qend) (header + question). */
static size_t build_response(const unsigned char *q, size_t qend, const char *qname, unsigned qtype,
                             int rcode, int tc, const fake_dns_rule *rule, unsigned char *out,
                             size_t cap) {
  struct builder b = {out, 0, cap, 0};
  unsigned ancount = 0;
  /* Header: id, flags (QR, opcode copied, AA, RD copied, RA), counts. */
  put(&b, q, 2);
  unsigned char flags[2];
  flags[0] = (unsigned char)(0x80 | (q[2] & 0x78) | 0x04 | (tc ? 0x02 : 0) | (q[2] & 0x01));
  flags[1] = (unsigned char)(0x80 | (rcode & 0x0F));
  put(&b, flags, 2);
  put16(&b, 1);
  size_t ancount_at = b.len;
  put16(&b, 0);
  put16(&b, 0);
  put16(&b, 0);
  put(&b, q + 12, qend - 12); /* the question, as asked */

  if (rcode == RCODE_OK && !tc && rule) {
    char copy[1024];
    char *names[16];
    size_t ncn = split_list(rule->cnames, copy, sizeof copy, names, 16);
    unsigned ttl = rule->ttl ? rule->ttl : 60;
    const char *owner = qname;
    for (size_t i = 0; i < ncn; i++) {
      put_owner(&b, owner, qname);
      put16(&b, 5); /* CNAME */
      put16(&b, 1); /* IN */
      put32(&b, ttl);
      size_t rdlen_at = b.len;
      put16(&b, 0);
      size_t start = b.len;
      put_name(&b, names[i]);
      if (!b.overflow) {
        size_t rdlen = b.len - start;
        b.buf[rdlen_at] = (unsigned char)(rdlen >> 8);
        b.buf[rdlen_at + 1] = (unsigned char)rdlen;
      }
      ancount++;
      owner = names[i];
    }
    char acopy[1024];
    char *addrs[64];
    size_t na = split_list(rule->addrs, acopy, sizeof acopy, addrs, 64);
    for (size_t i = 0; i < na; i++) {
      unsigned char raw[16];
      if (qtype == FAKE_DNS_A && inet_pton(AF_INET, addrs[i], raw) == 1) {
        put_owner(&b, owner, qname);
        put16(&b, FAKE_DNS_A);
        put16(&b, 1);
        put32(&b, ttl);
        put16(&b, 4);
        put(&b, raw, 4);
        ancount++;
      } else if (qtype == FAKE_DNS_AAAA && inet_pton(AF_INET6, addrs[i], raw) == 1) {
        put_owner(&b, owner, qname);
        put16(&b, FAKE_DNS_AAAA);
        put16(&b, 1);
        put32(&b, ttl);
        put16(&b, 16);
        put(&b, raw, 16);
        ancount++;
      }
    }
  }
  if (b.overflow)
    return 0;
  out[ancount_at] = (unsigned char)(ancount >> 8);
  out[ancount_at + 1] = (unsigned char)ancount;
  return b.len;
}

/* ---- handling a query ------------------------------------------------- */

static void send_udp(fake_dns *srv, const unsigned char *msg, size_t len,
                     const struct sockaddr_storage *peer, socklen_t peer_len) {
  (void)sendto(srv->udp_fd, msg, len, 0, (const struct sockaddr *)peer, peer_len);
}

static void send_tcp(int fd, const unsigned char *msg, size_t len) {
  unsigned char *framed = malloc(len + 2);
  if (!framed)
    return;
  framed[0] = (unsigned char)(len >> 8);
  framed[1] = (unsigned char)len;
  memcpy(framed + 2, msg, len);
  size_t off = 0;
  /* The messages are small; wait for room briefly if the socket is full. */
  while (off < len + 2) {
    ssize_t n = send(fd, framed + off, len + 2 - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd p = {fd, POLLOUT, 0};
      if (poll(&p, 1, 1000) > 0)
        continue;
    }
    break;
  }
  free(framed);
}

static void queue_delayed(fake_dns *srv, uint64_t due, int tcp, const struct conn *c,
                          const struct sockaddr_storage *peer, socklen_t peer_len,
                          const unsigned char *msg, size_t len) {
  if (srv->ndelayed == srv->delayed_cap) {
    size_t cap = srv->delayed_cap ? srv->delayed_cap * 2 : 16;
    struct delayed *d = realloc(srv->delayed, cap * sizeof *d);
    if (!d)
      return;
    srv->delayed = d;
    srv->delayed_cap = cap;
  }
  unsigned char *copy = malloc(len);
  if (!copy)
    return;
  memcpy(copy, msg, len);
  struct delayed *d = &srv->delayed[srv->ndelayed++];
  memset(d, 0, sizeof *d);
  d->due_ns = due;
  d->tcp = tcp;
  if (tcp) {
    d->conn_fd = c->fd;
    d->conn_gen = c->gen;
  } else {
    memcpy(&d->peer, peer, peer_len);
    d->peer_len = peer_len;
  }
  d->msg = copy;
  d->len = len;
  pthread_mutex_lock(&srv->mu);
  srv->ndelayed_shared = (unsigned)srv->ndelayed;
  pthread_mutex_unlock(&srv->mu);
}

static void log_name(fake_dns *srv, const char *name) {
  if (srv->nnames == srv->names_cap) {
    size_t cap = srv->names_cap ? srv->names_cap * 2 : 64;
    char **n = realloc(srv->names, cap * sizeof *n);
    if (!n)
      return;
    srv->names = n;
    srv->names_cap = cap;
  }
  char *copy = dup_str(name);
  if (copy)
    srv->names[srv->nnames++] = copy;
}

/* Raw mode: answers with the caller's bytes, the query's id patched in (and
 * its question inserted after the header if asked). The message is built
 * under the lock because fake_dns_set_raw may replace it meanwhile. Returns
 * 0 when not in raw mode, so the rules answer. */
static int answer_raw(fake_dns *srv, const unsigned char *msg, size_t qend, struct conn *c,
                      const struct sockaddr_storage *peer, socklen_t peer_len) {
  pthread_mutex_lock(&srv->mu);
  if (!srv->raw) {
    pthread_mutex_unlock(&srv->mu);
    return 0;
  }
  size_t len = srv->raw_len;
  size_t question = (srv->raw_flags & FAKE_DNS_RAW_ECHO_QUESTION) && qend > 12 ? qend - 12 : 0;
  unsigned char *out = malloc(len + question + 1);
  if (!out) {
    pthread_mutex_unlock(&srv->mu);
    return 1; /* dropped, as a server out of memory would */
  }
  size_t head = len < 12 ? len : 12;
  memcpy(out, srv->raw, head);
  memcpy(out, msg, head < 2 ? head : 2);
  memcpy(out + head, msg + 12, question);
  memcpy(out + head + question, srv->raw + head, len - head);
  pthread_mutex_unlock(&srv->mu);
  size_t n = len + question;
  if (n > MAX_MSG)
    n = MAX_MSG; /* a TCP message's length must fit its field */
  if (c)
    send_tcp(c->fd, out, n);
  else
    send_udp(srv, out, n, peer, peer_len);
  free(out);
  pthread_mutex_lock(&srv->mu);
  srv->responses++;
  pthread_mutex_unlock(&srv->mu);
  return 1;
}

/* Answers one query, arrived over UDP (c == NULL) or TCP connection c. */
static void handle_query(fake_dns *srv, const unsigned char *msg, size_t len, struct conn *c,
                         const struct sockaddr_storage *peer, socklen_t peer_len) {
  int tcp = c != NULL;
  if (len < 12 || (msg[2] & 0x80))
    return; /* too short, or a response: ignore */
  pthread_mutex_lock(&srv->mu);
  if (tcp)
    srv->q_tcp++;
  else
    srv->q_udp++;
  pthread_mutex_unlock(&srv->mu);

  unsigned qdcount = (unsigned)msg[4] << 8 | msg[5];
  char qname[MAX_NAME] = "";
  size_t qend = 0;
  unsigned qtype = 0;
  if (qdcount == 1) {
    qend = parse_name(msg, len, 12, qname);
    if (qend && qend + 4 <= len) {
      qtype = (unsigned)msg[qend] << 8 | msg[qend + 1];
      qend += 4;
    } else {
      qend = 0;
    }
  }

  unsigned char out[4096];
  size_t n;
  uint64_t due = 0;
  if (answer_raw(srv, msg, qend, c, peer, peer_len))
    return;
  if (!qend) {
    /* FORMERR: the header alone, no question. */
    memcpy(out, msg, 2);
    out[2] = (unsigned char)(0x80 | (msg[2] & 0x79));
    out[3] = 0x80 | RCODE_FORMERR;
    memset(out + 4, 0, 8);
    n = 12;
  } else {
    pthread_mutex_lock(&srv->mu);
    log_name(srv, qname);
    struct rule *hit = NULL;
    int named = 0;
    for (size_t i = 0; i < srv->nrules; i++) {
      struct rule *r = &srv->rules[i];
      if (!name_matches(r->r.name, qname))
        continue;
      named = 1;
      if (r->r.qtype == FAKE_DNS_ANY || (unsigned)r->r.qtype == qtype) {
        hit = r;
        break;
      }
    }
    fake_dns_rule rule;
    memset(&rule, 0, sizeof rule);
    int drop = 0;
    if (hit) {
      hit->matched++;
      rule = hit->r;
      /* Copy the strings: the rule table may change once unlocked. */
      drop = hit->matched <= rule.drop_first || rule.action == FAKE_DNS_DROP;
    }
    char cn[1024] = "", ad[1024] = "";
    if (hit) {
      snprintf(cn, sizeof cn, "%s", rule.cnames ? rule.cnames : "");
      snprintf(ad, sizeof ad, "%s", rule.addrs ? rule.addrs : "");
      rule.cnames = cn;
      rule.addrs = ad;
    }
    pthread_mutex_unlock(&srv->mu);
    if (drop)
      return;
    int rcode = RCODE_OK, tc = 0;
    const fake_dns_rule *answer = NULL;
    if (!hit) {
      rcode = named ? RCODE_OK : RCODE_NXDOMAIN;
    } else {
      switch (rule.action) {
        case FAKE_DNS_NXDOMAIN: rcode = RCODE_NXDOMAIN; break;
        case FAKE_DNS_SERVFAIL: rcode = RCODE_SERVFAIL; break;
        case FAKE_DNS_REFUSED: rcode = RCODE_REFUSED; break;
        default: answer = &rule; break;
      }
      tc = rule.truncate_udp && !tcp;
      if (rule.delay_ms)
        due = now_ns() + (uint64_t)rule.delay_ms * 1000000u;
    }
    n = build_response(msg, qend, qname, qtype, rcode, tc, answer, out, sizeof out);
    if (!n)
      return;
  }
  if (due) {
    queue_delayed(srv, due, tcp, c, peer, peer_len, out, n);
    return;
  }
  pthread_mutex_lock(&srv->mu);
  srv->responses++;
  pthread_mutex_unlock(&srv->mu);
  if (tcp)
    send_tcp(c->fd, out, n);
  else
    send_udp(srv, out, n, peer, peer_len);
}

/* Sends the delayed responses that are due; returns the poll timeout. */
static int run_delayed(fake_dns *srv) {
  uint64_t now = now_ns();
  uint64_t next = 0;
  size_t i = 0;
  while (i < srv->ndelayed) {
    struct delayed *d = &srv->delayed[i];
    if (d->due_ns > now) {
      if (!next || d->due_ns < next)
        next = d->due_ns;
      i++;
      continue;
    }
    int sent = 0;
    if (!d->tcp) {
      send_udp(srv, d->msg, d->len, &d->peer, d->peer_len);
      sent = 1;
    } else {
      for (int k = 0; k < MAX_CONNS; k++)
        if (srv->conns[k].fd == d->conn_fd && srv->conns[k].gen == d->conn_gen) {
          send_tcp(d->conn_fd, d->msg, d->len);
          sent = 1;
        }
    }
    pthread_mutex_lock(&srv->mu);
    if (sent)
      srv->responses++;
    srv->ndelayed_shared = (unsigned)srv->ndelayed - 1;
    pthread_mutex_unlock(&srv->mu);
    free(d->msg);
    srv->delayed[i] = srv->delayed[--srv->ndelayed];
  }
  if (!next)
    return -1;
  uint64_t ms = (next - now + 999999u) / 1000000u;
  return ms > 60000 ? 60000 : (int)ms;
}

static void publish_conns(fake_dns *srv) {
  unsigned n = 0;
  for (int k = 0; k < MAX_CONNS; k++)
    n += srv->conns[k].fd >= 0;
  pthread_mutex_lock(&srv->mu);
  srv->nconns_shared = n;
  pthread_mutex_unlock(&srv->mu);
}

static void conn_close(fake_dns *srv, struct conn *c) {
  close(c->fd);
  c->fd = -1;
  c->have = 0;
  publish_conns(srv);
}

/* Reads what a TCP connection has and answers every complete message. */
static void conn_readable(fake_dns *srv, struct conn *c) {
  for (;;) {
    ssize_t n = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    if (n <= 0) {
      conn_close(srv, c);
      return;
    }
    c->have += (size_t)n;
    for (;;) {
      if (c->have < 2)
        break;
      size_t mlen = (size_t)c->buf[0] << 8 | c->buf[1];
      if (c->have < 2 + mlen)
        break;
      handle_query(srv, c->buf + 2, mlen, c, NULL, 0);
      memmove(c->buf, c->buf + 2 + mlen, c->have - 2 - mlen);
      c->have -= 2 + mlen;
    }
  }
}

static void *server_main(void *arg) {
  fake_dns *srv = arg;
  struct pollfd pfds[3 + MAX_CONNS];
  int slot_of[3 + MAX_CONNS];
  unsigned char buf[MAX_MSG];
  for (;;) {
    int timeout = run_delayed(srv);
    nfds_t n = 0;
    pfds[n] = (struct pollfd){srv->stop_pipe[0], POLLIN, 0};
    slot_of[n++] = -1;
    pfds[n] = (struct pollfd){srv->udp_fd, POLLIN, 0};
    slot_of[n++] = -1;
    pfds[n] = (struct pollfd){srv->tcp_fd, POLLIN, 0};
    slot_of[n++] = -1;
    for (int k = 0; k < MAX_CONNS; k++)
      if (srv->conns[k].fd >= 0) {
        pfds[n] = (struct pollfd){srv->conns[k].fd, POLLIN, 0};
        slot_of[n++] = k;
      }
    int rc = poll(pfds, n, timeout);
    if (rc < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    if (pfds[0].revents)
      break;
    if (pfds[1].revents & POLLIN) {
      for (;;) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        ssize_t len = recvfrom(srv->udp_fd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &plen);
        if (len < 0)
          break;
        handle_query(srv, buf, (size_t)len, NULL, &peer, plen);
      }
    }
    if (pfds[2].revents & POLLIN) {
      for (;;) {
        int fd = accept(srv->tcp_fd, NULL, NULL);
        if (fd < 0)
          break;
        int k = 0;
        while (k < MAX_CONNS && srv->conns[k].fd >= 0)
          k++;
        if (k == MAX_CONNS || set_nonblock(fd) != 0) {
          close(fd);
          continue;
        }
        srv->conns[k].fd = fd;
        srv->conns[k].gen = ++srv->next_gen;
        srv->conns[k].have = 0;
        publish_conns(srv);
      }
    }
    for (nfds_t i = 3; i < n; i++)
      if (pfds[i].revents && srv->conns[slot_of[i]].fd == pfds[i].fd)
        conn_readable(srv, &srv->conns[slot_of[i]]);
  }
  return NULL;
}

/* ---- public API ------------------------------------------------------- */

int fake_dns_start(fake_dns **out) {
  fake_dns *srv = calloc(1, sizeof *srv);
  if (!srv)
    return -ENOMEM;
  srv->conns = calloc(MAX_CONNS, sizeof *srv->conns);
  if (!srv->conns) {
    free(srv);
    return -ENOMEM;
  }
  for (int k = 0; k < MAX_CONNS; k++)
    srv->conns[k].fd = -1;
  srv->udp_fd = srv->tcp_fd = srv->stop_pipe[0] = srv->stop_pipe[1] = -1;
  pthread_mutex_init(&srv->mu, NULL);
  int err = 0;
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

  /* The same port for UDP and TCP: take one from UDP, then bind TCP to it;
   * if that port is busy for TCP, try again. */
  for (int attempt = 0; attempt < 20; attempt++) {
    srv->udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    srv->tcp_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (srv->udp_fd < 0 || srv->tcp_fd < 0) {
      err = -errno;
      goto fail;
    }
    int one = 1;
    setsockopt(srv->tcp_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rcvbuf = 4 << 20;
    setsockopt(srv->udp_fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sin.sin_port = 0;
    if (bind(srv->udp_fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
      err = -errno;
      goto fail;
    }
    socklen_t slen = sizeof sin;
    getsockname(srv->udp_fd, (struct sockaddr *)&sin, &slen);
    if (bind(srv->tcp_fd, (struct sockaddr *)&sin, sizeof sin) == 0 && listen(srv->tcp_fd, 64) == 0) {
      srv->port = ntohs(sin.sin_port);
      break;
    }
    close(srv->udp_fd);
    close(srv->tcp_fd);
    srv->udp_fd = srv->tcp_fd = -1;
  }
  if (!srv->port) {
    err = -EADDRINUSE;
    goto fail;
  }
  snprintf(srv->server, sizeof srv->server, "127.0.0.1:%d", srv->port);
  if (pipe2(srv->stop_pipe, O_CLOEXEC) < 0) {
    err = -errno;
    goto fail;
  }
  err = -pthread_create(&srv->thread, NULL, server_main, srv);
  if (err)
    goto fail;
  srv->thread_started = 1;
  *out = srv;
  return srv->port;
fail:
  fake_dns_stop(srv);
  return err ? err : -EIO;
}

void fake_dns_stop(fake_dns *srv) {
  if (!srv)
    return;
  if (srv->thread_started) {
    char x = 1;
    while (write(srv->stop_pipe[1], &x, 1) < 0 && errno == EINTR) {
    }
    pthread_join(srv->thread, NULL);
  }
  if (srv->conns)
    for (int k = 0; k < MAX_CONNS; k++)
      if (srv->conns[k].fd >= 0)
        close(srv->conns[k].fd);
  int fds[4] = {srv->udp_fd, srv->tcp_fd, srv->stop_pipe[0], srv->stop_pipe[1]};
  for (int i = 0; i < 4; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  for (size_t i = 0; i < srv->ndelayed; i++)
    free(srv->delayed[i].msg);
  free(srv->delayed);
  fake_dns_clear_rules(srv);
  free(srv->rules);
  free(srv->raw);
  for (size_t i = 0; i < srv->nnames; i++)
    free(srv->names[i]);
  free(srv->names);
  free(srv->conns);
  pthread_mutex_destroy(&srv->mu);
  free(srv);
}

int fake_dns_port(const fake_dns *srv) { return srv->port; }

const char *fake_dns_server(const fake_dns *srv) { return srv->server; }

int fake_dns_add_rule(fake_dns *srv, const fake_dns_rule *rule) {
  if (!srv || !rule || !rule->name)
    return -EINVAL;
  struct rule r;
  memset(&r, 0, sizeof r);
  r.r = *rule;
  r.r.name = dup_str(rule->name);
  r.r.addrs = dup_str(rule->addrs);
  r.r.cnames = dup_str(rule->cnames);
  if (!r.r.name || (rule->addrs && !r.r.addrs) || (rule->cnames && !r.r.cnames)) {
    free((char *)r.r.name);
    free((char *)r.r.addrs);
    free((char *)r.r.cnames);
    return -ENOMEM;
  }
  pthread_mutex_lock(&srv->mu);
  if (srv->nrules == srv->rules_cap) {
    size_t cap = srv->rules_cap ? srv->rules_cap * 2 : 8;
    struct rule *nr = realloc(srv->rules, cap * sizeof *nr);
    if (!nr) {
      pthread_mutex_unlock(&srv->mu);
      free((char *)r.r.name);
      free((char *)r.r.addrs);
      free((char *)r.r.cnames);
      return -ENOMEM;
    }
    srv->rules = nr;
    srv->rules_cap = cap;
  }
  srv->rules[srv->nrules++] = r;
  pthread_mutex_unlock(&srv->mu);
  return 0;
}

int fake_dns_add(fake_dns *srv, const char *name, const char *addrs) {
  fake_dns_rule r;
  memset(&r, 0, sizeof r);
  r.name = name;
  r.qtype = FAKE_DNS_ANY;
  r.action = FAKE_DNS_ANSWER;
  r.addrs = addrs;
  return fake_dns_add_rule(srv, &r);
}

void fake_dns_clear_rules(fake_dns *srv) {
  pthread_mutex_lock(&srv->mu);
  for (size_t i = 0; i < srv->nrules; i++) {
    free((char *)srv->rules[i].r.name);
    free((char *)srv->rules[i].r.addrs);
    free((char *)srv->rules[i].r.cnames);
  }
  srv->nrules = 0;
  pthread_mutex_unlock(&srv->mu);
}

unsigned fake_dns_queries(fake_dns *srv, int transport) {
  pthread_mutex_lock(&srv->mu);
  unsigned n = ((transport & FAKE_DNS_UDP) ? srv->q_udp : 0) + ((transport & FAKE_DNS_TCP) ? srv->q_tcp : 0);
  pthread_mutex_unlock(&srv->mu);
  return n;
}

unsigned fake_dns_queries_for(fake_dns *srv, const char *name) {
  unsigned n = 0;
  pthread_mutex_lock(&srv->mu);
  for (size_t i = 0; i < srv->nnames; i++)
    if (name_matches(name, srv->names[i]))
      n++;
  pthread_mutex_unlock(&srv->mu);
  return n;
}

unsigned fake_dns_responses(fake_dns *srv) {
  pthread_mutex_lock(&srv->mu);
  unsigned n = srv->responses;
  pthread_mutex_unlock(&srv->mu);
  return n;
}

unsigned fake_dns_delayed(fake_dns *srv) {
  pthread_mutex_lock(&srv->mu);
  unsigned n = srv->ndelayed_shared;
  pthread_mutex_unlock(&srv->mu);
  return n;
}

int fake_dns_wait_idle(fake_dns *srv, unsigned ms) {
  uint64_t until = now_ns() + (uint64_t)ms * 1000000u;
  for (;;) {
    pthread_mutex_lock(&srv->mu);
    unsigned n = srv->nconns_shared;
    pthread_mutex_unlock(&srv->mu);
    if (n == 0)
      return 1;
    if (now_ns() >= until)
      return 0;
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
}

void fake_dns_reset_counters(fake_dns *srv) {
  pthread_mutex_lock(&srv->mu);
  srv->q_udp = srv->q_tcp = srv->responses = 0;
  for (size_t i = 0; i < srv->nnames; i++)
    free(srv->names[i]);
  srv->nnames = 0;
  pthread_mutex_unlock(&srv->mu);
}

int fake_dns_set_raw(fake_dns *srv, const void *msg, size_t len, int flags) {
  if (!srv || (!msg && len) || len > MAX_MSG)
    return -EINVAL;
  /* One byte at least, so that an empty message is still "raw mode". */
  unsigned char *copy = malloc(len ? len : 1);
  if (!copy)
    return -ENOMEM;
  if (len)
    memcpy(copy, msg, len);
  pthread_mutex_lock(&srv->mu);
  unsigned char *old = srv->raw;
  srv->raw = copy;
  srv->raw_len = len;
  srv->raw_flags = flags;
  pthread_mutex_unlock(&srv->mu);
  free(old);
  return 0;
}

void fake_dns_clear_raw(fake_dns *srv) {
  pthread_mutex_lock(&srv->mu);
  unsigned char *old = srv->raw;
  srv->raw = NULL;
  srv->raw_len = 0;
  pthread_mutex_unlock(&srv->mu);
  free(old);
}
