/* state_memory.c - the memory backend of ft_state (state.h): a run's state
 * in plain C tables of this process, for runs without --state. */
#include "state.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dedupe.h"
#include "buf.h"
#include "error.h"
#include "hash.h"
#include "limiter.h"

/* Design
 *
 * Four tables, no SQLite (but for the optional sql op, below):
 *  - key-value storage, metadata and the objects' limits: chained hash
 *    tables of byte strings (struct table). A storage key is the object's
 *    name, a NUL byte and the key's bytes: object names hold no NUL, so two
 *    (object, key) pairs never share one. kv_list sorts the object's
 *    matching entries, since lists are rare and hashing is what get and put
 *    need;
 *  - the frontier: an array of requests sorted by id, each marked once
 *    handed out. Ids normally come increasing (an append); ack removes;
 *  - the seen set: an ft_dedupe (dedupe.c), 16 bytes a key.
 *
 * Batches. Nothing outlives the process, so commit has nothing to make
 * durable and abandon nothing to roll back (the backend is not
 * FT_STATE_DURABLE); both keep state.h's contract otherwise: a broken state
 * refuses every write and commit with FT_EIO and the reason, and answers
 * reads.
 *
 * SQL. obj.storage:sql runs on a private in-memory SQLite database (the
 * sqlite backend on ":memory:"), opened on the first sql call, committed and
 * abandoned with this state. Why, and why that changes nothing a script
 * sees: state.h, "SQL".
 *
 * Limits. limiter_grant keeps one exact limiter (limiter.c) per object and
 * hands out its next starts: each start is the earliest the limiter allows
 * at or after the previous one, then recorded, so the grant is exactly what
 * the same number of one-at-a-time delay()/take() calls would have
 * allowed. slots_acquire keeps, in the same object's entry, a small array
 * of its holders (name, slots held, end of lease): holders are processes,
 * few, so a linear scan is enough. Each acquire and release first drops the
 * holders whose lease ended at or before the caller's now_ns: expiry reads
 * only the injected clock, never one of its own, so it is as exact as the
 * caller's clock and the tests can move time. */

/* ---- a hash table of byte strings --------------------------------------- */

/* One holder of an object's slots: n > 0 slots, leased until expires. */
typedef struct holder {
  char *name;
  int n;
  uint64_t expires;
} holder;

/* The holders of an object's slots, in no order. */
typedef struct slot_table {
  holder *h;
  size_t n, cap;
} slot_table;

typedef struct entry {
  struct entry *next;
  uint64_t hash;
  char *key; /* klen bytes, NUL after them */
  size_t klen;
  char *val; /* len bytes, NUL after them (kv, meta) */
  size_t len;
  ft_limiter *lim; /* limiters: the object's, for rps per window */
  double rps;
  uint64_t window;
  uint64_t last; /* limiters: the last start granted */
  slot_table *slots; /* limits: the object's slot holders, once acquired */
} entry;

typedef struct table {
  entry **b;
  size_t nb, n; /* nb: a power of two, or 0 */
} table;

static entry *table_find(const table *t, const char *key, size_t klen,
                         uint64_t h) {
  if (t->nb == 0)
    return NULL;
  for (entry *e = t->b[h & (t->nb - 1)]; e != NULL; e = e->next)
    if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
      return e;
  return NULL;
}

/* Doubles the bucket array when the table is as full as it has buckets. */
static int table_grow(table *t) {
  if (t->n < t->nb)
    return 0;
  size_t nb = t->nb > 0 ? t->nb * 2 : 64;
  entry **b = calloc(nb, sizeof *b);
  if (b == NULL)
    return FT_ENOMEM;
  for (size_t i = 0; i < t->nb; i++) {
    entry *e = t->b[i];
    while (e != NULL) {
      entry *next = e->next;
      e->next = b[e->hash & (nb - 1)];
      b[e->hash & (nb - 1)] = e;
      e = next;
    }
  }
  free(t->b);
  t->b = b;
  t->nb = nb;
  return 0;
}

/* A malloc'd copy of n bytes with a NUL after them. */
/* The array p of *cap elements of size elem, doubled (to first elements
 * when empty), *cap updated; NULL when out of memory (p and *cap as they
 * were). */
static void *grow_array(void *p, size_t *cap, size_t elem, size_t first) {
  size_t n = *cap > 0 ? *cap * 2 : first;
  void *np = realloc(p, n * elem);
  if (np != NULL)
    *cap = n;
  return np;
}

/* The entry of key, made (with no value) if absent; NULL: out of memory. */
static entry *table_upsert(table *t, const char *key, size_t klen) {
  uint64_t h = ft_hash64(key, klen);
  entry *e = table_find(t, key, klen, h);
  if (e != NULL)
    return e;
  if (table_grow(t) != 0)
    return NULL;
  e = calloc(1, sizeof *e);
  if (e == NULL || (e->key = ft_bytes_dup(key, klen)) == NULL) {
    free(e);
    return NULL;
  }
  e->klen = klen;
  e->hash = h;
  e->next = t->b[h & (t->nb - 1)];
  t->b[h & (t->nb - 1)] = e;
  t->n++;
  return e;
}

static void entry_free(entry *e) {
  free(e->key);
  free(e->val);
  ft_limiter_free(e->lim);
  if (e->slots != NULL) {
    for (size_t i = 0; i < e->slots->n; i++)
      free(e->slots->h[i].name);
    free(e->slots->h);
    free(e->slots);
  }
  free(e);
}

static void table_remove(table *t, const char *key, size_t klen) {
  if (t->nb == 0)
    return;
  uint64_t h = ft_hash64(key, klen);
  for (entry **pp = &t->b[h & (t->nb - 1)]; *pp != NULL; pp = &(*pp)->next) {
    entry *e = *pp;
    if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0) {
      *pp = e->next;
      entry_free(e);
      t->n--;
      return;
    }
  }
}

static void table_clear(table *t) {
  for (size_t i = 0; i < t->nb; i++) {
    entry *e = t->b[i];
    while (e != NULL) {
      entry *next = e->next;
      entry_free(e);
      e = next;
    }
  }
  free(t->b);
  memset(t, 0, sizeof *t);
}

/* ---- the state ---------------------------------------------------------- */

typedef struct request {
  int64_t id;
  char *blob;
  size_t len;
  int taken;
} request;

typedef struct mem_state {
  table kv, meta, limits;
  request *q; /* the frontier, ascending ids */
  size_t qn, qcap;
  size_t untaken; /* no request before q[untaken] waits to be handed out */
  const char *handing; /* the blob fn holds during frontier_take */
  int handing_acked;   /* ...and fn acked it: free it when fn returns */
  ft_dedupe *seen;
  ft_state *sql; /* the private SQLite database, once opened */
  int broken;
  char broken_msg[512];
  char errmsg[512];
} mem_state;

static int set_err(mem_state *s, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
  va_end(ap);
  return code;
}

static int oom(mem_state *s) { return set_err(s, FT_ENOMEM, "out of memory"); }

/* Sets key (klen bytes) in t to a copy of the len bytes at val, replacing
 * the value it had. Returns 0, or FT_ENOMEM (and t is as it was). */
static int table_set(mem_state *s, table *t, const char *key, size_t klen,
                     const void *val, size_t len) {
  char *copy = ft_bytes_dup(val, len);
  entry *e = copy != NULL ? table_upsert(t, key, klen) : NULL;
  if (e == NULL) {
    free(copy);
    return oom(s);
  }
  free(e->val);
  e->val = copy;
  e->len = len;
  return 0;
}

/* Writes check this first: a broken state writes nothing (state.h). */
static int write_check(mem_state *s) {
  if (!s->broken)
    return 0;
  return set_err(s, FT_EIO,
                 "%s; nothing written since the last commit is saved",
                 s->broken_msg);
}

static int mem_open(void **out, const char *where, char *err,
                    size_t errlen) {
  mem_state *s = calloc(1, sizeof *s);
  if (s == NULL || ft_dedupe_new(&s->seen) != 0) {
    free(s);
    ft_errf(err, errlen, "out of memory");
    return FT_ENOMEM;
  }
  *out = s;
  return 0;
}

static void frontier_clear(mem_state *s) {
  for (size_t i = 0; i < s->qn; i++)
    if (s->q[i].blob != s->handing)
      free(s->q[i].blob);
    else
      s->handing_acked = 1;
  s->qn = 0;
  s->untaken = 0;
}

static void mem_close(void *b) {
  mem_state *s = b;
  frontier_clear(s);
  free(s->q);
  table_clear(&s->kv);
  table_clear(&s->meta);
  table_clear(&s->limits);
  ft_dedupe_free(s->seen);
  ft_state_close(s->sql);
  free(s);
}

static const char *mem_errmsg(void *b) {
  mem_state *s = b;
  return s->errmsg;
}

static int mem_commit(void *b) {
  mem_state *s = b;
  int rc = write_check(s);
  if (rc == 0 && s->sql != NULL && (rc = ft_state_commit(s->sql)) != 0) {
    set_err(s, rc, "%s", ft_state_errmsg(s->sql));
    s->broken = 1;
    snprintf(s->broken_msg, sizeof s->broken_msg, "%s", s->errmsg);
  }
  return rc;
}

static void mem_abandon(void *b, const char *why) {
  mem_state *s = b;
  if (!s->broken) {
    s->broken = 1;
    snprintf(s->broken_msg, sizeof s->broken_msg, "%s", why);
  }
  ft_state_abandon(s->sql, why);
  write_check(s);
}

static int mem_broken(void *b) {
  mem_state *s = b;
  return s->broken;
}

static int mem_reset(void *b) {
  mem_state *s = b;
  int rc = write_check(s);
  if (rc != 0)
    return rc;
  ft_dedupe *fresh;
  if (ft_dedupe_new(&fresh) != 0)
    return oom(s);
  ft_dedupe_free(s->seen);
  s->seen = fresh;
  frontier_clear(s);
  table_clear(&s->meta);
  return 0;
}

/* ---- the frontier ----------------------------------------------------------- */

/* The index of id in the frontier, or where it would go. */
static size_t frontier_find(const mem_state *s, int64_t id) {
  size_t lo = 0, hi = s->qn;
  if (hi > 0 && s->q[hi - 1].id < id)
    return hi; /* the usual case: a new, larger id */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->q[mid].id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static int mem_frontier_push(void *b, int64_t id, const void *req,
                             size_t len) {
  mem_state *s = b;
  int rc = write_check(s);
  if (rc != 0)
    return rc;
  size_t i = frontier_find(s, id);
  if (i < s->qn && s->q[i].id == id)
    return set_err(s, FT_EINVAL, "frontier: request id %lld is already there",
                   (long long)id);
  if (s->qn == s->qcap) {
    request *q = grow_array(s->q, &s->qcap, sizeof *q, 256);
    if (q == NULL)
      return oom(s);
    s->q = q;
  }
  char *copy = ft_bytes_dup(req, len);
  if (copy == NULL)
    return oom(s);
  memmove(s->q + i + 1, s->q + i, (s->qn - i) * sizeof *s->q);
  s->q[i] = (request){.id = id, .blob = copy, .len = len};
  s->qn++;
  if (i < s->untaken)
    s->untaken = i;
  return 0;
}

/* Each request is marked taken before fn runs, so a take from inside fn
 * does not hand it out again; the array may change under fn (push, ack),
 * so the next one is looked up afresh from s->untaken. */
static int mem_frontier_take(void *b, int limit, ft_state_request_fn fn,
                             void *ud) {
  mem_state *s = b;
  int n = 0;
  while (limit <= 0 || n < limit) {
    while (s->untaken < s->qn && s->q[s->untaken].taken)
      s->untaken++;
    if (s->untaken == s->qn)
      break;
    request *r = &s->q[s->untaken];
    r->taken = 1;
    n++;
    const char *outer = s->handing;
    int outer_acked = s->handing_acked;
    s->handing = r->blob;
    s->handing_acked = 0;
    char *blob = r->blob;
    int stop = fn(ud, r->id, blob, r->len);
    if (s->handing_acked)
      free(blob);
    s->handing = outer;
    s->handing_acked = outer_acked;
    if (stop != 0)
      break;
  }
  return n;
}

static int mem_frontier_ack(void *b, int64_t id) {
  mem_state *s = b;
  int rc = write_check(s);
  if (rc != 0)
    return rc;
  size_t i = frontier_find(s, id);
  if (i == s->qn || s->q[i].id != id)
    return 0;
  if (s->q[i].blob == s->handing)
    s->handing_acked = 1; /* frontier_take frees it when fn returns */
  else
    free(s->q[i].blob);
  memmove(s->q + i, s->q + i + 1, (s->qn - i - 1) * sizeof *s->q);
  s->qn--;
  if (i < s->untaken)
    s->untaken--;
  return 0;
}

static int64_t mem_frontier_count(void *b) {
  mem_state *s = b;
  return (int64_t)s->qn;
}

/* ---- the seen set ------------------------------------------------------------- */

static int mem_seen_add(void *b, const unsigned char key[16],
                        ft_state_seen_fn fn, void *ud) {
  mem_state *s = b;
  int rc = write_check(s);
  if (rc != 0)
    return rc;
  rc = ft_dedupe_add_key(s->seen, key);
  if (rc < 0)
    return oom(s);
  fn(ud, key, rc, 0);
  return 0;
}

/* ---- key-value storage ---------------------------------------------------------- */

/* The table key of (obj, key): obj, a NUL byte, the key's bytes. A stack
 * buffer serves the usual short key; *heap is set when it did not fit. */
static char *kv_key(const char *obj, const char *key, size_t klen,
                    char *buf, size_t buflen, size_t *n, char **heap) {
  size_t on = strlen(obj);
  *n = on + 1 + klen;
  *heap = NULL;
  char *k = buf;
  if (*n > buflen && (k = *heap = malloc(*n)) == NULL)
    return NULL;
  memcpy(k, obj, on + 1);
  if (klen > 0)
    memcpy(k + on + 1, key, klen);
  return k;
}

static int mem_kv_get(void *b, const char *obj, const char *key, size_t klen,
                      char **val, size_t *len) {
  mem_state *s = b;
  char buf[256], *heap;
  size_t n;
  const char *k = kv_key(obj, key, klen, buf, sizeof buf, &n, &heap);
  if (k == NULL)
    return oom(s);
  entry *e = table_find(&s->kv, k, n, ft_hash64(k, n));
  free(heap);
  if (e == NULL)
    return set_err(s, FT_ENOTFOUND, "no such key");
  if ((*val = ft_bytes_dup(e->val, e->len)) == NULL)
    return oom(s);
  if (len != NULL)
    *len = e->len;
  return 0;
}

static int mem_kv_put(void *b, const char *obj, const char *key, size_t klen,
                      const void *val, size_t len) {
  mem_state *s = b;
  int rc = write_check(s);
  if (rc != 0)
    return rc;
  char buf[256], *heap;
  size_t n;
  const char *k = kv_key(obj, key, klen, buf, sizeof buf, &n, &heap);
  rc = k != NULL ? table_set(s, &s->kv, k, n, val, len) : oom(s);
  free(heap);
  return rc;
}

static int mem_kv_delete(void *b, const char *obj, const char *key,
                         size_t klen) {
  mem_state *s = b;
  int rc = write_check(s);
  if (rc != 0)
    return rc;
  char buf[256], *heap;
  size_t n;
  const char *k = kv_key(obj, key, klen, buf, sizeof buf, &n, &heap);
  if (k == NULL)
    return oom(s);
  table_remove(&s->kv, k, n);
  free(heap);
  return 0;
}

/* Byte order, shorter first on a tie: SQLite's BINARY collation. */
static int cmp_entries(const void *a, const void *b) {
  const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
  size_t n = x->klen < y->klen ? x->klen : y->klen;
  int c = memcmp(x->key, y->key, n);
  if (c != 0)
    return c;
  return x->klen < y->klen ? -1 : x->klen > y->klen;
}

/* Collects and sorts obj's matching entries, then hands fn copies of the
 * first `limit`: fn may put or delete meanwhile. */
static int mem_kv_list(void *b, const char *obj, const char *prefix,
                       size_t plen, int limit, ft_state_kv_fn fn, void *ud) {
  mem_state *s = b;
  size_t on = strlen(obj);
  entry **m = NULL;
  size_t mn = 0;
  if (s->kv.n > 0 && (m = malloc(s->kv.n * sizeof *m)) == NULL)
    return oom(s);
  for (size_t i = 0; i < s->kv.nb; i++)
    for (entry *e = s->kv.b[i]; e != NULL; e = e->next)
      if (e->klen >= on + 1 + plen && memcmp(e->key, obj, on + 1) == 0 &&
          memcmp(e->key + on + 1, prefix, plen) == 0)
        m[mn++] = e;
  qsort(m, mn, sizeof *m, cmp_entries);
  if (limit > 0 && (size_t)limit < mn)
    mn = (size_t)limit;
  /* copies first: fn may change the table under us */
  entry *copies = mn > 0 ? calloc(mn, sizeof *copies) : NULL;
  int rc = mn > 0 && copies == NULL ? oom(s) : 0;
  for (size_t i = 0; rc == 0 && i < mn; i++) {
    copies[i].klen = m[i]->klen - on - 1;
    copies[i].key = ft_bytes_dup(m[i]->key + on + 1, copies[i].klen);
    copies[i].len = m[i]->len;
    copies[i].val = ft_bytes_dup(m[i]->val, m[i]->len);
    if (copies[i].key == NULL || copies[i].val == NULL)
      rc = oom(s);
  }
  free(m);
  for (size_t i = 0; rc == 0 && i < mn; i++)
    if (fn(ud, copies[i].key, copies[i].klen, copies[i].val, copies[i].len) !=
        0)
      break;
  for (size_t i = 0; i < mn && copies != NULL; i++) {
    free(copies[i].key);
    free(copies[i].val);
  }
  free(copies);
  return rc;
}

/* ---- metadata ---------------------------------------------------------------------- */

static int mem_meta_get(void *b, const char *key, char **val) {
  mem_state *s = b;
  size_t n = strlen(key);
  entry *e = table_find(&s->meta, key, n, ft_hash64(key, n));
  if (e == NULL)
    return set_err(s, FT_ENOTFOUND, "no metadata %s", key);
  if ((*val = ft_bytes_dup(e->val, e->len)) == NULL)
    return oom(s);
  return 0;
}

static int mem_meta_set(void *b, const char *key, const char *val) {
  mem_state *s = b;
  int rc = write_check(s);
  if (rc != 0)
    return rc;
  return table_set(s, &s->meta, key, strlen(key), val, strlen(val));
}

/* ---- rate limits ---------------------------------------------------------------------- */

static int mem_limiter_grant(void *b, const char *obj, double rps,
                             uint64_t window_ns, uint64_t now_ns,
                             uint64_t horizon_ns, int want, uint64_t *starts) {
  mem_state *s = b;
  int rc = ft_limiter_check(rps, window_ns);
  if (rc != 0)
    return set_err(s, rc, "limiter: rps %g per %llu ns: %s", rps,
                   (unsigned long long)window_ns, ft_strerror(rc));
  entry *e = table_upsert(&s->limits, obj, strlen(obj));
  if (e == NULL)
    return oom(s);
  if (e->lim == NULL)
    rc = ft_limiter_new(&e->lim, rps, window_ns);
  else if (e->rps != rps || e->window != window_ns)
    rc = ft_limiter_set(e->lim, rps, window_ns); /* keeps its history */
  if (rc != 0)
    return set_err(s, rc, "limiter: %s", ft_strerror(rc));
  e->rps = rps;
  e->window = window_ns;
  return ft_limiter_grant(e->lim, rps, &e->last, now_ns, horizon_ns, want,
                          starts);
}

/* ---- concurrency caps ------------------------------------------------------------------ */

/* Drops the holders whose lease ended at or before now: their slots are
 * free again. Returns the slots the others hold. */
static int64_t slots_live(slot_table *t, uint64_t now) {
  int64_t total = 0;
  for (size_t i = 0; i < t->n;) {
    if (t->h[i].expires <= now) {
      free(t->h[i].name);
      t->h[i] = t->h[--t->n];
    } else {
      total += t->h[i++].n;
    }
  }
  return total;
}

static holder *slots_holder(slot_table *t, const char *name) {
  for (size_t i = 0; i < t->n; i++)
    if (strcmp(t->h[i].name, name) == 0)
      return &t->h[i];
  return NULL;
}

static int mem_slots_acquire(void *b, const char *obj, const char *name,
                             int cap, int want, uint64_t lease_ns,
                             uint64_t now_ns, int *held) {
  mem_state *s = b;
  entry *e = table_upsert(&s->limits, obj, strlen(obj));
  if (e == NULL || (e->slots == NULL &&
                    (e->slots = calloc(1, sizeof *e->slots)) == NULL))
    return oom(s);
  slot_table *t = e->slots;
  int64_t free_slots = cap - slots_live(t, now_ns);
  int g = free_slots <= 0 ? 0 : want < free_slots ? want : (int)free_slots;
  holder *h = slots_holder(t, name);
  if (h == NULL) {
    if (g == 0)
      return 0; /* nothing held, nothing granted: no lease to keep */
    if (t->n == t->cap) {
      holder *nh = grow_array(t->h, &t->cap, sizeof *nh, 4);
      if (nh == NULL)
        return oom(s);
      t->h = nh;
    }
    char *copy = ft_bytes_dup(name, strlen(name));
    if (copy == NULL)
      return oom(s);
    h = &t->h[t->n++];
    *h = (holder){.name = copy};
  }
  h->n += g;
  h->expires = now_ns + lease_ns < now_ns ? UINT64_MAX : now_ns + lease_ns;
  *held = h->n;
  return g;
}

static int mem_slots_release(void *b, const char *obj, const char *name,
                             int n, uint64_t now_ns) {
  mem_state *s = b;
  entry *e = table_find(&s->limits, obj, strlen(obj),
                        ft_hash64(obj, strlen(obj)));
  if (e == NULL || e->slots == NULL)
    return 0;
  slots_live(e->slots, now_ns);
  holder *h = slots_holder(e->slots, name);
  if (h == NULL)
    return 0;
  int r = n < h->n ? n : h->n;
  h->n -= r;
  if (h->n == 0) { /* holds nothing: its lease means nothing */
    free(h->name);
    *h = e->slots->h[--e->slots->n];
  }
  return r;
}

/* ---- SQL: a private in-memory SQLite database ------------------------------------------ */

static int mem_sql(void *b, const char *obj, const char *query,
                   const ft_sql_value *args, int nargs, ft_sql_row_fn fn,
                   void *ud, int64_t *changes, char *err, size_t errlen) {
  mem_state *s = b;
  int rc = write_check(s);
  if (rc == 0 && s->sql == NULL)
    rc = ft_state_open_backend(&s->sql, &ft_state_sqlite_backend, NULL,
                               s->errmsg, sizeof s->errmsg);
  if (rc != 0) {
    ft_errf(err, errlen, "%s", s->errmsg);
    return rc;
  }
  rc = ft_state_sql(s->sql, obj, query, args, nargs, fn, ud, changes, err,
                    errlen);
  if (rc != 0)
    set_err(s, rc, "%s", ft_state_errmsg(s->sql));
  return rc;
}

/* ---- the backend ------------------------------------------------------------------------ */

const ft_state_backend ft_state_memory_backend = {
    .name = "memory",
    .flags = 0,
    .open = mem_open,
    .close = mem_close,
    .errmsg = mem_errmsg,
    .commit = mem_commit,
    .abandon = mem_abandon,
    .broken = mem_broken,
    .reset = mem_reset,
    .frontier_push = mem_frontier_push,
    .frontier_take = mem_frontier_take,
    .frontier_ack = mem_frontier_ack,
    .frontier_count = mem_frontier_count,
    .seen_add = mem_seen_add,
    .kv_get = mem_kv_get,
    .kv_put = mem_kv_put,
    .kv_delete = mem_kv_delete,
    .kv_list = mem_kv_list,
    .meta_get = mem_meta_get,
    .meta_set = mem_meta_set,
    .limiter_grant = mem_limiter_grant,
    .slots_acquire = mem_slots_acquire,
    .slots_release = mem_slots_release,
    .sql = mem_sql,
};
