/* engine.c - the fetch engine: one libuv loop driving one curl multi handle.
 *
 * Design. curl's multi "socket" interface tells us which sockets to watch
 * (on_socket) and when to call it back (on_curl_timer); libuv watches them
 * and we hand readiness back with curl_multi_socket_action, then drain
 * curl_multi_info_read for finished transfers (as in curl's multi-uv
 * example). Two changes to that example matter for speed: a socket's
 * uv_poll handle outlives CURL_POLL_REMOVE and is closed only when curl
 * closes the socket (on_close_socket), so a kept-alive connection does not
 * cost an epoll delete and add per request; and a 0 ms curl timeout stays
 * 0 ms.
 *
 * Scheduling. A request waits for its start in the FIFO queue of its
 * object in the tree (ft_request.obj, else "/"), and the objects with a
 * queue are visited round-robin, one start per object per pass, so that a
 * limited or slow object never holds up the others. pump() starts attempts
 * while fewer than `concurrency` are in flight and the caps and rate
 * limiters on the object's path allow ("/" carries the engine's own rate).
 * Submitted and pulled requests join the back of their queue; a retry
 * whose wait is over goes to the front. When nothing queued can start,
 * requests are pulled from the source, reading ahead while "/" allows a
 * start, up to max_queued queued, so that objects blocked by their own
 * limits do not starve the rest: memory follows max_queued and the
 * requests in flight, not the length of the input. A request waiting for a
 * retry sits in a min-heap by due time and holds no slot. One wake-up (a
 * timerfd on Linux, for sub-millisecond precision; a uv timer elsewhere)
 * fires at the earliest of "a blocked object's limiters allow again" and
 * "next retry is due".
 *
 * Every request that enters leaves exactly once, through the done callback:
 * finished, failed for good, or cancelled by ft_engine_stop. */
#include "engine.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/timerfd.h>
#endif

#include "error.h"
#include "fetch.h"
#include "limiter.h"
#include "request.h"
#include "tree.h"

typedef struct ft_sock {
  uv_poll_t poll;
  curl_socket_t fd;
  ft_engine *e;
  int events; /* what the poll handle watches now (UV_READABLE...), 0: stopped */
  int idle;   /* curl said CURL_POLL_REMOVE but the handle still watches;
                 unreferenced meanwhile, so it keeps no loop running */
} ft_sock;

struct ft_engine {
  uv_loop_t *loop;
  uv_loop_t own_loop;
  int owns_loop;
  CURLM *multi;
  ft_config cfg;
  char *user_agent;
  char *ca_file;

  uv_timer_t curl_timer;
  uv_check_t batch;      /* after each loop turn's socket events, see on_poll */
  int batch_dirty;
  uv_timer_t wake_timer; /* fallback when timerfd is unavailable */
  uv_poll_t wake_poll;
  int wake_fd;
  int wake_armed;
  uint64_t wake_at;

  ft_sock **socks; /* by file descriptor */
  size_t nsocks;

  ft_xfer **xfers; /* every transfer slot, busy or free */
  int nxfers;
  ft_xfer *free_xfers;
  int active;

  ft_request **heap; /* waiting for a retry, by due_ns */
  size_t nheap, capheap;
  size_t max_waiting;

  struct curl_slist *plain_headers; /* see ft_fetch_plain_headers */
  int no_proxy_env;                  /* see ft_fetch_no_proxy_env */

  /* Requests ready to start wait in their object's FIFO (q_head/q_tail,
   * linked through ft_request.next); objects with a non-empty queue are
   * in `runnable`, visited round-robin so that a limited or slow object
   * never holds up the others. */
  ft_tree *tree;
  ft_object **runnable;
  size_t nrunnable, caprunnable, cursor;
  size_t queued;     /* requests in all object queues */
  size_t max_queued; /* pull from the source only below this */
  int holds;         /* outside work (alarms) that keeps ft_engine_run going */
  uint64_t rng;

  ft_source_fn source;
  void *source_ud;
  int source_state; /* 1 may have more, 0 said "not now", -1 exhausted */
  ft_done_fn done;
  void *done_ud;

  int pumping;
  int stopped;
  int handles_open;
  ft_engine_counts counts;
};

void ft_config_default(ft_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->concurrency = 64;
  cfg->host_connections = 0;
  cfg->connect_timeout_ms = 10000;
  cfg->timeout_ms = 30000;
  cfg->max_redirects = 10;
  cfg->max_body = 64 * 1024 * 1024;
  cfg->rps = 0;
  cfg->window_ms = 1000;
  cfg->user_agent = "fetchtree/" FT_VERSION;
  ft_retry_policy_default(&cfg->retry);
}

static uint64_t now_ns(void) { return uv_hrtime(); }

/* ---- the retry heap ---------------------------------------------------- */

static int heap_push(ft_engine *e, ft_request *r) {
  if (e->nheap == e->capheap) {
    size_t n = e->capheap ? e->capheap * 2 : 64;
    ft_request **h = realloc(e->heap, n * sizeof(*h));
    if (!h)
      return FT_ENOMEM;
    e->heap = h;
    e->capheap = n;
  }
  size_t i = e->nheap++;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (e->heap[p]->due_ns <= r->due_ns)
      break;
    e->heap[i] = e->heap[p];
    i = p;
  }
  e->heap[i] = r;
  return 0;
}

static ft_request *heap_pop(ft_engine *e) {
  ft_request *top = e->heap[0];
  ft_request *last = e->heap[--e->nheap];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= e->nheap)
      break;
    if (c + 1 < e->nheap && e->heap[c + 1]->due_ns < e->heap[c]->due_ns)
      c++;
    if (last->due_ns <= e->heap[c]->due_ns)
      break;
    e->heap[i] = e->heap[c];
    i = c;
  }
  if (e->nheap > 0)
    e->heap[i] = last;
  return top;
}

/* ---- sockets ----------------------------------------------------------- */

static void on_sock_closed(uv_handle_t *h) { free(h->data); }

static void process_done(ft_engine *e);

/* A socket event lets curl read or write, and nothing more: the transfers
 * it finished are handed on, and new ones started, once per loop turn in
 * on_batch, after every socket that epoll reported ready has been served.
 * Starting the next request the moment one answer is read sends requests
 * one at a time, and a server asleep in epoll is woken for each (nginx
 * switched context 20 times as often as with curl's own perform loop);
 * sent together, they are read together. */
static void on_poll(uv_poll_t *h, int status, int events) {
  ft_sock *s = h->data;
  ft_engine *e = s->e;
  int flags = 0;
  int running;
  if (s->idle) {
    /* a kept-alive connection curl is not using: the server closed it,
     * most likely. Stop watching (curl finds out when it next uses it). */
    uv_poll_stop(&s->poll);
    uv_ref((uv_handle_t *)&s->poll); /* stopped: it holds nothing now */
    s->events = 0;
    s->idle = 0;
    return;
  }
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  curl_multi_socket_action(e->multi, s->fd, flags, &running);
  e->batch_dirty = 1;
}

static void on_batch(uv_check_t *h) {
  ft_engine *e = h->data;
  if (!e->batch_dirty)
    return;
  e->batch_dirty = 0;
  process_done(e);
}

static ft_sock *sock_get(ft_engine *e, curl_socket_t fd) {
  if (fd < 0)
    return NULL;
  if ((size_t)fd >= e->nsocks) {
    size_t n = e->nsocks ? e->nsocks : 64;
    while (n <= (size_t)fd)
      n *= 2;
    ft_sock **p = realloc(e->socks, n * sizeof(*p));
    if (!p)
      return NULL;
    memset(p + e->nsocks, 0, (n - e->nsocks) * sizeof(*p));
    e->socks = p;
    e->nsocks = n;
  }
  ft_sock *s = e->socks[fd];
  if (s)
    return s;
  s = calloc(1, sizeof(*s));
  if (!s)
    return NULL;
  if (uv_poll_init_socket(e->loop, &s->poll, fd) != 0) {
    free(s);
    return NULL;
  }
  s->fd = fd;
  s->e = e;
  s->poll.data = s;
  e->socks[fd] = s;
  return s;
}

static void sock_close(ft_engine *e, curl_socket_t fd) {
  if (fd < 0 || (size_t)fd >= e->nsocks || !e->socks[fd])
    return;
  ft_sock *s = e->socks[fd];
  e->socks[fd] = NULL;
  uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

/* libuv's uv_poll_start and uv_poll_stop each take the descriptor out of
 * epoll (uv_poll_start stops first) and the next loop turn puts it back:
 * three epoll_ctl calls a request when curl says REMOVE as a transfer ends
 * and IN as the next one starts on the same connection. So the handle is
 * left alone when curl asks for what it already watches, and REMOVE only
 * marks it idle: an event on an idle socket stops it then (on_poll). An
 * idle handle is unreferenced (uv_unref, no system call) until curl wants
 * the socket again: a kept-alive connection must not keep the loop running,
 * which an embedder's own loop under UV_RUN_DEFAULT would otherwise do until
 * the server closed it. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *ud,
                     void *sockp) {
  ft_engine *e = ud;
  (void)easy;
  (void)sockp;
  if (what == CURL_POLL_REMOVE) {
    ft_sock *s = (size_t)fd < e->nsocks ? e->socks[fd] : NULL;
    if (s && !s->idle) {
      s->idle = 1;
      uv_unref((uv_handle_t *)&s->poll);
    }
    return 0;
  }
  ft_sock *s = sock_get(e, fd);
  if (!s)
    return -1;
  int events = 0;
  if (what & CURL_POLL_IN)
    events |= UV_READABLE;
  if (what & CURL_POLL_OUT)
    events |= UV_WRITABLE;
  if (s->idle) {
    s->idle = 0;
    uv_ref((uv_handle_t *)&s->poll);
  }
  if (events == s->events)
    return 0;
  if (uv_poll_start(&s->poll, events, on_poll) != 0)
    return -1;
  s->events = events;
  return 0;
}

/* curl closes every socket it opened through here: drop its poll handle
 * first, so libuv forgets the descriptor before the number is reused. */
static int on_close_socket(void *ud, curl_socket_t fd) {
  sock_close(ud, fd);
  return close(fd);
}

static void on_curl_timeout(uv_timer_t *t) {
  ft_engine *e = t->data;
  int running;
  curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  process_done(e);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *ud) {
  ft_engine *e = ud;
  (void)multi;
  if (timeout_ms < 0)
    uv_timer_stop(&e->curl_timer);
  else
    uv_timer_start(&e->curl_timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
  return 0;
}

/* ---- the wake-up ------------------------------------------------------- */

static void pump(ft_engine *e);

/* The wake-up is set FT_WAKE_EARLY before its time and the rest is spun
 * away: epoll's latency (tens of microseconds) would otherwise make every
 * window start late, and with a sliding log lateness adds up window after
 * window (2,000 windows of 10 ms lost 1% of the rate before this). */
#define FT_WAKE_EARLY 150000u  /* ns */

static void wake_fired(ft_engine *e) {
  uint64_t at = e->wake_at;
  e->wake_armed = 0;
  if (e->wake_fd >= 0) {
    uint64_t now = now_ns();
    while (now < at && at - now <= 2 * FT_WAKE_EARLY)
      now = now_ns();
  }
  pump(e);
}

static void on_wake_poll(uv_poll_t *h, int status, int events) {
  ft_engine *e = h->data;
  uint64_t n;
  (void)status;
  (void)events;
  while (read(e->wake_fd, &n, sizeof(n)) == (ssize_t)sizeof(n))
    ;
  uv_poll_stop(&e->wake_poll);
  wake_fired(e);
}

static void on_wake_timer(uv_timer_t *t) { wake_fired(t->data); }

/* Make sure pump() runs again no later than at (uv_hrtime clock). */
static void wake_at(ft_engine *e, uint64_t at) {
  if (e->wake_armed && e->wake_at <= at)
    return;
  e->wake_armed = 1;
  e->wake_at = at;
#ifdef __linux__
  if (e->wake_fd >= 0) {
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    uint64_t fire = at > FT_WAKE_EARLY ? at - FT_WAKE_EARLY : 1;
    its.it_value.tv_sec = (time_t)(fire / 1000000000u);
    its.it_value.tv_nsec = (long)(fire % 1000000000u); /* 0 would disarm */
    if (timerfd_settime(e->wake_fd, TFD_TIMER_ABSTIME, &its, NULL) == 0) {
      uv_poll_start(&e->wake_poll, UV_READABLE, on_wake_poll);
      return;
    }
  }
#endif
  uint64_t now = now_ns();
  uint64_t ms = at > now ? (at - now + 999999) / 1000000 : 0;
  uv_timer_start(&e->wake_timer, on_wake_timer, ms, 0);
}

/* ---- scheduling -------------------------------------------------------- */

static ft_xfer *xfer_get(ft_engine *e) {
  ft_xfer *x = e->free_xfers;
  if (x) {
    e->free_xfers = x->next;
    return x;
  }
  ft_xfer **v = realloc(e->xfers, (size_t)(e->nxfers + 1) * sizeof(*v));
  if (!v)
    return NULL;
  e->xfers = v;
  x = malloc(sizeof(*x));
  if (!x)
    return NULL;
  if (ft_xfer_init(x, e) != 0) {
    free(x);
    return NULL;
  }
  x->plain_headers = e->plain_headers;
  x->no_proxy_env = e->no_proxy_env;
  e->xfers[e->nxfers++] = x;
  return x;
}

static void xfer_put(ft_engine *e, ft_xfer *x) {
  ft_xfer_clear(x);
  x->next = e->free_xfers;
  e->free_xfers = x;
}

/* Hand a request back to its owner with an outcome that has no response. */
static void finish_bare(ft_engine *e, ft_request *r, ft_errkind kind,
                        const char *msg) {
  ft_response res;
  memset(&res, 0, sizeof(res));
  res.attempts = r->attempts;
  if (r->first_start_ns)
    res.elapsed_ms = (double)(now_ns() - r->first_start_ns) / 1e6;
  res.error = kind;
  res.message = msg;
  e->counts.done++;
  ft_object_count(r->obj, &res); /* NULL (never queued): counts nowhere */
  if (e->done)
    e->done(e->done_ud, r, &res);
  else
    ft_request_free(r);
}

static int start(ft_engine *e, ft_request *r, uint64_t now) {
  /* what a producer asks for but cannot be sent as given (a framing
   * header, a line break in a header, a NUL in a URL from Lua) ends as
   * input before it is tried, whichever way it came (request.h) */
  if (r->attempts == 0) {
    char why[512];
    ft_errkind bad = ft_request_check(r, why, sizeof(why));
    if (bad != FT_ERR_NONE) {
      finish_bare(e, r, bad, why);
      return 0;
    }
  }
  if (!r->url || (strncasecmp(r->url, "http://", 7) != 0 &&
                  strncasecmp(r->url, "https://", 8) != 0)) {
    finish_bare(e, r, FT_ERR_URL, "only http and https URLs are fetched");
    return 0;
  }
  ft_xfer *x = xfer_get(e);
  if (!x) {
    finish_bare(e, r, FT_ERR_INTERNAL, "out of memory");
    return 0;
  }
  if (ft_xfer_prepare(x, r, &e->cfg, on_close_socket, e) != 0) {
    char msg[CURL_ERROR_SIZE];
    memcpy(msg, x->errbuf, sizeof(msg));
    xfer_put(e, x);
    finish_bare(e, r, FT_ERR_INTERNAL, msg);
    return 0;
  }
  if (r->attempts == 0)
    r->first_start_ns = now;
  else
    e->counts.retried++;
  r->attempts++;
  if (curl_multi_add_handle(e->multi, x->easy) != CURLM_OK) {
    xfer_put(e, x);
    finish_bare(e, r, FT_ERR_INTERNAL, "curl_multi_add_handle failed");
    return 0;
  }
  e->active++;
  e->counts.started++;
  return 1;
}

/* ---- object queues ------------------------------------------------------ */

static void enqueue(ft_engine *e, ft_request *r, int front) {
  ft_object *o = r->obj ? r->obj : ft_tree_root(e->tree);
  r->obj = o;
  if (front) {
    r->next = o->q_head;
    o->q_head = r;
    if (!o->q_tail)
      o->q_tail = r;
  } else {
    r->next = NULL;
    if (o->q_tail)
      ((ft_request *)o->q_tail)->next = r;
    else
      o->q_head = r;
    o->q_tail = r;
  }
  o->queued++;
  e->queued++;
  if (o->runnable)
    return;
  if (e->nrunnable == e->caprunnable) {
    size_t n = e->caprunnable ? e->caprunnable * 2 : 16;
    ft_object **v = realloc(e->runnable, n * sizeof(*v));
    if (!v) {
      /* cannot track it: fail the request rather than lose it */
      o->q_head = r->next;
      if (!o->q_head)
        o->q_tail = NULL;
      o->queued--;
      e->queued--;
      finish_bare(e, r, FT_ERR_INTERNAL, "out of memory");
      return;
    }
    e->runnable = v;
    e->caprunnable = n;
  }
  e->runnable[e->nrunnable++] = o;
  o->runnable = 1;
}

/* Take the head of runnable[i]'s queue; drop the object from the runnable
 * list when its queue empties (the last one moves into slot i). */
static ft_request *dequeue(ft_engine *e, size_t i) {
  ft_object *o = e->runnable[i];
  ft_request *r = o->q_head;
  o->q_head = r->next;
  if (!o->q_head)
    o->q_tail = NULL;
  r->next = NULL;
  o->queued--;
  e->queued--;
  if (o->queued == 0) {
    o->runnable = 0;
    e->runnable[i] = e->runnable[--e->nrunnable];
  }
  return r;
}

/* Pull one request from the source into its object's queue. Returns 1 if
 * one came, 0 if not (the source has none now, or is exhausted). */
static int pull(ft_engine *e) {
  if (!e->source || e->source_state < 0 || e->nheap >= e->max_waiting)
    return 0;
  ft_request *r = NULL;
  int rc = e->source(e->source_ud, &r);
  if (rc > 0 && r) {
    e->source_state = 1;
    enqueue(e, r, 0);
    return 1;
  }
  e->source_state = rc < 0 ? -1 : 0;
  return 0;
}

/* Start as many attempts as the caps and limiters on each request's path
 * allow. Requests are pulled from the source only when nothing queued can
 * start, so the source is consumed as capacity frees up and no sooner.
 * Returns how many were started. */
static int start_some(ft_engine *e) {
  int started = 0;
  ft_object *root = ft_tree_root(e->tree);
  while (!e->stopped && e->active < e->cfg.concurrency) {
    uint64_t now = now_ns();
    while (e->nheap > 0 && e->heap[0]->due_ns <= now)
      enqueue(e, heap_pop(e), 1);
    uint64_t wake = 0;
    int progress = 0;
    size_t n = e->nrunnable;
    for (size_t step = 0; step < n && e->nrunnable > 0; step++) {
      if (e->active >= e->cfg.concurrency)
        break;
      size_t i = e->cursor % e->nrunnable;
      ft_object *o = e->runnable[i];
      uint64_t d = ft_object_admit(o, now);
      if (d != 0) {
        if (d != FT_TREE_BUSY && (wake == 0 || now + d < wake))
          wake = now + d;
        e->cursor = i + 1;
        continue;
      }
      ft_request *r = dequeue(e, i);
      if (o->runnable)
        e->cursor = i + 1; /* one start per object per pass */
      ft_object_start(o, now);
      if (start(e, r, now))
        started++;
      else
        ft_object_finish(o);
      progress = 1;
    }
    if (progress)
      continue;
    /* Nothing queued could start. Pull more only if it might: not while
     * the root itself is blocked, except for one request so that a run
     * whose input has ended learns so instead of waiting out a window. */
    uint64_t rd = ft_object_admit(root, now);
    if ((rd == 0 && e->queued < e->max_queued) || e->queued == 0) {
      if (pull(e))
        continue;
    }
    if (wake)
      wake_at(e, wake);
    break;
  }
  return started;
}

static int drain_done(ft_engine *e);

/* Start what can start, then let curl send it at once rather than on the
 * next turn of the loop: the request leaves when the limiter counted it,
 * and a loop iteration per batch is saved. Transfers that finish during
 * that call free slots, so go round again (a few times at most). */
static void pump(ft_engine *e) {
  if (e->pumping || e->stopped)
    return;
  e->pumping = 1;
  for (int round = 0; round < 4; round++) {
    if (start_some(e) == 0)
      break;
    int running;
    curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    if (drain_done(e) == 0)
      break;
  }
  if (!e->stopped && e->nheap > 0)
    wake_at(e, e->heap[0]->due_ns);
  e->pumping = 0;
}

/* One attempt ended: retry it, or hand the outcome to the owner. */
static void finish_attempt(ft_engine *e, ft_xfer *x, CURLcode rc) {
  ft_request *r = x->req;
  CURL *c = x->easy;
  long status = 0, os_errno = 0, redirects = 0;
  char *final_url = NULL;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
  curl_easy_getinfo(c, CURLINFO_REDIRECT_COUNT, &redirects);
  curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &final_url);

  int transient = 0;
  ft_errkind kind = x->oom ? FT_ERR_INTERNAL
                           : ft_fetch_classify(rc, os_errno, redirects,
                                               x->too_large, &transient);
  const char *msg = "";
  if (kind != FT_ERR_NONE)
    msg = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
  if (kind == FT_ERR_TOO_LARGE)
    msg = "response body larger than the maximum size";

  ft_response res;
  memset(&res, 0, sizeof(res));
  res.error = kind;
  res.message = msg;

  if (kind == FT_ERR_NONE || transient) {
    ft_retry_policy pol = e->cfg.retry;
    if (r->retries >= 0)
      pol.max_retries = r->retries;
    else if (r->obj->retries >= 0) /* started, so queued: obj is set */
      pol.max_retries = r->obj->retries;
    uint64_t delay = 0;
    int reason = 0;
    long st = kind == FT_ERR_NONE ? status : 0;
    const char *ra = ft_xfer_header(x, "retry-after");
    int d = ft_retry_decide(&pol, r->attempts, st, transient, ra,
                            (int64_t)time(NULL), &e->rng, &delay, &reason);
    if (d > 0 && !e->stopped) {
      r->due_ns = now_ns() + delay;
      xfer_put(e, x);
      if (heap_push(e, r) != 0)
        finish_bare(e, r, FT_ERR_INTERNAL, "out of memory");
      return;
    }
    if (d < 0 && pol.max_retries == 0 && reason != FT_RETRY_AFTER_TOO_LONG) {
      /* no retries were allowed: the outcome is what it is */
    } else if (d < 0) {
      res.cause = kind == FT_ERR_NONE ? FT_ERR_HTTP : kind;
      if (reason == FT_RETRY_AFTER_TOO_LONG) {
        res.error = FT_ERR_RETRY_AFTER;
        res.message = "server asked to retry later than --max-retry-after";
      } else {
        res.error = FT_ERR_RETRIES;
        if (kind == FT_ERR_NONE) {
          snprintf(x->errbuf, sizeof(x->errbuf), "HTTP %ld", status);
          res.message = x->errbuf;
        }
      }
    }
  }

  res.status = status;
  res.final_url = final_url;
  res.body = x->body ? x->body : "";
  res.body_len = x->body_len;
  res.headers = x->hdr;
  res.headers_len = x->hdr_len;
  res.header_count = x->hdr_count;
  res.attempts = r->attempts;
  res.elapsed_ms = (double)(now_ns() - r->first_start_ns) / 1e6;
  e->counts.done++;
  ft_object_count(r->obj, &res);
  if (e->done)
    e->done(e->done_ud, r, &res);
  else
    ft_request_free(r);
  xfer_put(e, x);
}

/* Hand every finished transfer on; returns how many there were. */
static int drain_done(ft_engine *e) {
  CURLMsg *m;
  int left;
  int n = 0;
  while ((m = curl_multi_info_read(e->multi, &left))) {
    if (m->msg != CURLMSG_DONE)
      continue;
    CURL *c = m->easy_handle;
    CURLcode rc = m->data.result;
    ft_xfer *x = NULL;
    curl_easy_getinfo(c, CURLINFO_PRIVATE, (char **)&x);
    curl_multi_remove_handle(e->multi, c);
    e->active--;
    ft_object_finish(x->req->obj);
    finish_attempt(e, x, rc);
    n++;
  }
  return n;
}

static void process_done(ft_engine *e) {
  drain_done(e);
  pump(e);
}

/* ---- life cycle -------------------------------------------------------- */

/* The engine's own rate is the limit on "/" (rps <= 0 removes it), set on
 * the object itself both at creation and live. */
static int set_root_rate(ft_engine *e, double rps, double window_ms) {
  ft_obj_settings st;
  memset(&st, 0, sizeof(st));
  st.has_rps = 1;
  st.rps = rps;
  st.window_ms = window_ms;
  return ft_object_set(ft_tree_root(e->tree), &st);
}

int ft_engine_new(ft_engine **out, uv_loop_t *loop, const ft_config *cfg) {
  int rc = FT_ENOMEM;
  *out = NULL;
  ft_engine *e = calloc(1, sizeof(*e));
  if (!e)
    return FT_ENOMEM;
  e->cfg = *cfg;
  e->wake_fd = -1;
  if (e->cfg.concurrency < 1)
    e->cfg.concurrency = 1;
  e->max_waiting = (size_t)e->cfg.concurrency * 4;
  if (e->max_waiting < 1024)
    e->max_waiting = 1024;
  e->max_queued = e->max_waiting; /* the same bound on the object queues */
  if (cfg->user_agent) {
    e->user_agent = strdup(cfg->user_agent);
    if (!e->user_agent)
      goto fail;
    e->cfg.user_agent = e->user_agent;
  }
  if (cfg->ca_file) {
    e->ca_file = strdup(cfg->ca_file);
    if (!e->ca_file)
      goto fail;
    e->cfg.ca_file = e->ca_file;
  }
  e->rng = cfg->seed ? cfg->seed : uv_hrtime() ^ (uint64_t)(uintptr_t)e;

  if (loop) {
    e->loop = loop;
  } else {
    if (uv_loop_init(&e->own_loop) != 0) {
      rc = FT_EUV;
      goto fail;
    }
    e->loop = &e->own_loop;
    e->owns_loop = 1;
  }
  e->plain_headers =
      ft_fetch_plain_headers(e->cfg.user_agent, e->cfg.compressed);
  e->no_proxy_env = ft_fetch_no_proxy_env();
  rc = ft_tree_new(&e->tree);
  if (rc != 0)
    goto fail;
  if (cfg->rps > 0) {
    rc = set_root_rate(e, cfg->rps, cfg->window_ms);
    if (rc != 0)
      goto fail;
  }
  rc = FT_ECURL;
  e->multi = curl_multi_init();
  if (!e->multi)
    goto fail;
  curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
  curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
  curl_multi_setopt(e->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS,
                    (long)e->cfg.concurrency * 2);
  if (e->cfg.host_connections > 0)
    curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      (long)e->cfg.host_connections);

  uv_timer_init(e->loop, &e->curl_timer);
  uv_timer_init(e->loop, &e->wake_timer);
  uv_check_init(e->loop, &e->batch);
  e->curl_timer.data = e;
  e->wake_timer.data = e;
  e->batch.data = e;
  uv_check_start(&e->batch, on_batch);
  uv_unref((uv_handle_t *)&e->batch); /* it never keeps a loop running */
  e->handles_open = 3;
#ifdef __linux__
  e->wake_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (e->wake_fd >= 0) {
    if (uv_poll_init(e->loop, &e->wake_poll, e->wake_fd) == 0) {
      e->wake_poll.data = e;
      e->handles_open++;
    } else {
      close(e->wake_fd);
      e->wake_fd = -1;
    }
  }
#endif
  *out = e;
  return 0;
fail:
  curl_slist_free_all(e->plain_headers);
  ft_tree_free(e->tree);
  if (e->owns_loop)
    uv_loop_close(&e->own_loop);
  free(e->user_agent);
  free(e->ca_file);
  free(e);
  return rc;
}

void ft_engine_set_source(ft_engine *e, ft_source_fn fn, void *ud) {
  e->source = fn;
  e->source_ud = ud;
  e->source_state = fn ? 1 : -1;
}

void ft_engine_set_done(ft_engine *e, ft_done_fn fn, void *ud) {
  e->done = fn;
  e->done_ud = ud;
}

void ft_engine_submit(ft_engine *e, ft_request *r) {
  r->next = NULL;
  if (e->stopped) {
    finish_bare(e, r, FT_ERR_CANCELLED, "the run was stopped");
    return;
  }
  enqueue(e, r, 0);
  pump(e);
}

void ft_engine_kick(ft_engine *e) {
  if (e->source && e->source_state == 0)
    e->source_state = 1;
  pump(e);
}

static int has_work(ft_engine *e) {
  if (e->stopped)
    return 0;
  return e->active > 0 || e->nheap > 0 || e->queued > 0 || e->holds > 0 ||
         (e->source && e->source_state > 0);
}

void ft_engine_hold(ft_engine *e, int delta) { e->holds += delta; }

ft_tree *ft_engine_tree(ft_engine *e) { return e->tree; }

int ft_engine_run(ft_engine *e) {
  pump(e);
  while (has_work(e)) {
    uv_run(e->loop, UV_RUN_ONCE);
    /* a source that said "not now" with nothing in flight would wait for
     * ever: ask it again, and stop if it still has nothing */
    if (!e->stopped && e->active == 0 && e->nheap == 0 && e->queued == 0 &&
        e->holds == 0 && e->source && e->source_state == 0) {
      e->source_state = 1;
      pump(e);
      if (e->active == 0 && e->nheap == 0 && e->queued == 0)
        break;
    }
  }
  return 0;
}

void ft_engine_stop(ft_engine *e) {
  if (e->stopped)
    return;
  e->stopped = 1;
  for (int i = 0; i < e->nxfers; i++) {
    ft_xfer *x = e->xfers[i];
    if (!x->req)
      continue;
    ft_request *r = x->req;
    curl_multi_remove_handle(e->multi, x->easy);
    e->active--;
    ft_object_finish(r->obj);
    xfer_put(e, x);
    finish_bare(e, r, FT_ERR_CANCELLED, "the run was stopped");
  }
  while (e->nheap > 0)
    finish_bare(e, heap_pop(e), FT_ERR_CANCELLED, "the run was stopped");
  while (e->nrunnable > 0)
    finish_bare(e, dequeue(e, 0), FT_ERR_CANCELLED, "the run was stopped");
}

int ft_engine_set_rate(ft_engine *e, double rps, double window_ms) {
  int rc = set_root_rate(e, rps, window_ms);
  if (rc == 0) {
    e->cfg.rps = rps;
    e->cfg.window_ms = window_ms;
    pump(e);
  }
  return rc;
}

uv_loop_t *ft_engine_loop(ft_engine *e) { return e->loop; }

void ft_engine_counts_get(const ft_engine *e, ft_engine_counts *c) {
  *c = e->counts;
  c->in_flight = e->active;
  c->waiting = (int)e->nheap;
}

static void on_handle_closed(uv_handle_t *h) {
  ft_engine *e = h->data;
  e->handles_open--;
}

void ft_engine_free(ft_engine *e) {
  if (!e)
    return;
  /* requests still held are freed without a callback */
  e->done = NULL;
  ft_engine_stop(e);
  for (int i = 0; i < e->nxfers; i++) {
    ft_xfer_cleanup(e->xfers[i]);
    free(e->xfers[i]);
  }
  free(e->xfers);
  /* closes the cached connections, which calls on_close_socket */
  curl_multi_cleanup(e->multi);
  for (size_t i = 0; i < e->nsocks; i++)
    sock_close(e, (curl_socket_t)i);
  free(e->socks);
  uv_close((uv_handle_t *)&e->curl_timer, on_handle_closed);
  uv_close((uv_handle_t *)&e->wake_timer, on_handle_closed);
  uv_close((uv_handle_t *)&e->batch, on_handle_closed);
  if (e->wake_fd >= 0)
    uv_close((uv_handle_t *)&e->wake_poll, on_handle_closed);
  /* let the close callbacks run (on a caller's loop too: they are ours) */
  while (e->handles_open > 0)
    uv_run(e->loop, UV_RUN_NOWAIT);
  if (e->wake_fd >= 0)
    close(e->wake_fd);
  if (e->owns_loop) {
    uv_run(e->loop, UV_RUN_DEFAULT);
    uv_loop_close(e->loop);
  }
  ft_tree_free(e->tree);
  free(e->heap);
  free(e->runnable);
  curl_slist_free_all(e->plain_headers);
  free(e->user_agent);
  free(e->ca_file);
  free(e);
}
