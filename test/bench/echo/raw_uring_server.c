/* raw_uring_server — the io_uring limit for the echo benchmark: what a
 * hand-written completion-based server costs, with no event library in the
 * way (issue 12's "raw io_uring" column).
 *
 *   raw_uring_server [--listen ADDR] [--quiet]
 *
 * One ring (SINGLE_ISSUER + DEFER_TASKRUN where the kernel takes them), a
 * multishot accept on the listener, a multishot receive per connection
 * into a buffer ring registered with io_uring_register_buf_ring (liburing
 * 2.3 has no io_uring_setup_buf_ring helper), and the bytes received sent
 * back straight from the buffer they arrived in; the buffer goes back to
 * the ring when its send has completed. One send in flight per connection,
 * the others queued in arrival order, so echoed bytes never reorder. A
 * multishot receive that ends for want of buffers (ENOBUFS) is re-armed once
 * buffers come back. TCP_NODELAY on every connection, like rill and Go.
 * SIGINT/SIGTERM end it.
 *
 * Build: cc -O2 raw_uring_server.c -o raw_uring_server $(pkg-config --cflags --libs liburing) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "echo_peer.h"

#define BUF_COUNT 1024 /* a power of two */
#define BUF_SIZE 16384
#define BUF_GROUP 1
#define SQ_ENTRIES 1024
#define CQ_ENTRIES 8192

enum kind { K_ACCEPT = 1, K_RECV, K_SEND, K_SIGNAL, K_CANCEL };

/* user_data: kind (8 bits) | connection generation (24) | descriptor (32),
 * so a completion of a connection closed meanwhile, whose descriptor a new
 * one took, is recognised. */
static uint64_t ud(enum kind k, uint32_t gen, int fd) {
  return ((uint64_t)k << 56) | ((uint64_t)(gen & 0xffffff) << 32) | (uint32_t)fd;
}
static enum kind ud_kind(uint64_t u) { return (enum kind)(u >> 56); }
static uint32_t ud_gen(uint64_t u) { return (uint32_t)(u >> 32) & 0xffffff; }
static int ud_fd(uint64_t u) { return (int)(uint32_t)u; }

struct conn {
  uint32_t gen;
  int open;
  int recv_armed;
  int sending;  /* a send of the queue's first buffer is in flight */
  int closing;  /* the peer is gone: close once the sends are done */
  int starved;  /* the receive ended with ENOBUFS: re-arm when buffers return */
  int head, tail; /* queued buffers, linked through buf_next; -1: none */
};

static struct io_uring ring;
static struct io_uring_buf_ring *buf_ring;
static char *buffers;
static int buf_next[BUF_COUNT];
static unsigned buf_len[BUF_COUNT], buf_off[BUF_COUNT];
static struct conn *conns;
static size_t nconns;
static int starved_count;
static unsigned long buffers_returned;
static int listen_fd;

static void die(const char *what, int err) {
  fprintf(stderr, "raw_uring_server: %s: %s\n", what, strerror(err));
  exit(1);
}

static struct io_uring_sqe *sqe_get(void) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
  if (!sqe) {
    io_uring_submit(&ring);
    sqe = io_uring_get_sqe(&ring);
    if (!sqe)
      die("io_uring_get_sqe", EBUSY);
  }
  return sqe;
}

static struct conn *conn_of(int fd) {
  if ((size_t)fd >= nconns) {
    size_t n = nconns ? nconns : 1024;
    struct conn *p;
    while (n <= (size_t)fd)
      n *= 2;
    p = realloc(conns, n * sizeof *p);
    if (!p)
      return NULL;
    memset(p + nconns, 0, (n - nconns) * sizeof *p);
    conns = p;
    nconns = n;
  }
  return &conns[fd];
}

static void buffer_return(int bid) {
  io_uring_buf_ring_add(buf_ring, buffers + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
                        io_uring_buf_ring_mask(BUF_COUNT), 0);
  io_uring_buf_ring_advance(buf_ring, 1);
  buffers_returned++;
}

static void arm_accept(void) {
  struct io_uring_sqe *sqe = sqe_get();
  io_uring_prep_multishot_accept(sqe, listen_fd, NULL, NULL, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, ud(K_ACCEPT, 0, listen_fd));
}

static void arm_recv(int fd, struct conn *c) {
  struct io_uring_sqe *sqe = sqe_get();
  io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = BUF_GROUP;
  io_uring_sqe_set_data64(sqe, ud(K_RECV, c->gen, fd));
  c->recv_armed = 1;
}

static void send_head(int fd, struct conn *c) {
  int bid = c->head;
  struct io_uring_sqe *sqe = sqe_get();
  io_uring_prep_send(sqe, fd, buffers + (size_t)bid * BUF_SIZE + buf_off[bid], buf_len[bid] - buf_off[bid],
                     MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, ud(K_SEND, c->gen, fd));
  c->sending = 1;
}

static void conn_close(int fd, struct conn *c) {
  while (c->head >= 0) {
    int bid = c->head;
    c->head = buf_next[bid];
    buffer_return(bid);
  }
  if (c->starved)
    starved_count--;
  if (c->recv_armed) {
    /* Its receive would keep the socket open in the kernel. */
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_cancel64(sqe, ud(K_RECV, c->gen, fd), 0);
    io_uring_sqe_set_data64(sqe, ud(K_CANCEL, 0, fd));
  }
  close(fd);
  c->open = 0;
  c->recv_armed = c->sending = c->closing = c->starved = 0;
  c->tail = -1;
}

static void on_accept(int res, unsigned flags) {
  if (!(flags & IORING_CQE_F_MORE))
    arm_accept();
  if (res >= 0) {
    struct conn *c = conn_of(res);
    if (!c) {
      close(res);
      return;
    }
    echo_set_nodelay(res);
    c->gen++;
    c->open = 1;
    c->head = c->tail = -1;
    arm_recv(res, c);
  }
}

static void on_recv(int fd, struct conn *c, int res, unsigned flags) {
  if (!(flags & IORING_CQE_F_MORE))
    c->recv_armed = 0;
  if (res > 0) {
    int bid = (int)(flags >> IORING_CQE_BUFFER_SHIFT);
    buf_len[bid] = (unsigned)res;
    buf_off[bid] = 0;
    buf_next[bid] = -1;
    if (c->tail >= 0)
      buf_next[c->tail] = bid;
    else
      c->head = bid;
    c->tail = bid;
    if (!c->sending)
      send_head(fd, c);
    if (!c->recv_armed)
      arm_recv(fd, c);
    return;
  }
  if (res == -ENOBUFS) {
    if (!c->starved) {
      c->starved = 1;
      starved_count++;
    }
    return;
  }
  /* 0 (the peer closed) or an error. */
  c->closing = 1;
  if (!c->sending)
    conn_close(fd, c);
}

static void on_send(int fd, struct conn *c, int res) {
  int bid = c->head;
  c->sending = 0;
  if (res < 0) {
    conn_close(fd, c);
    return;
  }
  buf_off[bid] += (unsigned)res;
  if (buf_off[bid] < buf_len[bid]) {
    send_head(fd, c);
    return;
  }
  c->head = buf_next[bid];
  if (c->head < 0)
    c->tail = -1;
  buffer_return(bid);
  if (c->head >= 0)
    send_head(fd, c);
  else if (c->closing)
    conn_close(fd, c);
}

/* Buffers came back: receives that ran dry start again. */
static void rearm_starved(void) {
  size_t fd;
  for (fd = 0; fd < nconns && starved_count > 0; fd++) {
    struct conn *c = &conns[fd];
    if (c->open && c->starved && !c->recv_armed && !c->closing) {
      c->starved = 0;
      starved_count--;
      arm_recv((int)fd, c);
    }
  }
}

/* A completion for a connection that is gone hands its buffer back. */
static void drop_stale(const struct io_uring_cqe *cqe) {
  if (cqe->flags & IORING_CQE_F_BUFFER)
    buffer_return((int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT));
}

/* echo_listen()'s socket, made blocking again: io_uring fails a request on
 * an O_NONBLOCK file with EAGAIN instead of waiting for it. */
static int listen_blocking(const char *address) {
  int fd = echo_listen("raw_uring_server", address);
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
    die("fcntl", errno);
  return fd;
}

static void ring_init(void) {
  static const unsigned attempts[] = {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
                                      IORING_SETUP_COOP_TASKRUN, 0};
  size_t i;
  int err = -EINVAL;
  for (i = 0; i < sizeof attempts / sizeof attempts[0] && err == -EINVAL; i++) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = attempts[i] | IORING_SETUP_CQSIZE;
    p.cq_entries = CQ_ENTRIES;
    err = io_uring_queue_init_params(SQ_ENTRIES, &ring, &p);
  }
  if (err < 0)
    die("io_uring_queue_init_params", -err);
}

static void buffers_init(void) {
  struct io_uring_buf_reg reg;
  size_t ring_bytes = BUF_COUNT * sizeof(struct io_uring_buf);
  int bid, err;
  buf_ring = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf_ring == MAP_FAILED)
    die("mmap", errno);
  buffers = malloc((size_t)BUF_COUNT * BUF_SIZE);
  if (!buffers)
    die("malloc", ENOMEM);
  io_uring_buf_ring_init(buf_ring);
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (unsigned long)buf_ring;
  reg.ring_entries = BUF_COUNT;
  reg.bgid = BUF_GROUP;
  if ((err = io_uring_register_buf_ring(&ring, &reg, 0)) < 0)
    die("io_uring_register_buf_ring", -err);
  for (bid = 0; bid < BUF_COUNT; bid++)
    io_uring_buf_ring_add(buf_ring, buffers + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(BUF_COUNT), bid);
  io_uring_buf_ring_advance(buf_ring, BUF_COUNT);
}

int main(int argc, char **argv) {
  struct echo_options opt = echo_parse_args(argc, argv);
  sigset_t sigs;
  int i, sfd, running = 1;
  struct io_uring_sqe *sqe;

  echo_raise_nofile();
  signal(SIGPIPE, SIG_IGN);
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigprocmask(SIG_BLOCK, &sigs, NULL);
  if ((sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
    die("signalfd", errno);
  ring_init();
  buffers_init();
  listen_fd = listen_blocking(opt.address);
  arm_accept();
  sqe = sqe_get();
  io_uring_prep_poll_add(sqe, sfd, POLLIN);
  io_uring_sqe_set_data64(sqe, ud(K_SIGNAL, 0, sfd));
  if (!opt.quiet)
    printf("raw_uring_server: listening on %s\n", opt.address);
  fflush(stdout);

  while (running) {
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    unsigned long returned_before = buffers_returned;
    int err = io_uring_submit_and_wait(&ring, 1);
    if (err < 0 && err != -EINTR && err != -EBUSY && err != -EAGAIN)
      die("io_uring_submit_and_wait", -err);
    io_uring_for_each_cqe(&ring, head, cqe) {
      uint64_t u = cqe->user_data;
      int fd = ud_fd(u);
      struct conn *c;
      seen++;
      switch (ud_kind(u)) {
        case K_ACCEPT:
          on_accept(cqe->res, cqe->flags);
          break;
        case K_SIGNAL:
          running = 0;
          break;
        case K_RECV:
        case K_SEND:
          c = (size_t)fd < nconns ? &conns[fd] : NULL;
          if (!c || !c->open || c->gen % 0x1000000 != ud_gen(u)) {
            drop_stale(cqe);
            break;
          }
          if (ud_kind(u) == K_RECV)
            on_recv(fd, c, cqe->res, cqe->flags);
          else
            on_send(fd, c, cqe->res);
          break;
        default:
          break;
      }
    }
    io_uring_cq_advance(&ring, seen);
    if (starved_count > 0 && buffers_returned != returned_before)
      rearm_starved();
  }
  for (i = 0; (size_t)i < nconns; i++)
    if (conns[i].open)
      close(i);
  free(conns);
  close(listen_fd);
  close(sfd);
  io_uring_queue_exit(&ring);
  free(buffers);
  return 0;
}
