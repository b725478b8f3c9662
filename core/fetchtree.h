/* fetchtree.h - the public C API: an engine that fetches HTTP requests on a libuv loop, rate-limited and retried.
 *
 * This is the one header an embedder includes (`pkg-config --cflags --libs
 * fetchtree`); it needs nothing but libuv's. The rest of core/ is internal.
 *
 * The shape, in the manner of libuv: an engine (a long-lived handle) is
 * created on a loop, requests (one-shot) are submitted to it, and each comes
 * back exactly once through the completion callback, whatever happens to
 * it: answered (any HTTP status), failed for good after its retries, or
 * cancelled by ft_engine_stop. ft_engine_run drives the loop until all of
 * them are back.
 *
 *   ft_config cfg;
 *   ft_config_default(&cfg);
 *   ft_engine *e;
 *   if (ft_engine_new(&e, NULL, &cfg) != 0) ...      NULL: a loop of its own
 *   ft_engine_set_done(e, on_done, ud);
 *   ft_request *r = ft_request_new();
 *   ft_request_set(r, "https://example.com/", NULL, NULL, 0);
 *   ft_engine_submit(e, r);                           the engine owns r now
 *   ft_engine_run(e);                                 on_done(ud, r, res) ...
 *   ft_engine_free(e);
 *
 * Conventions. Functions that can fail return 0 or a negative ft_err code
 * (ft_strerror turns it into text). Strings passed in are copied unless a
 * comment says otherwise. Everything runs on the loop's thread: an engine
 * and its requests are not to be touched from another thread. libcurl is
 * initialised on first use; a threaded program should call
 * curl_global_init itself before it starts threads. uv.h needs POSIX
 * declarations: with a strict -std=c99 or -std=c11, also define
 * _POSIX_C_SOURCE=200809L (the compilers' default GNU modes need nothing). */
#ifndef FETCHTREE_H
#define FETCHTREE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

struct curl_slist; /* libcurl's string list: ft_request.headers */
struct ft_object;  /* an object of the request tree (fetchtree run) */

/* ---- error codes --------------------------------------------------------- */

/* Every fetchtree function that can fail returns FT_OK (0) or one of these
 * negative codes, in the manner of libuv. The values are stable: new codes
 * are appended, existing ones never renumbered. */
typedef enum ft_err {
  FT_OK = 0,
  FT_ENOMEM = -1,    /* out of memory */
  FT_EINVAL = -2,    /* invalid argument or unparseable input */
  FT_EIO = -3,       /* I/O error */
  FT_ECURL = -4,     /* libcurl reported an error */
  FT_EUV = -5,       /* libuv reported an error */
  FT_ELUA = -6,      /* a Lua error */
  FT_ERANGE = -7,    /* value out of the supported range */
  FT_ENOTFOUND = -8, /* no such item */
  FT_ESQL = -9,      /* SQLite reported an error */
  FT_EBUSY = -10     /* the resource is locked by someone else */
} ft_err;

/* Returns a static, human-readable description of `code`. Never NULL: an
 * unknown code yields "unknown error". */
const char *ft_strerror(int code);

/* ---- requests and responses ---------------------------------------------- */

/* Why a request failed: ft_response.error. Names (ft_errkind_name) appear in
 * fetchtree's records as error.kind. */
typedef enum ft_errkind {
  FT_ERR_NONE = 0,
  FT_ERR_INPUT,       /* malformed input line */
  FT_ERR_URL,         /* bad URL or refused scheme */
  FT_ERR_DNS,         /* host name did not resolve */
  FT_ERR_CONNECT,     /* connection refused or unreachable */
  FT_ERR_TIMEOUT,     /* connect or total timeout */
  FT_ERR_TLS,         /* handshake or certificate verification */
  FT_ERR_TOO_LARGE,   /* body over the maximum size */
  FT_ERR_PROTOCOL,    /* malformed or truncated response */
  FT_ERR_RESET,       /* connection reset or closed without a reply */
  FT_ERR_REDIRECT,    /* too many redirects, or to a refused scheme */
  FT_ERR_HTTP,        /* a retryable HTTP status (as a cause) */
  FT_ERR_RETRIES,     /* retries exhausted: see cause */
  FT_ERR_RETRY_AFTER, /* server asked to wait longer than allowed */
  FT_ERR_CANCELLED,   /* run stopped before the request finished */
  FT_ERR_SCRIPT,      /* a script handler failed */
  FT_ERR_INTERNAL,    /* out of memory or a library failure */
  FT_ERR_ROBOTS,      /* refused by ft_config.url_check (robots.txt) */
  FT_ERR_COUNT
} ft_errkind;

/* Returns the static name of `kind` ("none", "connect", "retries_exhausted",
 * ...); "internal" for a value out of range. */
const char *ft_errkind_name(ft_errkind kind);

/* One request. The producer fills the public part (ft_request_set and
 * ft_request_add_header do it without touching libcurl), submits it, and
 * gets it back through the done callback; ft_request_free frees it and
 * everything it owns. */
typedef struct ft_request {
  /* public */
  uint64_t index;             /* the producer's number for it; fetchtree's
                                 records report it */
  char *url;                  /* owned; http or https only */
  char *method;               /* owned; NULL means GET (POST when body) */
  struct curl_slist *headers; /* owned; "Name: value" lines */
  char *body;                 /* owned; may hold NUL bytes; NULL: none */
  size_t body_len;
  char *meta_json;            /* owned; JSON text passed through unchanged */
  long timeout_ms;            /* 0: the engine's default */
  int retries;                /* -1: the engine's default */
  void *udata;                /* the producer's, never looked at */
  struct ft_object *obj;      /* the object of the engine's tree it belongs
                                 to (fetchtree run routes requests); NULL:
                                 the root, which the engine fills in */

  /* private: the engine's bookkeeping while it holds the request; do not
   * read or write */
  int attempts;
  uint64_t first_start_ns;
  uint64_t due_ns;
  struct ft_request *next;
  char *refused;           /* owned: why the producer's input cannot be
                              fetched (a NUL byte from Lua), or NULL */
  ft_errkind refused_kind; /* the error kind for refused */
} ft_request;

/* A finished request as the done callback sees it. Everything it points to
 * belongs to the engine and is valid only during the callback: copy what
 * you keep. */
typedef struct ft_response {
  long status;             /* 0 when no response arrived */
  const char *final_url;   /* after redirects; NULL when unknown */
  const char *body;
  size_t body_len;
  const char *headers;     /* "name\0value\0" pairs, names lower-case */
  size_t headers_len;
  int header_count;
  int attempts;
  double elapsed_ms;       /* first attempt's start to the end of the last */
  ft_errkind error;        /* FT_ERR_NONE on success (any HTTP status) */
  ft_errkind cause;        /* for FT_ERR_RETRIES: the last attempt's kind */
  const char *message;     /* error text; "" when no error */
} ft_response;

/* Returns a zeroed request (retries = -1: the engine's default), or NULL
 * when out of memory. The caller owns it until it submits it. */
ft_request *ft_request_new(void);

/* Frees r and every string it owns; NULL is a no-op. */
void ft_request_free(ft_request *r);

/* Sets r's URL, method and body to copies of url, method (NULL: GET, or
 * POST when there is a body) and the body_len bytes at body (NULL: no
 * body; the copy is NUL-terminated too), freeing what r held before.
 * Returns 0, FT_EINVAL when r or url is NULL or body is NULL with a
 * body_len, or FT_ENOMEM; on error r is unchanged. */
int ft_request_set(ft_request *r, const char *url, const char *method,
                   const void *body, size_t body_len);

/* Appends a copy of the header line "Name: value" to r's headers ("Name:"
 * removes a header libcurl would send, "Name;" sends it empty, as in
 * CURLOPT_HTTPHEADER). Returns 0, FT_EINVAL when r or line is NULL, the
 * name is not an RFC 9110 token followed by ':' (or ';' ending the line),
 * the value holds a control byte other than tab (CR, LF), or the header is
 * one libcurl frames the message or manages the connection with
 * (Content-Length, Transfer-Encoding, TE, Connection, Keep-Alive,
 * Proxy-Connection, Upgrade, Expect with a value), or FT_ENOMEM; on error
 * r is unchanged. A Host header must name the URL's host and port: the
 * engine ends a request whose Host does not with FT_ERR_INPUT, as it does
 * any request whose method or headers could not be sent as given. */
int ft_request_add_header(ft_request *r, const char *line);

/* ---- the retry policy ---------------------------------------------------- */

/* Size of ft_retry_policy.retry_status: HTTP statuses 0..599. */
#define FT_RETRY_STATUS_MAX 600

/* How a request is retried (ft_config.retry). Plain data: copy it, compare
 * it, keep one per crawl or per host. Statuses outside 100..599 are never
 * retryable. Connection failures, resets and timeouts always are. */
typedef struct ft_retry_policy {
  int max_retries;             /* retries after the first attempt; default 5 */
  uint64_t base_ns;            /* backoff base; default 100 ms */
  uint64_t cap_ns;             /* backoff ceiling; default 10 s */
  uint64_t max_retry_after_ns; /* longest Retry-After obeyed; default 60 s */
  /* 1 = retryable HTTP status; default 408, 429, 500, 502, 503, 504 */
  uint8_t retry_status[FT_RETRY_STATUS_MAX];
} ft_retry_policy;

/* Fills *p with the defaults listed above. */
void ft_retry_policy_default(ft_retry_policy *p);

/* Replaces the retryable set with a comma-separated list such as "429,503"
 * (spaces around items allowed). Returns 0, or FT_EINVAL for NULL, an empty
 * item (so also ""), a non-number or a status outside 100..599; on error *p
 * is unchanged. */
int ft_retry_parse_statuses(ft_retry_policy *p, const char *list);

/* ---- the engine ---------------------------------------------------------- */

typedef struct ft_engine ft_engine;

/* How an engine fetches. Start from ft_config_default and change fields. */
typedef struct ft_config {
  int concurrency;          /* transfers in flight at once (64) */
  int host_connections;     /* connections per host; 0 = concurrency */
  long connect_timeout_ms;  /* 10 000 */
  long timeout_ms;          /* whole attempt, 30 000 */
  long max_redirects;       /* 10; 0 = do not follow */
  int64_t max_body;         /* bytes after decoding, 64 MiB */
  double rps;               /* attempts per window; <= 0: no limit */
  double window_ms;         /* 1000 */
  const char *user_agent;   /* copied; default "fetchtree/VERSION" */
  const char *ca_file;      /* PEM bundle to verify servers with; copied */
  const char *sensitive_headers; /* comma-separated names of request headers
                             * not sent on when a redirect leaves the
                             * request's origin (scheme, host, port), besides
                             * Authorization, Cookie and Proxy-Authorization,
                             * which never are; copied (NULL) */
  int compressed;           /* ask for compressed bodies (Accept-Encoding);
                             * 0: bodies that come compressed anyway are
                             * still decoded (0) */
  ft_retry_policy retry;
  uint64_t seed;            /* jitter; 0 = from the clock */
  /* Asked before curl sends each request of a transfer, the first and
   * every redirect's, with the URL about to be requested: non-zero
   * refuses it, and the request fails as FT_ERR_ROBOTS, not retried
   * (ft_robots_url_check is fetchtree's, for robots.txt). NULL: none. */
  int (*url_check)(void *ud, const struct ft_request *req, const char *url);
  void *url_check_ud;
} ft_config;

/* Fills *cfg with the defaults noted beside each field. */
void ft_config_default(ft_config *cfg);

/* The pull source, for producers with more requests than should be held at
 * once: fill *out with a request (the engine owns it from then on) and
 * return 1, return 0 when nothing is ready now (call ft_engine_recheck
 * when there is), or -1 when exhausted for good. Called only when the
 * engine has room for another request. It may call ft_engine_submit, ft_engine_stop or
 * ft_engine_free (see there); a request it hands over after stopping the
 * engine still comes back, cancelled (freed, after ft_engine_free). */
typedef int (*ft_source_fn)(void *ud, ft_request **out);

/* Called once per request with its final outcome; the callee owns req from
 * then on (free it with ft_request_free, or keep it); res is valid only
 * during the call. It may submit more requests, call ft_engine_stop (req
 * is already the callee's: the stop does not return it again) or
 * ft_engine_free (see there). */
typedef void (*ft_done_fn)(void *ud, ft_request *req, const ft_response *res);

/* Creates an engine on loop, or on a loop of its own when loop is NULL.
 * cfg is copied. The caller's loop must outlive the engine; the engine adds
 * handles to it and closes them in ft_engine_free. Returns 0 with *out set,
 * or a negative ft_err code with *out set to NULL. */
int ft_engine_new(ft_engine **out, uv_loop_t *loop, const ft_config *cfg);

/* Tears the engine down: requests it still holds are freed without a
 * callback, its handles are closed (running the loop without waiting until
 * their close callbacks are done, on a caller's loop too), and a loop of its
 * own is closed. NULL is a no-op. A caller's loop can be closed afterwards.
 * Since it runs the loop, it is not to be called from a callback of the
 * caller's loop while that runs, except as follows.
 *
 * From inside one of its callbacks (done, source), the engine stops at once
 * (requests still held are freed, no callback follows) and is freed when
 * the engine's outermost call on the stack returns. Under ft_engine_run, or
 * with a loop of its own, that is all. Otherwise (the callback came from
 * another API call, or from the caller's loop running the engine) that
 * loop may be running and cannot be run again: the handles are closed and
 * the memory goes with their close callbacks, the next time the caller's
 * loop runs (run it before closing it). An engine with a loop of its own is
 * driven by ft_engine_run only. */
void ft_engine_free(ft_engine *e);

/* Sets (or, with fn NULL, removes) the pull source. */
void ft_engine_set_source(ft_engine *e, ft_source_fn fn, void *ud);

/* Sets the done callback. Without one, finished requests are freed. */
void ft_engine_set_done(ft_engine *e, ft_done_fn fn, void *ud);

/* Queues req ahead of the source (follow-ups, embedders) and starts it if
 * there is room. The engine owns req until it comes back through the done
 * callback, which may happen before this returns: at once for a URL that
 * is not http or https, or when the engine is stopped (FT_ERR_CANCELLED). */
void ft_engine_submit(ft_engine *e, ft_request *req);

/* Tells the engine that something it waits on may have changed: the source
 * may have requests again (it asks for some when it has room), or limits
 * were raised (ft_engine_set_rate does this itself). It then starts what
 * it can. */
void ft_engine_recheck(ft_engine *e);

/* Runs the loop (the engine's own or the caller's, which serves the
 * caller's other handles meanwhile) until the source is exhausted and
 * nothing is in flight, waiting for a retry or announced as outside work
 * (ft_engine_outside_work), or until ft_engine_stop. Not reentrant: never
 * call it from a callback running on the same loop. Returns 0, or the
 * negative ft_err code of the failure that ended the run: FT_ENOMEM,
 * FT_ECURL (libcurl's multi handle failed) or FT_EUV (libuv would not
 * watch a socket or arm a timer). Such a failure stops the engine as
 * ft_engine_stop does, so every request has come back (those not done as
 * FT_ERR_CANCELLED); an engine driven by the caller's own uv_run stops the
 * same way, on the loop's next turn. */
int ft_engine_run(ft_engine *e);

/* Stops taking requests, for good: everything in flight, queued or waiting
 * for a retry comes back through the done callback, before this returns, as
 * FT_ERR_CANCELLED, and ft_engine_run returns. Requests submitted later come
 * back cancelled at once. Calling it again does nothing. It may be called
 * from inside the done or source callback (a write that failed, a signal):
 * each request still comes back exactly once. */
void ft_engine_stop(ft_engine *e);

/* Changes the rate limit while running: at most rps * window_ms / 1000
 * attempts start in any window_ms (rps <= 0 removes the limit). Returns 0
 * or a negative ft_err code (FT_EINVAL for a bad window). */
int ft_engine_set_rate(ft_engine *e, double rps, double window_ms);

/* Counts work outside the engine that will bring it more (a timer that
 * will submit requests): +1 when it starts, -1 when it is over. While the
 * count is above 0, ft_engine_run goes on with nothing in flight. */
void ft_engine_outside_work(ft_engine *e, int delta);

/* Returns the loop the engine runs on (its own, or the caller's). */
uv_loop_t *ft_engine_loop(ft_engine *e);

typedef struct ft_engine_counts {
  uint64_t started;   /* attempts started */
  uint64_t retried;   /* attempts that were retries */
  uint64_t done;      /* requests finished */
  int in_flight;
  int waiting;        /* waiting for a retry */
} ft_engine_counts;

/* Fills *c with the engine's counts so far. */
void ft_engine_counts_get(const ft_engine *e, ft_engine_counts *c);

#ifdef __cplusplus
}
#endif

#endif
