/* tree.h - the object tree: named objects ("/", "/host", "/host/a") with
 * limits that apply to their subtree, inherited settings and subtree stats.
 * Pure C, clock injected. */
#ifndef FT_TREE_H
#define FT_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "limiter.h"
#include "request.h"

/* What a pattern or ft_object_set configures. A field is set when its has_
 * flag is 1; unset fields leave the object's value alone. */
typedef struct ft_obj_settings {
  int has_rps;
  double rps;       /* <= 0 removes the rate limit */
  double window_ms; /* the window for rps; 0 means 1000 */
  int has_concurrency;
  int concurrency; /* cap on attempts in flight in the subtree; <= 0 removes */
  int has_retries;
  int retries; /* >= 0 sets the object's own value; < 0 removes it (inherit) */
} ft_obj_settings;

/* Latency histogram: 8 sub-buckets per power of two of microseconds, so a
 * percentile is within 1/8 (12.5%) below the true value; 320 buckets reach
 * 2^42 us (about 50 days). */
#define FT_OBJ_HIST_BITS 3
#define FT_OBJ_HIST_SUB (1 << FT_OBJ_HIST_BITS)
#define FT_OBJ_HIST_BUCKETS 320
#define FT_OBJ_STATUSES 16

/* Counters over a subtree; compact (~1.6 KB) since a crawl may create 100k
 * objects. */
typedef struct ft_obj_stats {
  uint64_t requests, ok, attempts, bytes;
  uint64_t retries; /* attempts after a request's first (a request that
                     * never started, say cancelled, has none) */
  uint64_t by_error[FT_ERR_COUNT];
  /* the first 16 distinct statuses seen (code 0 = free slot); the counts of
   * any later distinct status are summed in status_other */
  uint16_t status_code[FT_OBJ_STATUSES];
  uint64_t status_count[FT_OBJ_STATUSES];
  uint64_t status_other;
  uint32_t hist[FT_OBJ_HIST_BUCKETS]; /* latency in microseconds */
  uint64_t max_us;
} ft_obj_stats;

/* One object. The tree owns it; pointers stay valid until ft_tree_free. */
typedef struct ft_object {
  /* read-only */
  char *name;               /* owned by the tree, e.g. "/host/127.0.0.1" */
  struct ft_object *parent; /* NULL for "/" */
  int depth;                /* "/" is 0, "/host" 1 ... */
  ft_limiter *limiter;      /* NULL when this object sets no rate */
  int concurrency;    /* this object's own cap on attempts in flight in its
                         subtree; 0 = none */
  int active;         /* attempts in flight in this subtree (start/finish) */
  int retries;        /* effective: own setting, else the parent's, else -1 */
  /* The tree creator's per-object state: ft_tree_new's slot_size bytes,
   * zeroed at creation, aligned as malloc aligns (NULL when slot_size is
   * 0). An engine's tree holds the engine's queue there; tree.c never
   * looks at it. Before stats: the scheduler reads it with the fields
   * above. */
  void *slot;
  ft_obj_stats stats; /* over the subtree */

  /* public: the caller's, never touched by tree.c */
  void *udata;
} ft_object;

typedef struct ft_tree ft_tree;

/* Returned by ft_object_admit when a concurrency cap blocks. */
#define FT_TREE_BUSY ((uint64_t)-1)

/* The largest slot_size ft_tree_new takes. */
#define FT_TREE_SLOT_MAX 4096

/* Creates an empty tree (holding only "/") in *out, every object of which
 * will carry slot_size bytes of its creator's state (ft_object.slot).
 * Returns 0, FT_EINVAL (out NULL, slot_size over FT_TREE_SLOT_MAX) or
 * FT_ENOMEM. */
int ft_tree_new(ft_tree **out, size_t slot_size);

/* Frees the tree, its objects and their limiters; NULL is allowed. udata
 * pointers are not freed. */
void ft_tree_free(ft_tree *t);

/* Settings for every object whose name matches pattern, now and later
 * created. A pattern is a name in which a segment may be "*", matching
 * exactly one segment: "/host/" followed by a "*" segment matches "/host/a"
 * but not "/host" or "/host/a/b"; "/" matches the root only. Several matching
 * patterns apply in the order configured, field by field (later wins). Existing
 * matching objects are changed at once, as by ft_object_set. Returns 0,
 * FT_EINVAL (bad pattern or settings), FT_ERANGE (a rate the limiter cannot
 * hold) or FT_ENOMEM; on FT_EINVAL/FT_ERANGE nothing is changed. */
int ft_tree_configure(ft_tree *t, const char *pattern,
                      const ft_obj_settings *s);

/* The object named name, created with its missing ancestors on first use,
 * with the matching patterns' settings applied. Names are "/" or
 * "/seg1/seg2..." with non-empty segments and no trailing slash; a segment
 * may hold any byte but '/'. O(1) on average. On failure returns NULL and sets
 * *err (when err is not NULL) to FT_EINVAL (bad name) or FT_ENOMEM; on
 * success *err is 0. */
ft_object *ft_tree_get(ft_tree *t, const char *name, int *err);

/* Why ft_tree_get refused name with err, as the error of the request that
 * named it: "cannot make object 'NAME': not an object name such as
 * /host/example.com" (FT_EINVAL) or with ft_strerror(err), into buf. */
void ft_tree_get_error(const char *name, int err, char *buf, size_t len);

ft_object *ft_tree_root(ft_tree *t);

/* Number of objects, "/" included. */
size_t ft_tree_count(const ft_tree *t);

/* A live change on one object: the rate (the limiter keeps its history
 * through ft_limiter_set), the concurrency cap and retries; a retries change
 * also re-derives the inherited value of descendants without their own
 * setting. Returns 0, FT_EINVAL, FT_ERANGE or FT_ENOMEM; on error o is
 * unchanged. */
int ft_object_set(ft_object *o, const ft_obj_settings *s);

/* May an attempt for o start at now_ns? Checks o and every ancestor. Returns
 * 0 if yes; FT_TREE_BUSY when a concurrency cap on the path is reached (wait
 * for a completion); else the ns to wait (> 0, < FT_TREE_BUSY) until every
 * rate limiter on the path allows a start. */
uint64_t ft_object_admit(const ft_object *o, uint64_t now_ns);

/* An attempt started at now_ns (after admit returned 0): records the start on
 * every limiter on the path and increments active on every object on it. */
void ft_object_start(ft_object *o, uint64_t now_ns);

/* An attempt ended: decrements active on the path. */
void ft_object_finish(ft_object *o);

/* A request finished: adds it to the stats of o and every ancestor
 * (requests, ok, attempts, retries, bytes, by_error, status when > 0,
 * latency from elapsed_ms when attempts > 0). */
void ft_object_count(ft_object *o, const ft_response *res);

/* The latency (ms) below which fraction q (0..1) of the requests fall. */
double ft_obj_stats_percentile(const ft_obj_stats *s, double q);

/* Calls fn on every object, parents before children (creation order). fn
 * must not create objects. */
void ft_tree_foreach(ft_tree *t, void (*fn)(ft_object *o, void *ud), void *ud);

/* Visits every object depth first: enter(o) (when not NULL) before o's
 * children, which come in bytewise name order, and leave(o) (when not NULL)
 * after its last descendant. Not recursive: names may be arbitrarily deep.
 * The callbacks must not create objects. */
void ft_tree_walk(ft_tree *t, void (*enter)(ft_object *o, void *ud),
                  void (*leave)(ft_object *o, void *ud), void *ud);

/* The rate o's own limiter was configured with. Returns 1 with *rps and
 * *window_ms (the default 1000 applied) set when o has a limiter, else 0
 * and both are left alone. */
int ft_object_rate(const ft_object *o, double *rps, double *window_ms);

#endif
