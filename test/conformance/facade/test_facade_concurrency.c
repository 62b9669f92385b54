/* docs/go-model.md G25 through the blocking facade: several fibers writing one
 * connection keep each call's bytes contiguous; several fibers reading one
 * connection never share bytes. */
#define _GNU_SOURCE 1

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "rill.h"
#include "test_util.h"

#include "facade_util.c"

#define LIMIT 60000 /* a hang guard only */

/* ---- G25: concurrent writers ------------------------------------------- */

#define WRITERS 3
#define CHUNKS 50
#define CHUNK (64 * 1024)
#define TOTAL ((size_t)WRITERS * CHUNKS * CHUNK)

struct g25w {
  struct fu_pair p;
  rill_waitgroup *wg;
  int next_id;
  int rc[WRITERS];
  int parked_while_others_wrote; /* writes that overlapped in time */
  int inside;
  unsigned char *in;
};

/* Chunk `seq` of writer `id` is CHUNK bytes of one value, unique per chunk. */
static unsigned char chunk_value(int id, int seq) { return (unsigned char)(1 + id * CHUNKS + seq); }

static void g25_writer(void *arg) {
  struct g25w *t = (struct g25w *)arg;
  int id = t->next_id++;
  unsigned char *chunk = malloc(CHUNK);
  int seq;
  FCHECK(chunk != NULL);
  if (!chunk) {
    rill_waitgroup_done(t->wg);
    return;
  }
  for (seq = 0; seq < CHUNKS; seq++) {
    size_t written = 0;
    int rc;
    memset(chunk, chunk_value(id, seq), CHUNK);
    if (t->inside)
      t->parked_while_others_wrote++;
    t->inside++;
    rc = rill_net_write(t->p.c, chunk, CHUNK, &written);
    t->inside--;
    if (rc != 0 || written != CHUNK) {
      t->rc[id] = rc ? rc : -1;
      break;
    }
    /* The buffer may be reused at once: the facade is done with it. */
    memset(chunk, 0xee, CHUNK);
  }
  free(chunk);
  rill_waitgroup_done(t->wg);
}

static void g25w_main(void *arg) {
  struct g25w *t = (struct g25w *)arg;
  rill_base *base = rill_fiber_base();
  size_t got = 0;
  int i, seen[WRITERS * CHUNKS + 1], next_seq[WRITERS], bad_blocks = 0;
  if (fu_pair_open(&t->p) != 0)
    return;
  fu_set_buffers(t->p.peer, 64 * 1024);
  FCHECK_EQ(rill_net_set_write_buffer(t->p.c, 64 * 1024), 0);
  FCHECK_EQ(rill_waitgroup_new(&t->wg), 0);
  rill_waitgroup_add(t->wg, WRITERS);
  for (i = 0; i < WRITERS; i++)
    FCHECK_EQ(rill_go(base, g25_writer, t), 0);

  /* A slow reader: 16 KiB at a time, with a pause now and then. */
  while (got < TOTAL) {
    size_t want = TOTAL - got < 16384 ? TOTAL - got : 16384;
    ssize_t n = fu_peer_read(t->p.peer, t->in + got, want, 5000);
    FCHECK(n > 0);
    if (n <= 0)
      break;
    got += (size_t)n;
    if ((got / 16384) % 8 == 0)
      rill_sleep(RILL_MSEC);
  }
  FCHECK_EQ(got, TOTAL);
  FCHECK_EQ(rill_waitgroup_wait(t->wg), 0);
  for (i = 0; i < WRITERS; i++)
    FCHECK_EQ(t->rc[i], 0);
  /* The writers really overlapped: some waited while another wrote. */
  FCHECK(t->parked_while_others_wrote > 0);

  /* Every CHUNK-aligned block is one chunk, whole; each chunk appears
   * once, and each writer's chunks in its order. */
  memset(seen, 0, sizeof seen);
  memset(next_seq, 0, sizeof next_seq);
  for (size_t b = 0; b + CHUNK <= got; b += CHUNK) {
    unsigned char v = t->in[b];
    size_t k;
    for (k = 1; k < CHUNK && t->in[b + k] == v; k++) {
    }
    if (k != CHUNK || v == 0 || v > WRITERS * CHUNKS) {
      if (bad_blocks++ < 3)
        fprintf(stderr, "G25: block at %zu is not one whole chunk (value %d, run %zu)\n", b, v, k);
      continue;
    }
    seen[v]++;
    {
      int id = (v - 1) / CHUNKS, seq = (v - 1) % CHUNKS;
      FCHECK_EQ(seq, next_seq[id]);
      next_seq[id] = seq + 1;
    }
  }
  FCHECK_EQ(bad_blocks, 0);
  for (i = 1; i <= WRITERS * CHUNKS; i++)
    FCHECK_EQ(seen[i], 1);
  rill_waitgroup_free(t->wg);
  fu_pair_close(&t->p);
}

static void G25_concurrent_writes_stay_contiguous(void **state) {
  struct g25w t;
  (void)state;
  memset(&t, 0, sizeof t);
  t.in = malloc(TOTAL);
  assert_non_null(t.in);
  fu_run_fiber(g25w_main, &t, LIMIT);
  free(t.in);
}

/* ---- G25: concurrent readers ------------------------------------------- */

#define RECORDS 200000u /* 4-byte sequence numbers: 800 KB */
#define STREAM ((size_t)RECORDS * 4)

struct g25r {
  struct fu_pair p;
  rill_waitgroup *wg;
  int next_id;
  unsigned char *sent;
  unsigned char *joined; /* the reads, concatenated in the order they returned */
  size_t joined_len;
  size_t per_reader[2];
  int reads[2];
  int end_rc[2];
  int overflow;
};

static void g25_reader(void *arg) {
  struct g25r *t = (struct g25r *)arg;
  int id = t->next_id++;
  /* Odd sizes, different per reader, so reads never line up with records. */
  size_t size = id == 0 ? 333 : 1001;
  unsigned char buf[1001];
  for (;;) {
    ssize_t n = rill_net_read(t->p.c, buf, size);
    if (n <= 0) {
      t->end_rc[id] = (int)n;
      break;
    }
    /* Fibers switch only inside rill calls: no other reader can run
     * between the return and this copy. */
    if (t->joined_len + (size_t)n > STREAM) {
      t->overflow = 1;
      break;
    }
    memcpy(t->joined + t->joined_len, buf, (size_t)n);
    t->joined_len += (size_t)n;
    t->per_reader[id] += (size_t)n;
    t->reads[id]++;
  }
  rill_waitgroup_done(t->wg);
}

static void g25r_main(void *arg) {
  struct g25r *t = (struct g25r *)arg;
  rill_base *base = rill_fiber_base();
  size_t off = 0;
  uint32_t i;
  if (fu_pair_open(&t->p) != 0)
    return;
  for (i = 0; i < RECORDS; i++) {
    t->sent[4 * i] = (unsigned char)(i >> 24);
    t->sent[4 * i + 1] = (unsigned char)(i >> 16);
    t->sent[4 * i + 2] = (unsigned char)(i >> 8);
    t->sent[4 * i + 3] = (unsigned char)i;
  }
  FCHECK_EQ(rill_waitgroup_new(&t->wg), 0);
  rill_waitgroup_add(t->wg, 2);
  FCHECK_EQ(rill_go(base, g25_reader, t), 0);
  FCHECK_EQ(rill_go(base, g25_reader, t), 0);

  /* Send in uneven pieces, letting the readers run in between. */
  while (off < STREAM) {
    size_t piece = 1 + (off * 31) % 7000;
    if (piece > STREAM - off)
      piece = STREAM - off;
    FCHECK_EQ(fu_peer_write(t->p.peer, t->sent + off, piece), 0);
    off += piece;
    rill_yield();
  }
  close(t->p.peer);
  t->p.peer = -1;
  FCHECK_EQ(rill_waitgroup_wait(t->wg), 0);

  FCHECK_EQ(t->overflow, 0);
  FCHECK_EQ(t->per_reader[0] + t->per_reader[1], STREAM);
  FCHECK_EQ(t->joined_len, STREAM);
  /* No byte twice, none lost, none reordered: every sequence number once,
   * in order. */
  if (t->joined_len == STREAM) {
    uint32_t bad = RECORDS;
    for (i = 0; i < RECORDS; i++) {
      uint32_t v = ((uint32_t)t->joined[4 * i] << 24) | ((uint32_t)t->joined[4 * i + 1] << 16) |
                   ((uint32_t)t->joined[4 * i + 2] << 8) | t->joined[4 * i + 3];
      if (v != i) {
        bad = i;
        break;
      }
    }
    FCHECK_EQ(bad, RECORDS);
  }
  /* Both readers took turns, and both saw the end. */
  FCHECK(t->reads[0] > 0);
  FCHECK(t->reads[1] > 0);
  FCHECK_EQ(t->end_rc[0], RILL_EOF);
  FCHECK_EQ(t->end_rc[1], RILL_EOF);
  rill_waitgroup_free(t->wg);
  fu_pair_close(&t->p);
}

static void G25_concurrent_reads_never_share_bytes(void **state) {
  struct g25r t;
  (void)state;
  memset(&t, 0, sizeof t);
  t.sent = malloc(STREAM);
  t.joined = malloc(STREAM);
  assert_non_null(t.sent);
  assert_non_null(t.joined);
  fu_run_fiber(g25r_main, &t, LIMIT);
  free(t.sent);
  free(t.joined);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(G25_concurrent_writes_stay_contiguous, tu_setup_fds, tu_teardown_fds),
      cmocka_unit_test_setup_teardown(G25_concurrent_reads_never_share_bytes, tu_setup_fds,
                                      tu_teardown_fds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
