/* engine.h - the fetch engine: one libuv loop driving one curl multi handle. */
#ifndef FT_ENGINE_H
#define FT_ENGINE_H

#include <stdint.h>
#include <uv.h>

#include "request.h"
#include "retry.h"

typedef struct ft_engine ft_engine;

typedef struct ft_config {
  int concurrency;          /* transfers in flight at once (64) */
  int host_connections;     /* connections per host; 0 = concurrency */
  long connect_timeout_ms;  /* 10 000 */
  long timeout_ms;          /* whole attempt, 30 000 */
  long max_redirects;       /* 10; 0 = do not follow */
  int64_t max_body;         /* bytes after decoding, 64 MiB */
  double rps;               /* attempts per window; <= 0: no limit */
  double window_ms;         /* 1000 */
  const char *user_agent;   /* copied */
  const char *ca_file;      /* PEM bundle to verify servers with; copied */
  ft_retry_policy retry;
  uint64_t seed;            /* jitter; 0 = from the clock */
} ft_config;

void ft_config_default(ft_config *cfg);

/* The pull source: fill *out and return 1, return 0 when nothing is ready
 * now (call ft_engine_kick when there is), or -1 when exhausted for good. */
typedef int (*ft_source_fn)(void *ud, ft_request **out);

/* Called once per request with its final outcome; the callee owns req
 * from then on (free it with ft_request_free). It may submit more. */
typedef void (*ft_done_fn)(void *ud, ft_request *req, const ft_response *res);

/* Create an engine on loop, or on a loop of its own when loop is NULL.
 * Returns 0, or a negative ft_ error code with *out set to NULL. */
int ft_engine_new(ft_engine **out, uv_loop_t *loop, const ft_config *cfg);

/* Tear down: requests still held get no callback and are freed. */
void ft_engine_free(ft_engine *e);

void ft_engine_set_source(ft_engine *e, ft_source_fn fn, void *ud);
void ft_engine_set_done(ft_engine *e, ft_done_fn fn, void *ud);

/* Queue a request ahead of the source (follow-ups, embedders). The engine
 * owns it until it comes back through the done callback. */
void ft_engine_submit(ft_engine *e, ft_request *req);

/* The source may have requests again: try to start some. */
void ft_engine_kick(ft_engine *e);

/* Run the loop until the source is exhausted and nothing is in flight or
 * waiting, or until ft_engine_stop. Returns 0 or a negative error code. */
int ft_engine_run(ft_engine *e);

/* Stop taking requests; everything in flight or waiting for a retry comes
 * back through the done callback as FT_ERR_CANCELLED. */
void ft_engine_stop(ft_engine *e);

/* Change the rate limit while running (rps <= 0 removes it). */
int ft_engine_set_rate(ft_engine *e, double rps, double window_ms);

uv_loop_t *ft_engine_loop(ft_engine *e);

/* The object tree requests are routed into (ft_request.obj); "/" carries
 * the engine's own rate limit. */
struct ft_tree *ft_engine_tree(ft_engine *e);

/* Outside work that should keep ft_engine_run going while nothing is in
 * flight (a pending alarm): +1 when it starts, -1 when it is over. */
void ft_engine_hold(ft_engine *e, int delta);

typedef struct ft_engine_counts {
  uint64_t started;   /* attempts started */
  uint64_t retried;   /* attempts that were retries */
  uint64_t done;      /* requests finished */
  int in_flight;
  int waiting;        /* waiting for a retry */
} ft_engine_counts;

void ft_engine_counts_get(const ft_engine *e, ft_engine_counts *c);

#endif
