/* test_engine.c - unit tests for core/engine.c: callbacks that call back
 * into the engine (stop, submit, free) with many requests in flight, and
 * every request coming back exactly once, and failures of libcurl or libuv
 * under the loop reported by ft_engine_run.
 *
 * The requests go to a small HTTP responder on the test's own loop (a
 * listener on 127.0.0.1, ephemeral port): it answers every request it
 * reads with "200 ok" on a kept-alive connection. Built with ASan like the
 * other C tests, so a double free or a use after free fails the program. */
#include <curl/curl.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "engine.h"
#include "ft_test.h"

/* ---- failures on demand ---------------------------------------------------- */

/* The engine's calls into libcurl and libuv come here first (a definition
 * in the program wins over the shared library's), so a test can make one
 * fail as it would when memory or descriptors run out. 0: pass through. */
static int fail_action_from; /* this curl_multi_socket_action call on */
static int action_calls;
static int fail_poll_start;  /* every uv_poll_start */

CURLMcode curl_multi_socket_action(CURLM *m, curl_socket_t fd, int ev,
                                   int *running) {
  typedef CURLMcode (*fn)(CURLM *, curl_socket_t, int, int *);
  static fn real;
  if (!real)
    *(void **)&real = dlsym(RTLD_NEXT, "curl_multi_socket_action");
  action_calls++;
  if (fail_action_from && action_calls >= fail_action_from) {
    *running = 0;
    return CURLM_OUT_OF_MEMORY;
  }
  return real(m, fd, ev, running);
}

int uv_poll_start(uv_poll_t *h, int events, uv_poll_cb cb) {
  typedef int (*fn)(uv_poll_t *, int, uv_poll_cb);
  static fn real;
  if (!real)
    *(void **)&real = dlsym(RTLD_NEXT, "uv_poll_start");
  if (fail_poll_start)
    return UV_ENOMEM;
  return real(h, events, cb);
}

static void failures_off(void) {
  fail_action_from = 0;
  action_calls = 0;
  fail_poll_start = 0;
}

#include "ft_responder.h"

/* ---- the engine's side ---------------------------------------------------- */

#define N_REQ 400

typedef struct run {
  uv_loop_t loop;       /* the test's loop, with srv on it */
  server srv;
  ft_engine *e;
  int back[N_REQ];      /* times each request came back */
  int total, ok, cancelled, other;
  int stop_after;       /* ok answers before the callback acts (0: never) */
  int free_in_done;     /* ... by freeing the engine instead of stopping */
  int freed;            /* the engine was freed by a callback */
  int after_free;       /* callbacks made after that */
  int submit_in_done;   /* after stopping, submit one more from the callback */
  int extra_index;      /* the index it gets */
  int produced;         /* the source's requests */
  int source_stop_at;   /* the source stops the engine at this request */
  int source_free;      /* ... or frees it */
} run;

static ft_request *make_request(server *s, int index) {
  char url[96];
  ft_request *r = ft_request_new();
  if (!r)
    return NULL;
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/item/%d", s->port, index);
  if (ft_request_set(r, url, NULL, NULL, 0) != 0) {
    ft_request_free(r);
    return NULL;
  }
  r->index = (uint64_t)index;
  return r;
}

static void on_done(void *ud, ft_request *req, const ft_response *res) {
  run *t = ud;
  if (t->freed)
    t->after_free++;
  if (req->index < N_REQ)
    t->back[req->index]++;
  t->total++;
  if (res->error == FT_ERR_NONE && res->status == 200)
    t->ok++;
  else if (res->error == FT_ERR_CANCELLED)
    t->cancelled++;
  else
    t->other++;
  ft_request_free(req);
  if (!t->stop_after || t->ok < t->stop_after || t->freed)
    return;
  if (t->free_in_done) {
    t->freed = 1;
    ft_engine_free(t->e); /* inside the callback: finished on the way out */
    server_stop(&t->srv); /* so that a loop the test runs itself ends */
    return;
  }
  /* every callback from here on, the cancelled ones included, stops again */
  ft_engine_stop(t->e);
  if (t->submit_in_done && t->extra_index == 0) {
    t->extra_index = N_REQ - 1;
    ft_request *r = make_request(&t->srv, t->extra_index);
    if (r)
      ft_engine_submit(t->e, r); /* comes back cancelled, before it returns */
  }
}

static int source(void *ud, ft_request **out) {
  run *t = ud;
  if (t->produced >= N_REQ)
    return -1;
  ft_request *r = make_request(&t->srv, t->produced);
  if (!r)
    return -1;
  t->produced++;
  if (t->produced - 1 == t->source_stop_at) {
    if (t->source_free) {
      t->freed = 1;
      ft_engine_free(t->e);
    } else {
      ft_engine_stop(t->e);
    }
  }
  *out = r; /* the engine owns it, stopped or not */
  return 1;
}

/* Sets up t's loop, the responder on it and an engine on that loop. */
static int setup(run *t) {
  ft_config cfg;
  memset(t, 0, sizeof(*t));
  t->source_stop_at = -1;
  if (uv_loop_init(&t->loop) != 0)
    return -1;
  if (server_start(&t->srv, &t->loop) != 0)
    return -1;
  ft_config_default(&cfg);
  cfg.concurrency = 32;
  cfg.retry.max_retries = 0;
  cfg.timeout_ms = 20000;
  if (ft_engine_new(&t->e, &t->loop, &cfg) != 0)
    return -1;
  ft_engine_set_done(t->e, on_done, t);
  return 0;
}

/* Submits requests 0..n-1. */
static void submit_first(run *t, int n) {
  for (int i = 0; i < n; i++) {
    ft_request *r = make_request(&t->srv, i);
    if (r)
      ft_engine_submit(t->e, r);
  }
}

/* Each of the first n requests came back exactly once, no other did. */
static int each_once(const run *t, int n) {
  for (int i = 0; i < N_REQ; i++)
    if (t->back[i] != (i < n ? 1 : 0))
      return 0;
  return 1;
}

/* No request came back more than once. */
static int at_most_once(const run *t) {
  for (int i = 0; i < N_REQ; i++)
    if (t->back[i] > 1)
      return 0;
  return 1;
}

/* ---- tests ---------------------------------------------------------------- */

/* The done callback stops the engine while 32 transfers are in flight and
 * the rest queued: the request it holds must not be cancelled (and freed)
 * a second time, and every other one comes back cancelled, once. */
FT_TEST(test_stop_in_done) {
  static run t;
  FT_CHECK(setup(&t) == 0);
  t.stop_after = 10;
  submit_first(&t, N_REQ);
  FT_CHECK_EQ_INT(ft_engine_run(t.e), 0);
  FT_CHECK(each_once(&t, N_REQ));
  FT_CHECK_EQ_INT(t.total, N_REQ);
  FT_CHECK(t.ok >= 10);
  FT_CHECK(t.cancelled > 0);
  FT_CHECK_EQ_INT(t.ok + t.cancelled, N_REQ);
  FT_CHECK_EQ_INT(t.other, 0);
  ft_engine_counts c;
  ft_engine_counts_get(t.e, &c);
  FT_CHECK_EQ_INT(c.in_flight, 0);
  FT_CHECK_EQ_INT(c.done, N_REQ);
  ft_engine_free(t.e);
  FT_CHECK_EQ_INT(loop_finish(&t.srv, &t.loop), 0);
}

/* After stopping, the done callback submits another request: it comes
 * back cancelled (through the same callback), and the run still ends. */
FT_TEST(test_submit_in_done_after_stop) {
  static run t;
  FT_CHECK(setup(&t) == 0);
  t.stop_after = 3;
  t.submit_in_done = 1;
  submit_first(&t, N_REQ - 1); /* the last index is the extra one */
  FT_CHECK_EQ_INT(ft_engine_run(t.e), 0);
  FT_CHECK_EQ_INT(t.extra_index, N_REQ - 1);
  FT_CHECK(each_once(&t, N_REQ));
  FT_CHECK_EQ_INT(t.ok + t.cancelled, N_REQ);
  ft_engine_free(t.e);
  FT_CHECK_EQ_INT(loop_finish(&t.srv, &t.loop), 0);
}

/* The source stops the engine and still hands over a request: the engine
 * owns it and must give it back (cancelled), not drop it. */
FT_TEST(test_stop_in_source) {
  static run t;
  FT_CHECK(setup(&t) == 0);
  t.source_stop_at = 50;
  ft_engine_set_source(t.e, source, &t);
  FT_CHECK_EQ_INT(ft_engine_run(t.e), 0);
  FT_CHECK_EQ_INT(t.produced, 51);
  FT_CHECK(each_once(&t, t.produced));
  FT_CHECK_EQ_INT(t.total, t.produced);
  FT_CHECK(t.back[50] == 1);
  ft_engine_free(t.e);
  FT_CHECK_EQ_INT(loop_finish(&t.srv, &t.loop), 0);
}

/* The done callback frees the engine while ft_engine_run drives it: no
 * callback after that, ft_engine_run returns, nothing is left open. */
FT_TEST(test_free_in_done_under_run) {
  static run t;
  FT_CHECK(setup(&t) == 0);
  t.stop_after = 5;
  t.free_in_done = 1;
  submit_first(&t, N_REQ);
  FT_CHECK_EQ_INT(ft_engine_run(t.e), 0); /* e is gone now */
  FT_CHECK(t.freed);
  FT_CHECK_EQ_INT(t.after_free, 0);
  FT_CHECK(t.ok >= 5);
  FT_CHECK(at_most_once(&t));
  FT_CHECK_EQ_INT(loop_finish(&t.srv, &t.loop), 0);
}

/* The same with the caller running its own loop (no ft_engine_run): the
 * engine is freed from inside one of its loop callbacks, so its handles
 * are closed there and it is released when the loop gets to them. */
FT_TEST(test_free_in_done_caller_loop) {
  static run t;
  FT_CHECK(setup(&t) == 0);
  t.stop_after = 5;
  t.free_in_done = 1;
  submit_first(&t, N_REQ);
  for (int i = 0; i < 100000 && !t.freed; i++)
    uv_run(&t.loop, UV_RUN_ONCE);
  FT_CHECK(t.freed);
  FT_CHECK_EQ_INT(t.after_free, 0);
  FT_CHECK(at_most_once(&t));
  FT_CHECK_EQ_INT(loop_finish(&t.srv, &t.loop), 0);
}

/* The source frees the engine: the request it hands over is freed with
 * the rest, and the run ends. */
FT_TEST(test_free_in_source) {
  static run t;
  FT_CHECK(setup(&t) == 0);
  t.source_stop_at = 40;
  t.source_free = 1;
  ft_engine_set_source(t.e, source, &t);
  FT_CHECK_EQ_INT(ft_engine_run(t.e), 0);
  FT_CHECK(t.freed);
  FT_CHECK_EQ_INT(t.after_free, 0);
  FT_CHECK_EQ_INT(t.produced, 41);
  FT_CHECK(at_most_once(&t));
  FT_CHECK_EQ_INT(loop_finish(&t.srv, &t.loop), 0);
}

/* A request refused at once (not http) comes back inside ft_engine_submit,
 * whose done callback frees the engine: submit must not touch it after,
 * and on the caller's loop the rest goes when the loop runs. */
static void free_on_refusal(void *ud, ft_request *req, const ft_response *res) {
  run *t = ud;
  if (t->freed)
    t->after_free++;
  t->total++;
  if (res->error == FT_ERR_URL && !t->freed) {
    t->freed = 1;
    ft_engine_free(t->e);
  }
  ft_request_free(req);
}

FT_TEST(test_free_in_done_from_submit) {
  static run t;
  FT_CHECK(setup(&t) == 0);
  ft_engine_set_done(t.e, free_on_refusal, &t);
  submit_first(&t, 20); /* queued: the engine is not running */
  ft_request *bad = ft_request_new();
  FT_CHECK(bad && ft_request_set(bad, "ftp://127.0.0.1/x", NULL, NULL, 0) == 0);
  if (bad)
    ft_engine_submit(t.e, bad); /* e is gone when this returns */
  FT_CHECK(t.freed);
  FT_CHECK_EQ_INT(t.after_free, 0);
  FT_CHECK(t.total >= 1);
  FT_CHECK_EQ_INT(loop_finish(&t.srv, &t.loop), 0);
}

/* curl's multi handle fails while transfers are in flight: ft_engine_run
 * says so (it returned 0 before, and waited for transfers curl would never
 * finish), and every request still comes back exactly once. */
FT_TEST(test_run_returns_curl_failure) {
  static run t;
  FT_CHECK(setup(&t) == 0);
  submit_first(&t, N_REQ); /* 32 start: curl is called from here on */
  fail_action_from = action_calls + 40;
  FT_CHECK_EQ_INT(ft_engine_run(t.e), FT_ENOMEM);
  failures_off();
  FT_CHECK(each_once(&t, N_REQ));
  FT_CHECK(t.cancelled > 0);
  FT_CHECK_EQ_INT(t.ok + t.cancelled, N_REQ);
  FT_CHECK_EQ_INT(t.other, 0);
  /* the failure stays the run's answer */
  FT_CHECK_EQ_INT(ft_engine_run(t.e), FT_ENOMEM);
  ft_engine_free(t.e);
  FT_CHECK_EQ_INT(loop_finish(&t.srv, &t.loop), 0);
}

/* libuv will not watch curl's socket: the first failure is the one
 * reported (curl's own, which follows from the refused callback, is not),
 * and nothing is answered. */
FT_TEST(test_run_returns_uv_failure) {
  static run t;
  FT_CHECK(setup(&t) == 0);
  fail_poll_start = 1;
  submit_first(&t, 50);
  FT_CHECK_EQ_INT(ft_engine_run(t.e), FT_EUV);
  failures_off();
  FT_CHECK(each_once(&t, 50));
  FT_CHECK_EQ_INT(t.ok, 0);
  FT_CHECK_EQ_INT(t.total, 50);
  ft_engine_free(t.e);
  FT_CHECK_EQ_INT(loop_finish(&t.srv, &t.loop), 0);
}

/* A caller that runs the loop itself, without ft_engine_run: the engine
 * stops on the loop's next turn after the failure, so the loop ends and
 * every request is back. */
FT_TEST(test_failure_stops_engine_on_caller_loop) {
  static run t;
  FT_CHECK(setup(&t) == 0);
  submit_first(&t, N_REQ);
  fail_action_from = action_calls + 40;
  for (int i = 0; i < 100000 && t.total < N_REQ; i++)
    uv_run(&t.loop, UV_RUN_ONCE);
  failures_off();
  FT_CHECK(each_once(&t, N_REQ));
  FT_CHECK(t.cancelled > 0);
  FT_CHECK_EQ_INT(t.ok + t.cancelled, N_REQ);
  ft_engine_free(t.e);
  FT_CHECK_EQ_INT(loop_finish(&t.srv, &t.loop), 0);
}

int main(void) {
  FT_RUN(test_stop_in_done);
  FT_RUN(test_submit_in_done_after_stop);
  FT_RUN(test_stop_in_source);
  FT_RUN(test_free_in_done_under_run);
  FT_RUN(test_free_in_done_caller_loop);
  FT_RUN(test_free_in_source);
  FT_RUN(test_free_in_done_from_submit);
  FT_RUN(test_run_returns_curl_failure);
  FT_RUN(test_run_returns_uv_failure);
  FT_RUN(test_failure_stops_engine_on_caller_loop);
  return FT_DONE();
}
