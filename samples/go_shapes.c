/* go_shapes — the usual Go coordination shapes, written with rill's fibers
 * and rill/chan.h: a worker pool, fan-in with select, a timeout, a mutex,
 * and cancellation with a context. samples/go/go_shapes/main.go is the same
 * program in Go; both print the same lines:
 *
 *   worker pool: 3 workers, 10 jobs, sum of squares 385
 *   fan-in: 6 messages from 2 producers, a0 a1 a2 in order, b0 b1 b2 in order
 *   timeout: no reply within 50 ms
 *   late reply: pong
 *   mutex: counter 4000
 *   context: worker stopped: context canceled
 *   context: deadline: context deadline exceeded
 *
 * Every shape runs in fibers on one base; main() starts the first fiber and
 * runs the base until every fiber has returned. */
#include <stdio.h>
#include <string.h>

#include <rill.h>

static int failed;

static void check(int err, const char *what) {
  if (err < 0) {
    fprintf(stderr, "go_shapes: %s: %s\n", what, rill_strerror(err));
    failed = 1;
  }
}

/* ---- worker pool: jobs in, results out, close when done ----------------- */

struct pool {
  rill_chan *jobs, *results;
  rill_waitgroup *wg;
};

static void worker(void *arg) {
  struct pool *p = arg;
  int job, ok;
  /* for job := range jobs { results <- job * job } */
  while (rill_chan_recv(p->jobs, &job, &ok) == 0 && ok) {
    int square = job * job;
    check(rill_chan_send(p->results, &square), "send result");
  }
  rill_waitgroup_done(p->wg);
}

static void close_results_when_done(void *arg) {
  struct pool *p = arg;
  rill_waitgroup_wait(p->wg);
  rill_chan_close(p->results);
}

static void worker_pool(rill_base *base) {
  struct pool p;
  int sum = 0, r, ok;
  check(rill_chan_new(sizeof(int), 4, &p.jobs), "jobs");
  check(rill_chan_new(sizeof(int), 4, &p.results), "results");
  check(rill_waitgroup_new(&p.wg), "waitgroup");
  rill_waitgroup_add(p.wg, 3);
  for (int i = 0; i < 3; i++)
    check(rill_go(base, worker, &p), "go worker");
  check(rill_go(base, close_results_when_done, &p), "go closer");
  /* The jobs go in from a fiber of their own, so results are read as
   * they come and neither side waits on the other forever. */
  for (int job = 1; job <= 10; job++) {
    rill_select_case cases[2] = {{p.jobs, RILL_SELECT_SEND, &job, 0}, {p.results, RILL_SELECT_RECV, &r, 0}};
    int which = rill_select(cases, 2, RILL_FOREVER);
    check(which, "select");
    if (which == 1) {
      sum += r;
      job--; /* not sent yet: again */
    }
  }
  rill_chan_close(p.jobs);
  while (rill_chan_recv(p.results, &r, &ok) == 0 && ok)
    sum += r;
  printf("worker pool: 3 workers, 10 jobs, sum of squares %d\n", sum);
  rill_chan_free(p.jobs);
  rill_chan_free(p.results);
  rill_waitgroup_free(p.wg);
}

/* ---- fan-in: merge two producers with select ---------------------------- */

typedef struct msg {
  char text[8];
} msg;

struct producer {
  rill_chan *out;
  char name;
};

static void produce(void *arg) {
  struct producer *p = arg;
  for (int i = 0; i < 3; i++) {
    msg m;
    snprintf(m.text, sizeof m.text, "%c%d", p->name, i);
    check(rill_chan_send(p->out, &m), "produce");
    rill_sleep(1 * RILL_MSEC);
  }
  rill_chan_close(p->out);
}

static void fan_in(rill_base *base) {
  struct producer a = {NULL, 'a'}, b = {NULL, 'b'};
  rill_chan *in[2];
  int next[2] = {0, 0}, total = 0, in_order = 1;
  check(rill_chan_new(sizeof(msg), 0, &a.out), "chan a");
  check(rill_chan_new(sizeof(msg), 0, &b.out), "chan b");
  in[0] = a.out;
  in[1] = b.out;
  check(rill_go(base, produce, &a), "go a");
  check(rill_go(base, produce, &b), "go b");
  /* A closed input is set to NULL, which select never picks (Go's nil
   * channel idiom); the loop ends when both are. */
  while (in[0] || in[1]) {
    msg m;
    rill_select_case cases[2] = {{in[0], RILL_SELECT_RECV, &m, 0}, {in[1], RILL_SELECT_RECV, &m, 0}};
    int which = rill_select(cases, 2, RILL_FOREVER);
    check(which, "select");
    if (which < 0)
      break;
    if (!cases[which].ok) {
      in[which] = NULL;
      continue;
    }
    char want[8];
    snprintf(want, sizeof want, "%c%d", which ? 'b' : 'a', next[which]++);
    in_order = in_order && strcmp(m.text, want) == 0;
    total++;
  }
  printf("fan-in: %d messages from 2 producers, a0 a1 a2 %s, b0 b1 b2 %s\n", total,
         in_order ? "in order" : "out of order", in_order ? "in order" : "out of order");
  rill_chan_free(a.out);
  rill_chan_free(b.out);
}

/* ---- a timeout: select with time.After ---------------------------------- */

static void slow_server(void *arg) {
  rill_chan *reply = arg;
  msg m = {"pong"};
  rill_sleep(200 * RILL_MSEC);
  check(rill_chan_send(reply, &m), "reply");
}

static void timeout(rill_base *base) {
  rill_chan *reply;
  msg m;
  check(rill_chan_new(sizeof(msg), 1, &reply), "reply chan");
  check(rill_go(base, slow_server, reply), "go server");
  rill_select_case c = {reply, RILL_SELECT_RECV, &m, 0};
  if (rill_select(&c, 1, 50 * RILL_MSEC) == RILL_ETIMEOUT)
    printf("timeout: no reply within 50 ms\n");
  check(rill_chan_recv(reply, &m, NULL), "late reply");
  printf("late reply: %s\n", m.text);
  rill_chan_free(reply);
}

/* ---- a mutex held across parks ------------------------------------------ */

struct counter {
  rill_mutex *mu;
  int value;
  rill_waitgroup *wg;
};

static void increment(void *arg) {
  struct counter *c = arg;
  for (int i = 0; i < 1000; i++) {
    rill_mutex_lock(c->mu);
    int v = c->value;
    rill_yield(); /* others run, but none gets in */
    c->value = v + 1;
    rill_mutex_unlock(c->mu);
  }
  rill_waitgroup_done(c->wg);
}

static void mutex(rill_base *base) {
  struct counter c = {NULL, 0, NULL};
  check(rill_mutex_new(&c.mu), "mutex");
  check(rill_waitgroup_new(&c.wg), "waitgroup");
  rill_waitgroup_add(c.wg, 4);
  for (int i = 0; i < 4; i++)
    check(rill_go(base, increment, &c), "go increment");
  rill_waitgroup_wait(c.wg);
  printf("mutex: counter %d\n", c.value);
  rill_mutex_free(c.mu);
  rill_waitgroup_free(c.wg);
}

/* ---- cancellation: a context stops a worker; a deadline ends by itself --- */

struct ticker {
  rill_ctx *ctx;
  rill_chan *stopped; /* the worker's error when it stopped */
};

static void tick_until_canceled(void *arg) {
  struct ticker *t = arg;
  int err;
  while ((err = rill_ctx_sleep(t->ctx, 10 * RILL_MSEC)) == 0) {
    /* one tick of work */
  }
  check(rill_chan_send(t->stopped, &err), "stopped");
}

static void context(rill_base *base) {
  struct ticker t;
  rill_ctx *deadline;
  int err = 0;
  check(rill_ctx_new(NULL, &t.ctx), "context");
  check(rill_chan_new(sizeof(int), 0, &t.stopped), "stopped chan");
  check(rill_go(base, tick_until_canceled, &t), "go ticker");
  rill_sleep(35 * RILL_MSEC);
  rill_ctx_cancel(t.ctx);
  check(rill_chan_recv(t.stopped, &err, NULL), "stopped");
  printf("context: worker stopped: %s\n", rill_strerror(err));
  rill_ctx_free(t.ctx);
  rill_chan_free(t.stopped);

  check(rill_ctx_new_timeout(base, NULL, 30 * RILL_MSEC, &deadline), "deadline");
  rill_select_case c = {rill_ctx_done(deadline), RILL_SELECT_RECV, NULL, 0};
  check(rill_select(&c, 1, RILL_FOREVER), "select done");
  printf("context: deadline: %s\n", rill_strerror(rill_ctx_err(deadline)));
  rill_ctx_free(deadline);
}

static void run_all(void *arg) {
  rill_base *base = arg;
  worker_pool(base);
  fan_in(base);
  timeout(base);
  mutex(base);
  context(base);
}

int main(void) {
  rill_base *base;
  if (rill_base_new(NULL, &base) != 0)
    return 1;
  check(rill_go(base, run_all, base), "go");
  rill_base_run(base, RILL_RUN_DEFAULT);
  rill_base_free(base);
  return failed;
}
