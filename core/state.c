/* state.c - the generic half of ft_state: picks a backend by address,
 * checks arguments and dispatches to the backend's ops (state.h). */
#include "state.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

struct ft_state {
  const ft_state_backend *be;
  void *b;                 /* the backend's own handle */
  ft_state *local_limits;  /* a memory state holding the limits (starts,
                              slots) be has no ops for; opened on first use */
  int own_err;             /* err, not the backend's, holds the last error */
  char err[512];
};

/* The backends by address prefix; a third one is one more row. A plain
 * path (no known prefix) is an SQLite file. */
static const struct {
  const char *prefix;
  const ft_state_backend *be;
} backends[] = {
    {"memory:", &ft_state_memory_backend},
    {"sqlite:", &ft_state_sqlite_backend},
    {"redis://", &ft_state_redis_backend},
};

/* An error of the dispatch itself: its message goes to st->err. */
static int fail(ft_state *st, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(st->err, sizeof st->err, fmt, ap);
  va_end(ap);
  st->own_err = 1;
  return code;
}

/* Before an op: the backend's message is the one to show if it fails. */
#define BACKEND(st) ((st)->own_err = 0, (st)->be)

int ft_state_open_backend(ft_state **out, const ft_state_backend *be,
                          const char *where, char *err, size_t errlen) {
  if (out == NULL || be == NULL || be->open == NULL) {
    ft_errf(err, errlen, "ft_state_open: invalid argument");
    return FT_EINVAL;
  }
  /* slots acquired here and released there would never come back */
  if ((be->slots_acquire == NULL) != (be->slots_release == NULL)) {
    ft_errf(err, errlen,
            "ft_state_open: backend %s has one of slots_acquire and"
            " slots_release",
            be->name != NULL ? be->name : "?");
    return FT_EINVAL;
  }
  ft_state *st = calloc(1, sizeof *st);
  if (st == NULL) {
    ft_errf(err, errlen, "out of memory");
    return FT_ENOMEM;
  }
  st->be = be;
  int rc = be->open(&st->b, where, err, errlen);
  if (rc != 0) {
    free(st);
    return rc;
  }
  *out = st;
  return 0;
}

int ft_state_open(ft_state **out, const char *where, char *err,
                  size_t errlen) {
  if (where == NULL || where[0] == '\0')
    return ft_state_open_backend(out, &ft_state_memory_backend, NULL, err,
                                 errlen);
  for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
    size_t n = strlen(backends[i].prefix);
    if (strncmp(where, backends[i].prefix, n) == 0)
      return ft_state_open_backend(out, backends[i].be, where + n, err,
                                   errlen);
  }
  /* "scheme://..." of no backend here (a typo, rediss://) is not a file
   * name: an SQLite file of that name would be a surprise */
  size_t scheme = strspn(where, "abcdefghijklmnopqrstuvwxyz0123456789+.-");
  if (scheme > 0 && strncmp(where + scheme, "://", 3) == 0) {
    ft_errf(err, errlen,
            "unknown state address '%.*s://...' (memory:, sqlite:PATH, "
            "redis://HOST, or a file name)",
            (int)scheme, where);
    return FT_EINVAL;
  }
  return ft_state_open_backend(out, &ft_state_sqlite_backend, where, err,
                               errlen);
}

void ft_state_close(ft_state *st) {
  if (st == NULL)
    return;
  st->be->close(st->b);
  ft_state_close(st->local_limits);
  free(st);
}

const char *ft_state_backend_name(const ft_state *st) {
  return st != NULL ? st->be->name : "";
}

int ft_state_durable(const ft_state *st) {
  return st != NULL && (st->be->flags & FT_STATE_DURABLE) != 0;
}

const char *ft_state_errmsg(ft_state *st) {
  if (st == NULL)
    return "";
  return st->own_err ? st->err : st->be->errmsg(st->b);
}

int ft_state_commit(ft_state *st) {
  if (st == NULL)
    return FT_EINVAL;
  return BACKEND(st)->commit(st->b);
}

void ft_state_abandon(ft_state *st, const char *why) {
  if (st != NULL)
    BACKEND(st)->abandon(st->b, why != NULL ? why : "the batch was abandoned");
}

int ft_state_broken(ft_state *st) {
  return st != NULL && st->be->broken(st->b);
}

int ft_state_reset(ft_state *st) {
  if (st == NULL)
    return FT_EINVAL;
  return BACKEND(st)->reset(st->b);
}

/* ---- the frontier ----------------------------------------------------------- */

int ft_state_frontier_push(ft_state *st, int64_t id, const void *req,
                           size_t len) {
  if (st == NULL)
    return FT_EINVAL;
  if (req == NULL && len > 0)
    return fail(st, FT_EINVAL, "frontier_push: no request bytes");
  return BACKEND(st)->frontier_push(st->b, id, req != NULL ? req : "", len);
}

int ft_state_frontier_take(ft_state *st, int limit, ft_state_request_fn fn,
                           void *ud) {
  if (st == NULL)
    return FT_EINVAL;
  if (fn == NULL)
    return fail(st, FT_EINVAL, "frontier_take: no callback");
  return BACKEND(st)->frontier_take(st->b, limit, fn, ud);
}

int ft_state_frontier_ack(ft_state *st, int64_t id) {
  if (st == NULL)
    return FT_EINVAL;
  return BACKEND(st)->frontier_ack(st->b, id);
}

int64_t ft_state_frontier_count(ft_state *st) {
  if (st == NULL)
    return FT_EINVAL;
  return BACKEND(st)->frontier_count(st->b);
}

/* ---- the seen set -------------------------------------------------------------- */

int ft_state_seen_add(ft_state *st, const unsigned char key[16],
                      ft_state_seen_fn fn, void *ud) {
  if (st == NULL)
    return FT_EINVAL;
  if (key == NULL || fn == NULL)
    return fail(st, FT_EINVAL, "seen_add: no key or no callback");
  return BACKEND(st)->seen_add(st->b, key, fn, ud);
}

/* ---- key-value storage ------------------------------------------------------------ */

int ft_state_kv_get(ft_state *st, const char *obj, const char *key,
                    size_t klen, char **val, size_t *len) {
  if (val != NULL)
    *val = NULL;
  if (st == NULL)
    return FT_EINVAL;
  if (obj == NULL || key == NULL || val == NULL)
    return fail(st, FT_EINVAL, "kv_get: invalid argument");
  return BACKEND(st)->kv_get(st->b, obj, key, klen, val, len);
}

int ft_state_kv_put(ft_state *st, const char *obj, const char *key,
                    size_t klen, const void *val, size_t len) {
  if (st == NULL)
    return FT_EINVAL;
  if (obj == NULL || key == NULL || (val == NULL && len > 0))
    return fail(st, FT_EINVAL, "kv_put: invalid argument");
  return BACKEND(st)->kv_put(st->b, obj, key, klen, val != NULL ? val : "",
                             len);
}

int ft_state_kv_delete(ft_state *st, const char *obj, const char *key,
                       size_t klen) {
  if (st == NULL)
    return FT_EINVAL;
  if (obj == NULL || key == NULL)
    return fail(st, FT_EINVAL, "kv_delete: invalid argument");
  return BACKEND(st)->kv_delete(st->b, obj, key, klen);
}

int ft_state_kv_list(ft_state *st, const char *obj, const char *prefix,
                     size_t plen, int limit, ft_state_kv_fn fn, void *ud) {
  if (st == NULL)
    return FT_EINVAL;
  if (obj == NULL || fn == NULL)
    return fail(st, FT_EINVAL, "kv_list: invalid argument");
  if (prefix == NULL)
    plen = 0;
  return BACKEND(st)->kv_list(st->b, obj, plen > 0 ? prefix : "", plen, limit,
                              fn, ud);
}

/* ---- metadata ------------------------------------------------------------------------ */

int ft_state_meta_get(ft_state *st, const char *key, char **val) {
  if (val != NULL)
    *val = NULL;
  if (st == NULL)
    return FT_EINVAL;
  if (key == NULL || val == NULL)
    return fail(st, FT_EINVAL, "meta_get: invalid argument");
  return BACKEND(st)->meta_get(st->b, key, val);
}

int ft_state_meta_set(ft_state *st, const char *key, const char *val) {
  if (st == NULL)
    return FT_EINVAL;
  if (key == NULL || val == NULL)
    return fail(st, FT_EINVAL, "meta_set: invalid argument");
  return BACKEND(st)->meta_set(st->b, key, val);
}

/* ---- rate limits -------------------------------------------------------------------- */

/* One process holds a state whose backend has no limit ops (state.h,
 * "Limits"): its limits live in a memory state of its own, opened here on
 * first use. Returns 0 or the error, with its message on st. */
static int open_local(ft_state *st) {
  if (st->local_limits != NULL)
    return 0;
  char err[256];
  int rc = ft_state_open_backend(&st->local_limits, &ft_state_memory_backend,
                                 NULL, err, sizeof err);
  return rc != 0 ? fail(st, rc, "%s", err) : 0;
}

/* rc of a call on st->local_limits, its message moved to st if it failed. */
static int local_result(ft_state *st, int rc) {
  if (rc < 0)
    fail(st, rc, "%s", ft_state_errmsg(st->local_limits));
  return rc;
}

int ft_state_limiter_grant(ft_state *st, const char *obj, double rps,
                           uint64_t window_ns, uint64_t now_ns,
                           uint64_t horizon_ns, int want, uint64_t *starts) {
  if (st == NULL)
    return FT_EINVAL;
  if (obj == NULL || want < 0 || (want > 0 && starts == NULL))
    return fail(st, FT_EINVAL, "limiter_grant: invalid argument");
  if (want == 0)
    return 0;
  if (st->be->limiter_grant != NULL)
    return BACKEND(st)->limiter_grant(st->b, obj, rps, window_ns, now_ns,
                                      horizon_ns, want, starts);
  int rc = open_local(st);
  if (rc != 0)
    return rc;
  rc = ft_state_limiter_grant(st->local_limits, obj, rps, window_ns, now_ns,
                              horizon_ns, want, starts);
  return local_result(st, rc);
}

/* ---- concurrency caps ------------------------------------------------------------- */

int ft_state_slots_acquire(ft_state *st, const char *obj, const char *holder,
                           int cap, int want, uint64_t lease_ns,
                           uint64_t now_ns, int *held) {
  int ignored;
  if (held == NULL)
    held = &ignored;
  *held = 0;
  if (st == NULL)
    return FT_EINVAL;
  if (obj == NULL || cap <= 0 || want < 0 || lease_ns == 0)
    return fail(st, FT_EINVAL,
                "slots_acquire: invalid argument (cap %d, want %d, lease %llu"
                " ns%s)",
                cap, want, (unsigned long long)lease_ns,
                obj == NULL ? ", no object" : "");
  if (holder == NULL)
    holder = "";
  if (st->be->slots_acquire != NULL)
    return BACKEND(st)->slots_acquire(st->b, obj, holder, cap, want, lease_ns,
                                      now_ns, held);
  int rc = open_local(st);
  if (rc != 0)
    return rc;
  rc = ft_state_slots_acquire(st->local_limits, obj, holder, cap, want,
                              lease_ns, now_ns, held);
  return local_result(st, rc);
}

int ft_state_slots_release(ft_state *st, const char *obj, const char *holder,
                           int n, uint64_t now_ns) {
  if (st == NULL)
    return FT_EINVAL;
  if (obj == NULL || n < 0)
    return fail(st, FT_EINVAL, "slots_release: invalid argument (n %d%s)", n,
                obj == NULL ? ", no object" : "");
  if (holder == NULL)
    holder = "";
  if (st->be->slots_release != NULL)
    return BACKEND(st)->slots_release(st->b, obj, holder, n, now_ns);
  int rc = open_local(st);
  if (rc != 0)
    return rc;
  rc = ft_state_slots_release(st->local_limits, obj, holder, n, now_ns);
  return local_result(st, rc);
}

/* ---- SQL ------------------------------------------------------------------------------- */

int ft_state_has_sql(const ft_state *st) {
  return st != NULL && st->be->sql != NULL;
}

int ft_state_sql(ft_state *st, const char *obj, const char *query,
                 const ft_sql_value *args, int nargs, ft_sql_row_fn fn,
                 void *ud, int64_t *changes, char *err, size_t errlen) {
  if (changes != NULL)
    *changes = 0;
  if (st == NULL || obj == NULL || query == NULL || nargs < 0 ||
      (nargs > 0 && args == NULL)) {
    ft_errf(err, errlen, "ft_state_sql: invalid argument");
    return st != NULL ? fail(st, FT_EINVAL, "ft_state_sql: invalid argument")
                      : FT_EINVAL;
  }
  if (st->be->sql == NULL) {
    fail(st, FT_EINVAL,
         "obj.storage:sql needs a SQLite state (--state FILE); this run's"
         " state is %s",
         st->be->name);
    ft_errf(err, errlen, "%s", st->err);
    return FT_EINVAL;
  }
  return BACKEND(st)->sql(st->b, obj, query, args, nargs, fn, ud, changes,
                          err, errlen);
}
