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
 * 0 ms. curl does not call on_close_socket for every socket it closes
 * (7.88 closes one whose connect timed out with a plain close), so a handle
 * kept past REMOVE is checked, once curl returns, to still be watching the
 * socket it was made for (see verify_socks), and a socket curl opens
 * (on_open_socket) drops a handle left on its number.
 *
 * Scheduling. A request waits for its start in the FIFO queue of its
 * object in the tree (ft_request.obj, else "/"), and the objects with a
 * queue are visited round-robin, one start per object per pass, so that a
 * limited or slow object never holds up the others. start_and_send()
 * starts attempts while fewer than `concurrency` are in flight and the caps
 * and rate limiters on the object's path allow ("/" carries the engine's
 * own rate), and hands them to curl at once.
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
 * finished, failed for good, or cancelled by ft_engine_stop.
 *
 * Re-entry. The done and source callbacks may call back into the engine
 * (submit, recheck, stop, set_rate, even free), so nothing the engine still
 * uses after a callback may be reachable from one: a request is detached
 * from its transfer before it is handed back (ft_engine_stop, walking the
 * transfers, cannot find it a second time), a request that arrives once
 * the engine is stopped comes back cancelled (enqueue), and every entry
 * that can reach a callback (an API call or one of the engine's loop
 * callbacks) is a frame counted in `depth`: ft_engine_free inside one only
 * stops the engine and marks it, and the outermost frame frees it on its
 * way out (frame_leave). */
#include "engine.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
  int suspect; /* made idle during the current curl call, which may also
                  close the socket without on_close_socket: listed in
                  e->suspects until verify_socks looks */
  dev_t dev;   /* identity (fstat) of the socket the handle was made for: */
  ino_t ino;   /* a number curl closed and reused is another socket */
} ft_sock;

struct ft_engine {
  uv_loop_t *loop;
  uv_loop_t own_loop;
  int owns_loop;
  CURLM *multi;
  ft_config cfg;
  char *user_agent;
  char *ca_file;
  char *sensitive_headers;

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
  curl_socket_t *suspects; /* sockets curl said REMOVE for: verify_socks */
  size_t nsuspects, capsuspects;

  ft_xfer **xfers; /* every transfer slot, busy or free */
  int nxfers;
  ft_xfer *free_xfers;
  int active;

  ft_request **heap; /* waiting for a retry, by due_ns */
  size_t nheap, capheap;
  size_t max_waiting;

  struct curl_slist *plain_headers; /* see ft_fetch_plain_headers */
  int no_proxy_env;                  /* see ft_fetch_no_proxy_env */

  /* Requests ready to start wait in their object's FIFO (an ft_objq in
   * the object's slot, linked through ft_request.next); objects with a
   * non-empty queue are in `runnable`, visited round-robin so that a
   * limited or slow object never holds up the others. */
  ft_tree *tree;
  ft_object **runnable;
  size_t nrunnable, caprunnable, cursor;
  size_t queued;     /* requests in all object queues */
  size_t max_queued; /* pull from the source only below this */
  int outside_work; /* pending work outside the engine (alarms) that keeps
                     * ft_engine_run going: ft_engine_outside_work */
  uint64_t rng;

  ft_source_fn source;
  void *source_ud;
  int source_state; /* 1 may have more, 0 said "not now", -1 exhausted */
  ft_done_fn done;
  void *done_ud;

  int starting;
  int stopped;
  int error; /* the first failure the loop cannot go on after (see fail) */
  int handles_open;
  int depth;        /* frames on the stack that may reach a callback */
  int free_pending; /* ft_engine_free was called inside one: frame_leave */
  ft_engine_counts counts;
};

/* The engine's state for one object of its tree, kept in the slot the tree
 * holds on every object for its creator (ft_object.slot): the tree knows
 * nothing of queues, and the engine needs no lookup to find one. */
typedef struct ft_objq {
  ft_request *head, *tail; /* ready to start, linked through ft_request.next */
  size_t queued;           /* requests in the queue */
  int runnable;            /* listed in the engine's runnable array */
} ft_objq;

static ft_objq *objq(const ft_object *o) { return o->slot; }

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

/* ---- frames: entries that may reach the done or source callback -------- */

static void destroy(ft_engine *e, int may_run_loop);

/* What kind of frame is left: ft_engine_run (the loop is not running), any
 * other API call (on a caller's loop, it may come from one of the caller's
 * loop callbacks), or one of the engine's own loop callbacks. */
enum { FRAME_RUN, FRAME_API, FRAME_LOOP };

static void frame_enter(ft_engine *e) { e->depth++; }

/* Leaves a frame; the outermost one frees the engine when ft_engine_free
 * was called inside it. Returns 1 when e is gone (the caller must not
 * touch it again), else 0. libuv's loop is not reentrant, so the teardown
 * runs the loop only where it cannot be running: under ft_engine_run, or
 * on a loop of the engine's own (which only ft_engine_run runs); elsewhere
 * destroy ends it asynchronously. */
static int frame_leave(ft_engine *e, int frame) {
  if (--e->depth > 0 || !e->free_pending)
    return 0;
  destroy(e, frame == FRAME_RUN || (frame == FRAME_API && e->owns_loop));
  return 1;
}

static void collect_and_start(ft_engine *e);

/* Is s's descriptor still the socket the handle was made for? */
static int sock_same(const ft_sock *s) {
  struct stat st;
  return fstat(s->fd, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino;
}

static void sock_close(ft_engine *e, curl_socket_t fd);

/* After a curl call: curl said REMOVE for the sockets in e->suspects, and
 * may have closed some of them without on_close_socket. A handle kept for
 * one of those must go before the loop polls again: libuv would put a
 * closed descriptor back into epoll (EBADF, and libuv aborts) or watch a
 * new socket that took its number through the old registration. */
static void verify_socks(ft_engine *e) {
  for (size_t i = 0; i < e->nsuspects; i++) {
    curl_socket_t fd = e->suspects[i];
    ft_sock *s = (size_t)fd < e->nsocks ? e->socks[fd] : NULL;
    if (!s || !s->suspect)
      continue; /* gone already, or listed twice */
    s->suspect = 0;
    if (s->idle && !sock_same(s))
      sock_close(e, fd);
  }
  e->nsuspects = 0;
}

/* Records a failure the loop cannot go on after: curl's multi handle gave
 * up, or libuv would not watch a socket or arm a timer, so transfers could
 * wait for ever. The first one is kept for ft_engine_run to return; the
 * engine is stopped (every request back, cancelled) by stop_if_failed at
 * the next safe point, never here: this may run inside a curl call, where
 * removing handles is not allowed, or in a frame that does not guard e
 * against a done callback freeing it. */
static void fail(ft_engine *e, int code) {
  if (e->error == 0)
    e->error = code;
}

static void stop_if_failed(ft_engine *e) {
  if (e->error != 0 && !e->stopped)
    ft_engine_stop(e);
}

/* Every call into curl that may close sockets goes through these two. */
static void curl_action(ft_engine *e, curl_socket_t fd, int flags) {
  int running;
  CURLMcode mc = curl_multi_socket_action(e->multi, fd, flags, &running);
  if (e->nsuspects > 0)
    verify_socks(e);
  /* CURLM_BAD_SOCKET: an event for a socket curl has let go of already,
   * which it ignores; anything else is the multi handle failing (after a
   * socket callback refused, that callback has said why) */
  if (mc != CURLM_OK && mc != CURLM_BAD_SOCKET)
    fail(e, mc == CURLM_OUT_OF_MEMORY ? FT_ENOMEM : FT_ECURL);
}

static void curl_remove(ft_engine *e, CURL *c) {
  curl_multi_remove_handle(e->multi, c);
  if (e->nsuspects > 0)
    verify_socks(e);
}

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
  if (s->idle) {
    /* a kept-alive connection curl is not using: the server closed it,
     * most likely. Stop watching (curl finds out when it next uses it). */
    uv_poll_stop(&s->poll);
    uv_ref((uv_handle_t *)&s->poll); /* stopped: it holds nothing now */
    s->events = 0;
    s->idle = 0;
    return;
  }
  if (status < 0) {
    /* libuv stopped the handle (POLLERR): curl learns of the error, and
     * the next on_socket starts the handle again */
    flags = CURL_CSELECT_ERR;
    s->events = 0;
  }
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  curl_action(e, s->fd, flags);
  e->batch_dirty = 1;
}

static void on_batch(uv_check_t *h) {
  ft_engine *e = h->data;
  if (!e->batch_dirty && (e->error == 0 || e->stopped))
    return;
  e->batch_dirty = 0;
  frame_enter(e);
  collect_and_start(e);
  stop_if_failed(e); /* for a caller that runs the loop itself */
  frame_leave(e, FRAME_LOOP);
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
  struct stat st;
  if (fstat(fd, &st) != 0 || uv_poll_init_socket(e->loop, &s->poll, fd) != 0) {
    free(s);
    return NULL;
  }
  s->dev = st.st_dev;
  s->ino = st.st_ino;
  s->fd = fd;
  s->e = e;
  s->poll.data = s;
  e->socks[fd] = s;
  return s;
}

/* Forget the handle for fd, if any: it is closed (which also takes fd
 * out of epoll, if it is still the descriptor the handle was made for). */
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
  ft_sock *s = (size_t)fd < e->nsocks ? e->socks[fd] : NULL;
  if (what == CURL_POLL_REMOVE) {
    if (s && !s->idle) {
      if (e->nsuspects == e->capsuspects) {
        size_t n = e->capsuspects ? e->capsuspects * 2 : 64;
        curl_socket_t *v = realloc(e->suspects, n * sizeof(*v));
        if (!v) {
          sock_close(e, fd); /* cannot check it later: drop it now */
          return 0;
        }
        e->suspects = v;
        e->capsuspects = n;
      }
      e->suspects[e->nsuspects++] = fd;
      s->suspect = 1;
      s->idle = 1;
      uv_unref((uv_handle_t *)&s->poll);
    }
    return 0;
  }
  /* removed during this curl call and asked for again: the same socket,
   * or a new one that took the number of one closed behind our back */
  if (s && s->suspect && !sock_same(s))
    sock_close(e, fd);
  s = sock_get(e, fd);
  if (!s) {
    fail(e, FT_ENOMEM); /* or fstat or libuv refused the descriptor */
    return -1;
  }
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
  if (uv_poll_start(&s->poll, events, on_poll) != 0) {
    fail(e, FT_EUV);
    return -1;
  }
  s->events = events;
  return 0;
}

/* curl closes most sockets it opened through here: drop the poll handle
 * first, so libuv forgets the descriptor before the number is reused. */
static int on_close_socket(void *ud, curl_socket_t fd) {
  sock_close(ud, fd);
  return close(fd);
}

/* Every socket curl connects with is opened here. Its number is free, so a
 * handle still kept for that number belongs to a socket curl closed
 * without on_close_socket: drop it before curl watches the new one. */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose,
                                    struct curl_sockaddr *a) {
  ft_xfer *x = ud;
  ft_engine *e = x->owner;
  (void)purpose;
  curl_socket_t fd = socket(a->family, a->socktype, a->protocol);
  if (fd != CURL_SOCKET_BAD)
    sock_close(e, fd);
  else /* curl will say only "couldn't connect": keep why */
    x->socket_errno = errno ? errno : EIO;
  return fd;
}

static void on_curl_timeout(uv_timer_t *t) {
  ft_engine *e = t->data;
  frame_enter(e);
  curl_action(e, CURL_SOCKET_TIMEOUT, 0);
  collect_and_start(e);
  frame_leave(e, FRAME_LOOP);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *ud) {
  ft_engine *e = ud;
  (void)multi;
  if (timeout_ms < 0) {
    uv_timer_stop(&e->curl_timer);
  } else if (uv_timer_start(&e->curl_timer, on_curl_timeout,
                            (uint64_t)timeout_ms, 0) != 0) {
    fail(e, FT_EUV);
    return -1;
  }
  return 0;
}

/* ---- the wake-up ------------------------------------------------------- */

static void start_and_send(ft_engine *e);

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
  frame_enter(e);
  start_and_send(e);
  frame_leave(e, FRAME_LOOP);
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

/* Make sure start_and_send() runs again no later than at (uv_hrtime clock). */
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
    if (timerfd_settime(e->wake_fd, TFD_TIMER_ABSTIME, &its, NULL) == 0 &&
        uv_poll_start(&e->wake_poll, UV_READABLE, on_wake_poll) == 0)
      return;
  }
#endif
  uint64_t now = now_ns();
  uint64_t ms = at > now ? (at - now + 999999) / 1000000 : 0;
  if (uv_timer_start(&e->wake_timer, on_wake_timer, ms, 0) != 0)
    fail(e, FT_EUV);
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
static void finish_unanswered(ft_engine *e, ft_request *r, ft_errkind kind,
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

static int start_attempt(ft_engine *e, ft_request *r, uint64_t now) {
  /* what a producer asks for but cannot be sent as given (a framing
   * header, a line break in a header, a NUL in a URL from Lua) ends as
   * input before it is tried, whichever way it came (request.h), and a
   * URL that is not http(s) as url; a retry is the same request */
  if (r->attempts == 0) {
    char why[512];
    ft_errkind bad = ft_request_check(r, why, sizeof(why));
    if (bad != FT_ERR_NONE) {
      finish_unanswered(e, r, bad, why);
      return 0;
    }
    if (!r->url || (strncasecmp(r->url, "http://", 7) != 0 &&
                    strncasecmp(r->url, "https://", 8) != 0)) {
      finish_unanswered(e, r, FT_ERR_URL,
                        "only http and https URLs are fetched");
      return 0;
    }
  }
  ft_xfer *x = xfer_get(e);
  if (!x) {
    finish_unanswered(e, r, FT_ERR_INTERNAL, "out of memory");
    return 0;
  }
  int prc =
      ft_xfer_prepare(x, r, &e->cfg, on_close_socket, e, on_open_socket);
  if (prc != 0) {
    char msg[CURL_ERROR_SIZE];
    memcpy(msg, x->errbuf, sizeof(msg));
    xfer_put(e, x);
    finish_unanswered(e, r, prc == FT_EINVAL ? FT_ERR_URL : FT_ERR_INTERNAL,
                      msg);
    return 0;
  }
  if (r->attempts == 0)
    r->first_start_ns = now;
  else
    e->counts.retried++;
  r->attempts++;
  if (curl_multi_add_handle(e->multi, x->easy) != CURLM_OK) {
    xfer_put(e, x);
    finish_unanswered(e, r, FT_ERR_INTERNAL, "curl_multi_add_handle failed");
    return 0;
  }
  e->active++;
  e->counts.started++;
  return 1;
}

/* ---- object queues ------------------------------------------------------ */

static void enqueue(ft_engine *e, ft_request *r, int front) {
  if (e->stopped) {
    /* stopped meanwhile (by a callback: the source that handed r over,
     * or the done callback that submitted it): nothing will start it */
    finish_unanswered(e, r, FT_ERR_CANCELLED, "the run was stopped");
    return;
  }
  ft_object *o = r->obj ? r->obj : ft_tree_root(e->tree);
  ft_objq *q = objq(o);
  r->obj = o;
  if (front) {
    r->next = q->head;
    q->head = r;
    if (!q->tail)
      q->tail = r;
  } else {
    r->next = NULL;
    if (q->tail)
      q->tail->next = r;
    else
      q->head = r;
    q->tail = r;
  }
  q->queued++;
  e->queued++;
  if (q->runnable)
    return;
  if (e->nrunnable == e->caprunnable) {
    size_t n = e->caprunnable ? e->caprunnable * 2 : 16;
    ft_object **v = realloc(e->runnable, n * sizeof(*v));
    if (!v) {
      /* cannot track it: fail the request rather than lose it */
      q->head = r->next;
      if (!q->head)
        q->tail = NULL;
      q->queued--;
      e->queued--;
      finish_unanswered(e, r, FT_ERR_INTERNAL, "out of memory");
      return;
    }
    e->runnable = v;
    e->caprunnable = n;
  }
  e->runnable[e->nrunnable++] = o;
  q->runnable = 1;
}

/* Take the head of runnable[i]'s queue; drop the object from the runnable
 * list when its queue empties (the last one moves into slot i). */
static ft_request *dequeue(ft_engine *e, size_t i) {
  ft_objq *q = objq(e->runnable[i]);
  ft_request *r = q->head;
  q->head = r->next;
  if (!q->head)
    q->tail = NULL;
  r->next = NULL;
  q->queued--;
  e->queued--;
  if (q->queued == 0) {
    q->runnable = 0;
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
static int start_allowed(ft_engine *e) {
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
      if (objq(o)->runnable)
        e->cursor = i + 1; /* one start per object per pass */
      ft_object_start(o, now);
      if (start_attempt(e, r, now))
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

static int collect_finished(ft_engine *e);

/* Start what can start, then let curl send it at once rather than on the
 * next turn of the loop: the request leaves when the limiter counted it,
 * and a loop iteration per batch is saved. Transfers that finish during
 * that call free slots, so go round again (a few times at most). */
static void start_and_send(ft_engine *e) {
  if (e->starting || e->stopped)
    return;
  e->starting = 1;
  for (int round = 0; round < 4; round++) {
    if (start_allowed(e) == 0)
      break;
    curl_action(e, CURL_SOCKET_TIMEOUT, 0);
    if (collect_finished(e) == 0)
      break;
  }
  if (!e->stopped && e->nheap > 0)
    wake_at(e, e->heap[0]->due_ns);
  e->starting = 0;
}

/* One attempt ended: retry it, or hand the outcome to the owner. */
static void finish_attempt(ft_engine *e, ft_xfer *x, CURLcode rc) {
  ft_request *r = x->req;
  CURL *c = x->easy;
  long status = 0;
  char *final_url = NULL;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &final_url);

  int transient = 0;
  const char *msg = "";
  ft_errkind kind = ft_xfer_outcome(x, rc, &transient, &msg);

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
        finish_unanswered(e, r, FT_ERR_INTERNAL, "out of memory");
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
  /* r leaves x now: a callback that stops the engine must not find it on
   * the transfer and cancel it a second time. x itself stays off the free
   * list until the callback is over, since res points into its buffers. */
  x->req = NULL;
  if (e->done)
    e->done(e->done_ud, r, &res);
  else
    ft_request_free(r);
  xfer_put(e, x);
}

/* Hand every finished transfer on; returns how many there were. */
static int collect_finished(ft_engine *e) {
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
    if (!x || !x->req)
      continue; /* not ours any more (ft_engine_stop took it back) */
    curl_remove(e, c);
    e->active--;
    ft_object_finish(x->req->obj);
    finish_attempt(e, x, rc);
    n++;
  }
  return n;
}

/* After curl has run: hand on what finished, then start what that made
 * room for. */
static void collect_and_start(ft_engine *e) {
  collect_finished(e);
  start_and_send(e);
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

/* A multi handle whose sockets and timer e's loop drives, with e->cfg's
 * connection limits; NULL when curl cannot make one. */
static CURLM *multi_new(ft_engine *e) {
  CURLM *m = curl_multi_init();
  if (!m)
    return NULL;
  curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(m, CURLMOPT_SOCKETDATA, e);
  curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(m, CURLMOPT_TIMERDATA, e);
  curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)e->cfg.concurrency * 2);
  if (e->cfg.host_connections > 0)
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS,
                      (long)e->cfg.host_connections);
  return m;
}

/* The engine's own handles on e->loop, counted in handles_open (destroy
 * closes them): curl's timer, the wake timer, the per-turn batch check,
 * and on Linux the timerfd poll for precise wakes (none if it fails). */
static void handles_init(ft_engine *e) {
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
}

/* *own = a copy of the string *use, which then points at it (*use NULL:
 * nothing to copy). Returns 0, or -1 when out of memory. */
static int own_string(char **own, const char **use) {
  if (!*use)
    return 0;
  *own = strdup(*use);
  if (!*own)
    return -1;
  *use = *own;
  return 0;
}

/* The caller's config strings may not outlive ft_engine_new: e->cfg (a
 * copy of the config) points at the engine's own copies instead. Returns
 * 0, or -1 when out of memory (config_free_strings frees what was made). */
static int config_own_strings(ft_engine *e) {
  if (own_string(&e->user_agent, &e->cfg.user_agent) != 0 ||
      own_string(&e->ca_file, &e->cfg.ca_file) != 0 ||
      own_string(&e->sensitive_headers, &e->cfg.sensitive_headers) != 0)
    return -1;
  return 0;
}

static void config_free_strings(ft_engine *e) {
  free(e->user_agent);
  free(e->ca_file);
  free(e->sensitive_headers);
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
  if (config_own_strings(e) != 0)
    goto fail;
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
  rc = ft_tree_new(&e->tree, sizeof(ft_objq));
  if (rc != 0)
    goto fail;
  if (cfg->rps > 0) {
    rc = set_root_rate(e, cfg->rps, cfg->window_ms);
    if (rc != 0)
      goto fail;
  }
  rc = FT_ECURL;
  e->multi = multi_new(e);
  if (!e->multi)
    goto fail;
  handles_init(e);
  *out = e;
  return 0;
fail:
  curl_slist_free_all(e->plain_headers);
  ft_tree_free(e->tree);
  if (e->owns_loop)
    uv_loop_close(&e->own_loop);
  config_free_strings(e);
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
  frame_enter(e);
  enqueue(e, r, 0); /* stopped: back cancelled at once */
  start_and_send(e);
  frame_leave(e, FRAME_API);
}

void ft_engine_recheck(ft_engine *e) {
  if (e->source && e->source_state == 0)
    e->source_state = 1;
  frame_enter(e);
  start_and_send(e);
  frame_leave(e, FRAME_API);
}

static int has_work(ft_engine *e) {
  if (e->stopped)
    return 0;
  return e->active > 0 || e->nheap > 0 || e->queued > 0 ||
         e->outside_work > 0 || (e->source && e->source_state > 0);
}

void ft_engine_outside_work(ft_engine *e, int delta) {
  e->outside_work += delta;
}

ft_tree *ft_engine_tree(ft_engine *e) { return e->tree; }

int ft_engine_run(ft_engine *e) {
  frame_enter(e);
  start_and_send(e);
  stop_if_failed(e);
  while (has_work(e)) {
    uv_run(e->loop, UV_RUN_ONCE);
    stop_if_failed(e);
    /* a source that said "not now" with nothing in flight would wait for
     * ever: ask it again, and stop if it still has nothing */
    if (!e->stopped && e->active == 0 && e->nheap == 0 && e->queued == 0 &&
        e->outside_work == 0 && e->source && e->source_state == 0) {
      e->source_state = 1;
      start_and_send(e);
      if (e->active == 0 && e->nheap == 0 && e->queued == 0)
        break;
    }
  }
  int rc = e->error;
  frame_leave(e, FRAME_RUN);
  return rc;
}

/* The done callbacks this makes may submit (back cancelled at once), stop
 * again (nothing to do), or free the engine (deferred to the outermost
 * frame); no transfer is taken from the free list while stopped, so
 * e->xfers does not move under the loop. */
void ft_engine_stop(ft_engine *e) {
  if (e->stopped)
    return;
  e->stopped = 1;
  frame_enter(e);
  for (int i = 0; i < e->nxfers; i++) {
    ft_xfer *x = e->xfers[i];
    if (!x->req)
      continue;
    ft_request *r = x->req;
    curl_remove(e, x->easy);
    e->active--;
    ft_object_finish(r->obj);
    xfer_put(e, x);
    finish_unanswered(e, r, FT_ERR_CANCELLED, "the run was stopped");
  }
  while (e->nheap > 0)
    finish_unanswered(e, heap_pop(e), FT_ERR_CANCELLED, "the run was stopped");
  while (e->nrunnable > 0)
    finish_unanswered(e, dequeue(e, 0), FT_ERR_CANCELLED,
                      "the run was stopped");
  frame_leave(e, FRAME_API);
}

int ft_engine_set_rate(ft_engine *e, double rps, double window_ms) {
  int rc = set_root_rate(e, rps, window_ms);
  if (rc == 0) {
    e->cfg.rps = rps;
    e->cfg.window_ms = window_ms;
    frame_enter(e);
    start_and_send(e);
    frame_leave(e, FRAME_API);
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

/* What is left once the handles are closed: the memory. */
static void destroy_rest(ft_engine *e) {
  if (e->wake_fd >= 0)
    close(e->wake_fd);
  ft_tree_free(e->tree);
  free(e->heap);
  free(e->runnable);
  curl_slist_free_all(e->plain_headers);
  config_free_strings(e);
  free(e);
}

/* The asynchronous end of destroy: the last handle closed frees e. */
static void on_handle_closed_last(uv_handle_t *h) {
  ft_engine *e = h->data;
  if (--e->handles_open == 0)
    destroy_rest(e);
}

/* Frees a stopped engine whose requests are all back. With may_run_loop,
 * the loop is run without waiting until the close callbacks are done, as
 * ft_engine_free promises; else (the loop may be running: we are inside
 * one of its callbacks) the last close callback frees the engine when the
 * loop gets to it. */
static void destroy(ft_engine *e, int may_run_loop) {
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
  free(e->suspects);
  uv_close_cb cb = may_run_loop ? on_handle_closed : on_handle_closed_last;
  uv_close((uv_handle_t *)&e->curl_timer, cb);
  uv_close((uv_handle_t *)&e->wake_timer, cb);
  uv_close((uv_handle_t *)&e->batch, cb);
  if (e->wake_fd >= 0)
    uv_close((uv_handle_t *)&e->wake_poll, cb);
  if (!may_run_loop)
    return;
  /* let the close callbacks run (on a caller's loop too: they are ours) */
  while (e->handles_open > 0)
    uv_run(e->loop, UV_RUN_NOWAIT);
  if (e->owns_loop) {
    uv_run(e->loop, UV_RUN_DEFAULT);
    uv_loop_close(e->loop);
  }
  destroy_rest(e);
}

void ft_engine_free(ft_engine *e) {
  if (!e)
    return;
  /* requests still held are freed without a callback */
  e->done = NULL;
  e->source = NULL;
  ft_engine_stop(e);
  if (e->depth > 0) {
    /* inside a callback: the frames below still use e */
    e->free_pending = 1;
    return;
  }
  destroy(e, 1);
}
